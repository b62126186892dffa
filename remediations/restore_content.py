"""Re-deploy a web root from a release folder on the controller.

Writes every file that is missing on the host or differs from the release; with `prune`,
removes host files the release lacks (symlinks and folders stay). Checks free space first;
reloads nothing: nginx serves the files as they land.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from functools import cached_property

from pydantic import Field, field_validator

from opsfix.plugin import Change, ControllerPath, Params, Plan, Remediation, Remove, WriteFile
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from . import _service

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
        return [f"[ -e {d} ] || exit 0\ncd {d} || exit 2\nfind . -type f -exec sha256sum -z {{}} +"]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        source, dest = self.params.source, self.params.dest
        if not self.release:
            state = "has no files" if source.is_dir() else "does not exist"
            return Plan(f"{dest} not restored", refuse=f"release folder {source} {state}")
        if not facts[0].ok:
            reason = f"cannot read {dest} on the host: {_service.failure(facts[0])}"
            return Plan(f"{dest} not restored", refuse=reason)
        lines = facts[0].stdout.split("\0")
        have = {line[66:].removeprefix("./"): line[:64] for line in lines if line}
        changes: list[Change] = [
            WriteFile(f"{dest}/{rel}", data, self.params.mode)
            for rel, data in self.release.items()
            if have.get(rel) != hashlib.sha256(data).hexdigest()
        ]
        if self.params.prune:
            changes += [Remove(f"{dest}/{rel}") for rel in sorted(have) if rel not in self.release]
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
