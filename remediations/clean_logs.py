"""Free space by removing rotated and compressed logs older than `older_than_days`.

Only under the named folders, which must lie under `allowed_roots` (checked when the
playbook loads, and again on the host with every symlink resolved: a folder that leads
elsewhere is refused). Only regular files matching `patterns` (never a symlink, never a
file with other hard links, never one a process holds open, judged from /proc/*/fd).
The plan lists every file and what freeing them does to the filesystem; validation checks
each file again just before the removal. Removed logs are not backed up: freeing their
space is the point. If they are not enough, what is safe is still removed and the summary
names what else would help.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import Field, field_validator, model_validator

from opsfix import hostfiles
from opsfix.checks._units import human
from opsfix.plugin import Params, Plan, Remediation, Remove
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from . import _disk

ROTATED = ["*.[0-9]", "*.[0-9][0-9]", "*.gz", "*.xz", "*.bz2", "*.zst", "*.old"]
_ACTIVE = ("access.log", "error.log", "syslog", "messages", "kern.log", "app.log", "current")


class CleanLogsParams(Params):
    folders: list[str] = Field(["/var/log"], min_length=1, description="folders to clean")
    allowed_roots: list[str] = Field(
        ["/var/log"], min_length=1, description="folders may not leave these"
    )
    older_than_days: float = Field(7, ge=0, description="only files not modified for this long")
    patterns: list[str] = Field(ROTATED, min_length=1, description="names of rotated logs")
    max_depth: int = Field(4, ge=1, le=16, description="folder levels searched")
    target_percent: float | None = Field(80, gt=0, le=100, description="use % to get under")

    @field_validator("folders", "allowed_roots")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
                raise ValueError(f"{path!r} is not an absolute, normalized folder other than /")
        return paths

    @field_validator("patterns")
    @classmethod
    def _rotated_only(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            live = [name for name in _ACTIVE if fnmatch.fnmatchcase(name, pattern)]
            if live or "/" in pattern:
                raise ValueError(f"pattern {pattern!r} would match live logs such as {live[:1]}")
        return patterns

    @model_validator(mode="after")
    def _inside_roots(self) -> CleanLogsParams:
        for folder in self.folders:
            if not any(_under(folder, root) for root in self.allowed_roots):
                roots = ", ".join(self.allowed_roots)
                raise ValueError(f"folder {folder!r} is outside the allowed roots ({roots})")
        return self


@dataclass(frozen=True)
class LogFile:
    path: str
    size: int  # bytes
    blocks: int  # bytes on disk, what removing it frees
    age_days: float
    links: int


class CleanLogs(Remediation[CleanLogsParams]):
    """Remove old rotated logs that no process holds open."""

    disruptive = True  # deletes files

    def gather(self) -> list[str]:
        p = self.params
        names = " -o ".join(f"-name {quote(pattern)}" for pattern in p.patterns)
        find = f'find "$d" -xdev -maxdepth {p.max_depth} -type f'
        lines = [
            'printf "P\\t%s\\0" "$(ls /proc/1/fd >/dev/null 2>&1 && echo ok)"',
            'for r in "$@"; do printf "R\\t%s\\0" "$(realpath -e -- "$r" 2>/dev/null)"; done',
        ]
        for i, folder in enumerate(p.folders):  # named by index: a name may hold a tab
            f = quote(folder)
            lines += [
                f'if d=$(realpath -e -- {f} 2>/dev/null) && [ -d "$d" ]; then',
                f'  printf "D\\t{i}\\t%s\\0" "$d"',
                f'  printf "U\\t{i}\\t%s\\0" "$({_disk.df(folder)} | sed -n 2p)"',
                f"  {find} \\( {names} \\) -printf 'F\\t%s\\t%b\\t%A@\\t%T@\\t%n\\t%p\\0'",
                f"  {find} ! \\( {names} \\) -printf 'A\\t%s\\t%p\\0' | sort -z -t '\t' -k2 -rn"
                " | head -z -n 3",
                "  find /proc/[0-9]*/fd -maxdepth 1 -type l -printf 'O\\t%l\\0' 2>/dev/null"
                ' | grep -z -F -- "$d/"',
                f'else printf "X\\t{i}\\0"; fi',
            ]
        lines.append('printf "N\\t%s\\0" "$(date +%s)"')
        roots = " ".join(quote(r) for r in p.allowed_roots)
        return [hostfiles.listing("set -- " + roots + "\n" + "\n".join(lines))]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p, host = self.params, _parse(facts[0], self.params.folders)
        where = ", ".join(p.folders)
        problem = self._unsafe(host)
        if problem:
            return Plan(f"{where} not cleaned", refuse=problem)
        old = [f for f in host.files if f.age_days > p.older_than_days]
        held = [f for f in old if f.path in host.open_paths]
        linked = [f for f in old if f.links > 1 and f not in held]
        chosen = [f for f in old if f not in held and f not in linked]
        young = [f for f in host.files if f.age_days <= p.older_than_days]
        notes = (
            [f"kept {len(held)} held open: " + ", ".join(f.path for f in held[:5])] if held else []
        )
        notes += [f"kept {len(linked)} with other hard links"] if linked else []
        enough, outlook = self._outlook(host, chosen)
        if not enough:
            notes.append("what would help: " + _help(young, host.largest, p.older_than_days))
        rule = f"rotated log(s) older than {p.older_than_days:g} days under {where}"
        if not chosen:
            return Plan("; ".join([f"nothing to remove: no {rule} that no process holds", *notes]))
        head = f"remove {len(chosen)} {rule}, freeing {human(sum(f.blocks for f in chosen))}"
        listing = [f"  {f.path} ({human(f.blocks)}, {f.age_days:.0f} days old)" for f in chosen]
        return Plan(
            "\n".join([f"{head}; {outlook}", *listing, *(f"  {n}" for n in notes)]),
            changes=tuple(Remove(f.path, _folder_of(f.path, host)) for f in chosen),
            validate=(_still_safe(chosen, list(host.folders.values()), p.older_than_days),),
            backup=False,
            partial_ok=True,
        )

    def _unsafe(self, host: _Host) -> str | None:
        """Why nothing may be removed, or None."""
        if host.missing:
            return f"no such folder on the host: {host.missing[0]}"
        if not host.proc_readable:
            return "cannot see which files processes hold open (/proc/*/fd): become root"
        roots = [r for r in host.roots if r]
        for folder, real in host.folders.items():
            if not any(_under(real, root) for root in roots):
                allowed = ", ".join(self.params.allowed_roots)
                return f"{folder} resolves to {real}, outside the allowed roots ({allowed})"
        if len(host.usage) != len(host.folders) or not host.now:
            return "cannot read the host's clock or free space (date, df)"
        return None

    def _outlook(self, host: _Host, chosen: list[LogFile]) -> tuple[bool, str]:
        """Per filesystem: the use after removal, and whether it is under the target."""
        by_mount: dict[str, tuple[_disk.Usage, int]] = {}
        for folder, usage in host.usage.items():
            real = host.folders[folder]
            freed = sum(f.blocks for f in chosen if _under(f.path, real))
            previous = by_mount.get(usage.mount, (usage, 0))[1]
            by_mount[usage.mount] = (usage, previous + freed)
        verdicts = [
            _disk.outlook(u, freed, self.params.target_percent) for u, freed in by_mount.values()
        ]
        return all(ok for ok, _ in verdicts), "; ".join(text for _, text in verdicts)


@dataclass
class _Host:
    """What gather found on the host."""

    now: float = 0.0
    proc_readable: bool = False
    roots: list[str] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # named -> resolved
    missing: list[str] = field(default_factory=list)
    usage: dict[str, _disk.Usage] = field(default_factory=dict)
    files: list[LogFile] = field(default_factory=list)
    largest: list[tuple[int, str]] = field(default_factory=list)
    open_paths: set[str] = field(default_factory=set)


def _folder_of(path: str, host: _Host) -> str:
    """The resolved folder a listed file lies in (its root: nothing below it is followed)."""
    found = [real for real in host.folders.values() if _under(path, real)]
    return max(found, key=len, default="/")


def _parse(result: CommandResult, folders: list[str]) -> _Host:
    """Records are `KIND\tFIELDS...`; a path is always the last field (it may hold tabs)."""
    host, stamps = _Host(), []
    for record in hostfiles.read_listing(result).records:
        kind, _, rest = record.partition("\t")
        index, _, value = rest.partition("\t")
        folder = folders[int(index)] if index.isdigit() and int(index) < len(folders) else None
        fields = rest.split("\t", 5)
        if kind == "N" and rest.isdigit():
            host.now = float(rest)
        elif kind == "P":
            host.proc_readable = rest == "ok"
        elif kind == "R":
            host.roots.append(rest)
        elif kind == "D" and folder is not None:
            host.folders[folder] = value
        elif kind == "X" and folder is not None:
            host.missing.append(folder)
        elif kind == "U" and folder is not None:
            usage = _disk.parse_df(CommandResult("df", 0, "header\n" + value))
            if usage is not None:
                host.usage[folder] = usage
        elif kind == "F" and len(fields) == 6:
            size, blocks, _, mtime, links, path = fields
            stamps.append((path, int(size), int(blocks) * 512, float(mtime), int(links)))
        elif kind == "A" and index.isdigit():
            host.largest.append((int(index), value))
        elif kind == "O":
            host.open_paths.add(rest)
    host.files = [
        LogFile(path, size, blocks, (host.now - mtime) / 86400, links)
        for path, size, blocks, mtime, links in stamps
    ]
    host.largest.sort(reverse=True)
    return host


def _help(young: list[LogFile], largest: list[tuple[int, str]], cutoff: float) -> str:
    ideas = []
    if young:
        size = human(sum(f.blocks for f in young))
        ideas.append(f"{len(young)} rotated log(s) newer than {cutoff:g} days ({size})")
    if largest:
        size, path = largest[0]
        ideas.append(
            f"the largest live file is {path} ({human(size)}): rotate it (logrotate) or truncate it"
        )
    return (
        "; ".join(ideas) or "nothing else here is a rotated log: look elsewhere on the filesystem"
    )


def _still_safe(files: list[LogFile], folders: list[str], cutoff: float) -> str:
    """Each file, just before removal: still a regular file with one link, old enough,
    in its folder (its parent resolves inside a named folder), and not held open (no
    process has its device and inode open: names are never compared as text lines)."""
    minutes = int(cutoff * 1440)
    roots = " ".join(quote(r) for r in sorted(set(folders)))
    paths = " ".join(quote(f.path) for f in files)
    say = 'printf "%s: %s\\n" "$f"'
    return (
        "held=\" $(find -L /proc/[0-9]*/fd -maxdepth 1 -type f -printf '%D:%i ' 2>/dev/null)\"\n"
        f"bad=0\nfor f in {paths}; do\n"
        '  p=$(realpath -e -- "${f%/*}" 2>/dev/null); in=no\n'
        f'  for r in {roots}; do case "$p/" in "$r"/*) in=yes;; esac; done\n'
        f'  id=$(find "$f" -maxdepth 0 -type f -links 1 -mmin +{minutes} -printf "%D:%i")\n'
        f'  if [ ! -f "$f" ] || [ -L "$f" ]; then {say} "no longer a regular file"; bad=1\n'
        f'  elif [ "$in" = no ]; then {say} "no longer inside the folders"; bad=1\n'
        f'  elif [ -z "$id" ]; then {say} "changed since the plan"; bad=1\n'
        f'  else case $held in *" $id "*) {say} "now held open"; bad=1;; esac\n'
        "  fi\ndone\nexit $bad"
    )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
