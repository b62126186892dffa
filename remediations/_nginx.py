"""What the nginx remediations share: service control, staged `nginx -t`, tree manifests and
the known-good snapshot.

Known-good layout on a host (one per managed root, `/etc/nginx` -> `etc_nginx`):

    /var/lib/opsfix/known-good/etc_nginx -> .etc_nginx.Ab12Cd   (symlink, swapped by rename)
    /var/lib/opsfix/known-good/.etc_nginx.Ab12Cd/                (cp -a of the live tree)

A refresh copies the tree beside the old one and renames a new symlink over the old one,
so a reader sees the old snapshot or the new one, never a half-written tree.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import posixpath
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, replace

from opsfix import hostfiles
from opsfix.plugin import Change, Remove, Symlink, WriteFile
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

from . import _service

PID_FILE = "/run/nginx.pid"
KNOWN_GOOD_DIR = "/var/lib/opsfix/known-good"
SNAPSHOT_LIMIT = 2 * 1024 * 1024

# $1 nginx binary, $2 isolation; OPSFIX_STAGE (the copy) and OPSFIX_STAGE_ROOT from the engine.
# Exit 125 from inside the namespace means "could not bind", so the rewrite path takes over.
STAGED_TEST_SCRIPT = r"""
bin=$1 isolation=${2:-auto}
stage=${OPSFIX_STAGE:?is not set: no staged copy to test}
root=${OPSFIX_STAGE_ROOT:?is not set}
[ "$root" = / ] || root=${root%/}
if [ "$isolation" != rewrite ] && unshare -m true 2>/dev/null; then
  unshare -m sh -c 'mount --bind "$1" "$2" || exit 125; exec "$3" -t -c "$2/nginx.conf"' \
    sh "$stage" "$root" "$bin"
  rc=$?
  [ "$rc" -eq 125 ] || exit "$rc"
fi
if [ "$isolation" = namespace ]; then
  echo "cannot bind-mount the staged copy in a private mount namespace" >&2; exit 1
