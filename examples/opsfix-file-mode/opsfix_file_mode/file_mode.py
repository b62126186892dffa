"""Healthy when a file allows no more than the given permission bits (and, when asked,
has the given owner): a key or a config readable by everyone is a finding."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.transport.base import CommandResult

from ._mode import AbsolutePath, Mode, parse, stat


class FileModeParams(Params):
    path: AbsolutePath = Field(description="the file on the host")
    mode: Mode = Field("0644", description="the most it may allow, octal")
    owner: str | None = Field(None, description="the user that must own it; null: any")


class FileMode(Check[FileModeParams]):
    def commands(self) -> list[str]:
        return [stat(self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        p, found = self.params, results[0]
        if found.exit_status != 0 and "No such file" in found.stderr:
            return CheckResult.failed(f"{p.path} does not exist", path=p.path)
        facts = parse(found.stdout) if found.ok else None
        if facts is None:
            return CheckResult.error(f"cannot stat {p.path}", stderr=found.stderr.strip())
        mode, owner, kind = facts
        evidence = {"path": p.path, "mode": f"{mode:04o}", "owner": owner, "type": kind}
        if kind == "symbolic link":  # a link's own bits mean nothing; its target's are unseen
            return CheckResult.error(f"{p.path} is a symlink: name the file itself", **evidence)
        extra = mode & ~int(p.mode, 8)
        if extra:
            return CheckResult.failed(
                f"{p.path} is {mode:04o}: {extra:04o} more than {p.mode}", **evidence
            )
        if p.owner is not None and owner != p.owner:
            return CheckResult.failed(f"{p.path} is owned by {owner}, not {p.owner}", **evidence)
        return CheckResult.passed(f"{p.path} is {mode:04o}", **evidence)
