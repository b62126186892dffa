"""Re-deploy a web root from a release folder on the controller.

Writes every file that is missing on the host or differs from the release; with `prune`,
removes host files the release lacks (symlinks and folders stay). Checks free space first;
reloads nothing: nginx serves the files as they land. Others may write the web root, so
nothing below `dest` is followed: a symlink where the release has a folder refuses the
plan, naming it, and the transaction checks again on the host just before each write.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from functools import cached_property

from pydantic import Field, field_validator

from opsfix.plugin import ControllerPath, Params, Plan, Remediation, WriteFile
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from . import _nginx, _service
from ._nginx import Entry

RESERVE_KIB = 1024  # left free after the write, so a deploy never fills a disk to the brim


class RestoreContentParams(Params):
    source: ControllerPath = Field(description="release folder on the controller")
    dest: str = Field(description="folder on the host, e.g. /var/www/html")
    prune: bool = Field(False, description="remove host files that are not in the release")
    mode: int = Field(0o644, ge=0, le=0o7777, description="mode of files that are new")

    @field_validator("dest")
    @classmethod
    def _absolute(cls, dest: str) -> str:
        if dest == "/" or not dest.startswith("/") or posixpath.normpath(dest) != dest:
            raise ValueError(f"dest must be an absolute folder other than /, not {dest!r}")
        return dest


class RestoreContent(Remediation[RestoreContentParams]):
    """Write the release's files that are missing or different on the host."""

    disruptive = False

    @cached_property
    def release(self) -> dict[str, bytes]:
        """Relative path -> content of every file in the release folder (empty if missing)."""
        top = self.params.source
        files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        return {p.relative_to(top).as_posix(): p.read_bytes() for p in files}

    def gather(self) -> list[str]:
        d = quote(self.params.dest)
        return [f"[ -e {d} ] || exit 0\n{_nginx.manifest_command(self.params.dest)}"]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        source, dest = self.params.source, self.params.dest
        if not self.release:
            state = "has no files" if source.is_dir() else "does not exist"
            return Plan(f"{dest} not restored", refuse=f"release folder {source} {state}")
        if not facts[0].ok:
            reason = f"cannot read {dest} on the host: {_service.failure(facts[0])}"
            return Plan(f"{dest} not restored", refuse=reason)
        try:  # no output: dest does not exist yet
            live = _nginx.read_manifest(facts[0], dest) if facts[0].stdout else {}
            want = {rel: Entry.file(data, self.params.mode) for rel, data in self.release.items()}
            stray = [rel for rel, e in live.items() if e.kind == "f"] if self.params.prune else []
            changes = _nginx.tree_changes(dest, want, live, stray)
        except ValueError as exc:
            return Plan(f"{dest} not restored", refuse=str(exc))
        if not changes:
            return Plan(f"{dest} already matches {source} ({len(self.release)} files)")
        sizes = [len(c.content) for c in changes if isinstance(c, WriteFile)]
        removed = f", remove {len(changes) - len(sizes)}" if len(changes) > len(sizes) else ""
        need_kib = sum(-(-size // 4096) * 4 for size in sizes) + RESERVE_KIB  # whole 4 KiB blocks
        summary = f"write {len(sizes)} file(s) to {dest} from {source}{removed}"
        return Plan(summary, changes=tuple(changes), validate=(_free_space(dest, need_kib),))


def _free_space(dest: str, need_kib: int) -> str:
    """Pass when dest's filesystem (or its nearest existing parent's) has need_kib free."""
    return (
        f"d={quote(dest)} need={need_kib}\n"
        'while [ ! -d "$d" ]; do d=$(dirname "$d"); done\n'
        "free=$(df -P \"$d\" | awk 'NR == 2 { print $4 }')\n"
        '[ "${free:-0}" -ge "$need" ] ||'
        ' { echo "$d: ${free:-?} KiB free, $need KiB needed" >&2; exit 1; }'
    )