fi
regex() { printf '%s\n' "$1" | sed 's/[]\/$*.^[|]/\\&/g'; }
literal() { printf '%s\n' "$1" | sed 's/[\&|]/\\&/g'; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/root
cp -a "$stage" "$copy" || exit 1
from=$(regex "$root") to=$(literal "$copy")
export root copy
# names are data: files go to sed and links to a loop as arguments, never as lines
find "$copy" -type f -exec grep -lFZ -e "$root" {} + | xargs -0 -r sed -i \
  -e "s|$from/|$to/|g" -e "s|$from\([[:space:];\"']\)|$to\1|g" -e "s|$from\$|$to|" --
find "$copy" -type l -exec sh -c 'for link; do
  t=$(readlink "$link"; echo x); t=${t%?x}
  case $t in "$root" | "$root"/*) ln -sfn "$copy${t#"$root"}" "$link" ;; esac
done' sh {} +
"$bin" -t -c "$copy/nginx.conf" >"$tmp/out" 2>&1
rc=$?
sed "s|$(regex "$copy")|$(literal "$root")|g" "$tmp/out" >&2
exit "$rc"
"""


# -- service control ------------------------------------------------------------------------


def state_command(binary: str, service: str) -> str:
    process = posixpath.basename(binary)
    return _service.state_command(service, process, command=binary, pid_file=PID_FILE)


def running(binary: str, service: str) -> str:
    return _service.is_running(service, posixpath.basename(binary), PID_FILE)


# A reload only signals the master: until it has started new workers and told the old
# ones to quit, the old workers answer with the old config, and a re-check would judge
# that. So a reload waits (up to ~5 s) until a worker started after the signal runs and
# every older one is gone or shutting down (nginx retitles it "... is shutting down").
# The master lets the old workers go 100 ms after starting the new ones (ngx_msleep(100)):
# one look at once, then a 90 ms nap, then a look every 10 ms, then every 50 ms. Each
# look starts pgrep, a subshell and sleep on the host, so looks before 100 ms are waste.
_RELOADED = """n=0
while [ -n "$m" ] && [ -d "/proc/$m" ] && [ $n -lt 110 ]; do
  pgrep -a -P "$m" 2>/dev/null | {
    fresh=; stale=
    while read -r p rest; do
      case "$old" in
        *" $p "*) case "$rest" in *"shutting down"*) ;; *) stale=1 ;; esac ;;
        *) fresh=1 ;;
      esac
    done
    [ -n "$fresh" ] && [ -z "$stale" ]
  } && break
  case $n in 0) d=0.09 ;; [1-9]) d=0.01 ;; *) d=0.05 ;; esac
  sleep $d; n=$((n + 1))
done"""


def reload(binary: str, service: str, conf: str | None = None, pid_file: str = PID_FILE) -> str:
    """systemctl reload when the unit runs it, else `nginx -s reload` (never a restart);
    then wait until the new config serves (see _RELOADED)."""
    signal = cmd(binary, *(["-c", conf] if conf else []), "-s", "reload")
    unit = cmd("systemctl", "reload", service)
    master = f"m=; {{ read -r m < {quote(pid_file)}; }} 2>/dev/null"
    workers = f'{master}; old=" $(pgrep -d " " -P "$m" 2>/dev/null) "'
    send = f"if {_service.unit_active(service)}; then {unit}; else {signal}; fi"
    return f"{workers}; {send} || exit\n{_RELOADED}\ntrue"


def reload_if_running(binary: str, service: str, conf: str) -> str:
    return _service.only_if(
        running(binary, service), reload(binary, service, conf), "nginx is not running: no reload"
    )


def reload_if_valid(binary: str, service: str, conf: str) -> str:
    """Rollback: reload the restored tree only if nginx runs and the tree passes `nginx -t`."""
    valid = _service.only_if(
        cmd(binary, "-t", "-q", "-c", conf),
        reload(binary, service, conf),
        "restored config fails nginx -t: not reloaded, nginx keeps the config it has loaded",
    )
    return _service.only_if(running(binary, service), valid, "nginx is not running: no reload")


def staged_test(binary: str, *, isolation: str = "auto") -> str:
    """`nginx -t` on the engine's staged copy ($OPSFIX_STAGE) as if it were the live root.

    `namespace`: bind the copy over $OPSFIX_STAGE_ROOT in a private mount namespace, so
    absolute includes and symlinks resolve into the copy. `rewrite`: test a copy whose
    absolute paths under the root point into it instead. `auto`: namespace where unshare
    is permitted, else rewrite.
    """
    return cmd("sh", "-c", STAGED_TEST_SCRIPT, "nginx-staged-test", binary, isolation)


# -- trees ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One path of a tree: kind is find's letter (f file, l symlink, d directory, ...)."""

    kind: str
    mode: int = 0o644
    target: str = ""
    sha256: str = ""
    content: bytes = b""

    @classmethod
    def file(cls, content: bytes, mode: int = 0o644) -> Entry:
        return cls("f", mode & 0o7777, sha256=hashlib.sha256(content).hexdigest(), content=content)


Tree = dict[str, Entry]  # relative path -> entry


def check_under(root: str, paths: Iterable[str]) -> None:
    """Raise ValueError unless root is a tidy absolute folder (not /) and paths lie below it."""
    if root == "/" or not root.startswith("/") or posixpath.normpath(root) != root:
        raise ValueError(f"root must be an absolute folder other than /, not {root!r}")
    for path in paths:
        if posixpath.normpath(path) != path or not path.startswith(root + "/"):
            raise ValueError(f"{path!r} is not a plain path under root {root!r}")


def manifest_command(root: str) -> str:
    """Type, mode, link target and relative path of every entry, then sha256 of every file:
    NUL-separated, sent as a `hostfiles.listing` (every byte of every name arrives)."""
    return hostfiles.listing(
        f"cd {quote(root)} || exit 2\n"
        "find . -mindepth 1 -printf '%y\\0%m\\0%l\\0%P\\0' && printf 'sums\\0' &&\n"
        "find . -type f -exec sha256sum -z {} +"
    )


def read_manifest(result: CommandResult, root: str) -> Tree:
    listed = hostfiles.read_listing(result)
    if not listed.ok:
        status = CommandResult(result.command, listed.exit_status, "", result.stderr)
        raise ValueError(f"cannot list {root} on the host: {_service.failure(status)}")
    return parse_manifest(listed.records)


def parse_manifest(fields: list[str]) -> Tree:
    """The entries of a manifest's records (see `manifest_command`)."""
    entries: Tree = {}
    i = 0
    while i + 3 < len(fields) and fields[i] != "sums":
        kind, mode, target, rel = fields[i : i + 4]
        entries[rel] = Entry(kind, int(mode, 8), target)
        i += 4
    for line in fields[i + 1 :]:  # "<sha256>  ./<path>", unescaped (sha256sum -z)
        rel = line[66:].removeprefix("./")
        if rel in entries:
            entries[rel] = replace(entries[rel], sha256=line[:64])
    return entries


def wanted_tree(root: str, files: dict[str, str], symlinks: dict[str, str]) -> Tree:
    """Entries relative to root: file contents by path, and symlink targets by path."""
    want = {path[len(root) + 1 :]: Entry.file(text.encode()) for path, text in files.items()}
    return want | {path[len(root) + 1 :]: Entry("l", target=t) for path, t in symlinks.items()}


def tree_changes(root: str, want: Tree, live: Tree, remove: Iterable[str] = ()) -> list[Change]:
    """Changes that make `live` hold `want`'s files and symlinks and drop `remove`.

    Every change is confined to `root` (see opsfix.plugin). Raises ValueError when a
    wanted path is a folder on the host, or sits below a symlink or a file there.
    """
    want = {rel: e for rel, e in want.items() if e.kind in ("f", "l")}
    links = sorted({f"{root}/{rel}" for rel in symlinked_folders(want, live)})
    if links:
        shown = ", ".join(hostfiles.shown(link) for link in links[:5])
        raise ValueError(f"{shown}: a symlink on the host where a folder should be: not followed")
    blocked = [hostfiles.shown(f"{root}/{rel}") for rel in conflicts(want, live)]
    if blocked:
        raise ValueError(f"{', '.join(blocked)}: a folder on the host, or below a file")
    changes: list[Change] = []
    for rel, entry in sorted(want.items()):
        have, path = live.get(rel, Entry("")), f"{root}/{rel}"
        if (have.kind, have.sha256, have.target) == (entry.kind, entry.sha256, entry.target):
            continue
        is_file = entry.kind == "f"
        changes.append(
            WriteFile(path, entry.content, entry.mode, root)
            if is_file
            else Symlink(path, entry.target, root)
        )
    gone = sorted(r for r in remove if r not in want and live[r].kind in ("f", "l"))
    return changes + [Remove(f"{root}/{rel}", root) for rel in gone]


def matches(rel: str, pattern: str) -> bool:
    """Glob per path part: `conf.d/*.conf` matches `conf.d/a.conf`, not `conf.d/x/a.conf`."""
    parts, globs = rel.split("/"), pattern.strip("/").split("/")
    return len(parts) == len(globs) and all(map(fnmatch.fnmatchcase, parts, globs))


def symlinked_folders(want: Iterable[str], live: Tree) -> list[str]:
    """Folders above wanted paths that are symlinks on the host (never written through)."""
    above = {"/".join(rel.split("/")[:n]) for rel in want for n in range(1, rel.count("/") + 1)}
    return [a for a in above if live.get(a, Entry("d")).kind == "l"]


def conflicts(want: Iterable[str], live: Tree) -> list[str]:
    """Wanted paths that are folders on the host, or sit below something that is not one."""

    def blocked(rel: str) -> bool:
        parts = rel.split("/")
        above = ("/".join(parts[:n]) for n in range(1, len(parts)))
        is_folder = live.get(rel, Entry("")).kind == "d"
        return is_folder or any(live.get(a, Entry("d")).kind != "d" for a in above)

    return [rel for rel in want if blocked(rel)]


# -- what nginx -t names -----------------------------------------------------------------

_WHERE = re.compile(
    r"\[(?:emerg|alert|crit)\] (?:\d+#\d+: )?(?P<message>.*?)(?: in (?P<file>\S+):(?P<line>\d+))?$"
)
_OPEN = re.compile(r'open\(\) "(?P<path>[^"]*)" failed')


@dataclass(frozen=True)
class Fault:
    """What `nginx -t` blamed: its message, the file and line, and a file it could not open."""

    message: str
    file: str = ""
    line: int = 0
    cannot_open: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file else "(no file named)"


def test_command(binary: str, root: str) -> str:
    return cmd(binary, "-t", "-c", f"{root}/nginx.conf")


_TESTED = "opsfix-nginx-t exit="


def state_and_test_command(binary: str, service: str, root: str) -> str:
    """The service state, then `nginx -t`, one after the other: run side by side, the
    test's own nginx process would look like a running (stray) nginx to the state."""
    test = test_command(binary, root)
    return f'{state_command(binary, service)}\n{test} 2>&1; echo "{_TESTED}$?"'


def split_state_and_test(result: CommandResult) -> tuple[CommandResult, CommandResult]:
    """The two results `state_and_test_command` printed (the test's output as stderr)."""
    state, _, rest = result.stdout.partition("\n")
    output, _, status = rest.rpartition(_TESTED)
    code = int(status.strip()) if status.strip().isdigit() else -1
    first = CommandResult(result.command, result.exit_status, state, result.stderr)
    return first, CommandResult(result.command, code, "", output)


def read_fault(result: CommandResult) -> Fault | None:
    """The first fatal line of `nginx -t`'s output; None when it passed or named nothing."""
    if result.ok:
        return None
    for line in (result.stderr + result.stdout).splitlines():
        found = _WHERE.search(line)
        if found:
            opened = _OPEN.search(found["message"])
            return Fault(
                found["message"],
                found["file"] or "",
                int(found["line"] or 0),
                opened["path"] if opened else "",
            )
    return None


def relative_to(root: str, path: str) -> str | None:
    """`path` relative to `root` when it lies below it (plainly), else None."""
    if not path.startswith(root + "/") or posixpath.normpath(path) != path:
        return None
    return path[len(root) + 1 :]


def link_target(root: str, rel: str, live: Tree) -> str | None:
    """Where the live symlink at `rel` points, relative to root, when it points below it."""
    entry = live.get(rel)
    if entry is None or entry.kind != "l":
        return None
    target = entry.target
    if not target.startswith("/"):
        target = posixpath.normpath(posixpath.join(root, posixpath.dirname(rel), target))
    return relative_to(root, target)


# -- known-good snapshot --------------------------------------------------------------------


def known_good_path(root: str, known_good_dir: str = KNOWN_GOOD_DIR) -> str:
    return f"{known_good_dir}/{root.strip('/').replace('/', '_')}"


def baseline_command(binary: str, root: str, snapshot: str) -> str:
    """Refresh the snapshot of `root`, only if `nginx -t` passes on the live tree right now.

    A tree that still matches the snapshot (content, symlinks, names: GNU diff) is left as
    it is: most healthy runs change nothing, and `nginx -t` plus a copy cost the host ten
    processes per run. Modes alone are not compared. Without GNU diff it always refreshes.
    """
    base, name = posixpath.split(snapshot)
    return (
        f"root={quote(root)} base={quote(base)} name={quote(name)}\n"
        f"if {snapshot_matches_command(root, snapshot)}; then exit 0; fi\n"
        f"{cmd(binary, '-t', '-q', '-c', root + '/nginx.conf')} || "
        '{ echo "nginx -t fails: known-good copy of $root not refreshed" >&2; exit 1; }\n'
        'mkdir -p "$base" && chmod 700 "$base" || exit 1\n'
        'new=$(mktemp -d "$base/.$name.XXXXXX") || exit 1\n'
        'cp -a "$root/." "$new/" || { rm -rf "$new"; exit 1; }\n'
        'if [ -d "$base/$name" ] && [ ! -L "$base/$name" ]; then rm -rf "$base/$name"; fi\n'
        'ln -s "${new##*/}" "$new.link" && mv -Tf "$new.link" "$base/$name" ||'
        ' { rm -rf "$new" "$new.link"; exit 1; }\n'
        'for old in "$base/.$name".*; do [ "$old" = "$new" ] || rm -rf "$old"; done'
    )


