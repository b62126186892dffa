"""Take away the permission bits a file should not have, keeping every other bit.

Only bits are removed, never added, so the change can only make access narrower; the
old mode is the rollback. A symlink is refused (chmod would change its target)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from ._mode import AbsolutePath, Mode, parse, stat


class FixModeParams(Params):
    path: AbsolutePath = Field(description="the file on the host")
    mode: Mode = Field("0644", description="the most it may allow, octal")


class FixMode(Remediation[FixModeParams]):
    disruptive = False  # a chmod: nothing reloads, restarts or is deleted

    def gather(self) -> list[str]:
        return [stat(self.params.path)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p = self.params
        found = parse(facts[0].stdout) if facts[0].ok else None
        if found is None:
            return Plan(f"{p.path} unchanged", refuse=f"cannot stat {p.path}")
        mode, _, kind = found
        if kind == "symbolic link":
            return Plan(f"{p.path} unchanged", refuse=f"{p.path} is a symlink: not following it")
        narrower = mode & int(p.mode, 8)
        if narrower == mode:
            return Plan(f"{p.path} is already {mode:04o}")
        return Plan(
            f"chmod {narrower:04o} {p.path} (was {mode:04o})",
            validate=(cmd("test", "!", "-L", p.path),),
            act=(cmd("chmod", f"{narrower:04o}", "--", p.path),),
            rollback=(cmd("chmod", f"{mode:04o}", "--", p.path),),
        )