def snapshot_matches_command(root: str, snapshot: str) -> str:
    """Exits 0 when the snapshot holds what `root` holds (content, symlinks, names)."""
    copy = quote(snapshot + "/")
    return f"[ -d {copy} ] && diff -rq --no-dereference {quote(root + '/')} {copy} >/dev/null 2>&1"


def snapshot_command(snapshot: str, limit: int = SNAPSHOT_LIMIT) -> str:
    """The snapshot as base64 tar; exit 2 when there is none, 3 (size on stdout) when too big."""
    s = quote(snapshot + "/")
    return (
        f"[ -d {s} ] || exit 2\n"
        f"size=$(find {s} -type f -printf '%s\\n' | awk '{{ s += $1 }} END {{ print s + 0 }}')\n"
        f'[ "$size" -le {limit} ] || {{ echo "$size"; exit 3; }}\n'
        f"tar -C {s} -cf - . | base64"
    )


def snapshot_paths_command(binary: str, root: str, snapshot: str, rels: Iterable[str]) -> str:
    """A peer's side: exit 3 when its own config fails `nginx -t`, 2 when it has no
    snapshot, else the snapshot's entries at `rels` (those it has) as a base64 tar."""
    paths = " ".join(quote(f"./{rel}") for rel in rels)
    return (
        f"{cmd(binary, '-t', '-q', '-c', root + '/nginx.conf')} >/dev/null 2>&1 || exit 3\n"
        f"cd {quote(snapshot + '/')} 2>/dev/null || exit 2\n"
        f"tar --no-recursion -cf - -- {paths} 2>/dev/null | base64"
    )


def read_snapshot(result: CommandResult, snapshot: str) -> Tree:
    """The entries `snapshot_command` sent; ValueError says why they cannot be used."""
    if result.exit_status == 3:
        size = result.stdout.strip()
        raise ValueError(f"snapshot {snapshot} holds {size} bytes, over the 2 MiB limit")
    if not result.ok:
        raise ValueError(f"cannot read snapshot {snapshot}: {_service.failure(result)}")
    try:
        return parse_snapshot(result.stdout)
    except ValueError as exc:
        raise ValueError(f"snapshot {snapshot}: {exc}") from None


def parse_snapshot(stdout: str) -> Tree:
    """The snapshot's entries; raises ValueError for an unreadable or unsafe archive."""
    entries: Tree = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(stdout)), mode="r:") as tar:
            for member in tar.getmembers():
                rel = posixpath.normpath(member.name)
                if rel == ".":
                    continue
                if rel == ".." or rel.startswith(("/", "../")):
                    raise ValueError(f"unsafe path {member.name!r} in the snapshot")
                if member.issym():
                    entries[rel] = Entry("l", 0o777, target=member.linkname)
                elif member.isdir():
                    entries[rel] = Entry("d", member.mode)
                elif member.isfile() or member.islnk():
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    entries[rel] = Entry.file(data, member.mode)
    except (tarfile.TarError, ValueError) as exc:
        raise ValueError(f"unreadable snapshot: {exc}") from None
    return entries


def describe(changes: list[Change]) -> str:
    """Counts for a summary, e.g. `2 file(s) to write, 1 path(s) to remove`."""
    labels = {
        WriteFile: "file(s) to write",
        Symlink: "symlink(s) to set",
        Remove: "path(s) to remove",
    }
    counts = {label: sum(isinstance(c, kind) for c in changes) for kind, label in labels.items()}
    return ", ".join(f"{n} {label}" for label, n in counts.items() if n)
