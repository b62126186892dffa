"""Healthy when the tree at `path` holds at most `max_kib` KiB (`du -sk`).

Bench-only stand-in until a built-in size check lands.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class BenchDirSizeParams(Params):
    path: str = Field(description="folder whose size is judged")
    max_kib: int = Field(1 << 20, ge=0, description="largest healthy size, KiB")


class BenchDirSize(Check[BenchDirSizeParams]):
    Params = BenchDirSizeParams

    def commands(self) -> list[str]:
        return [cmd("du", "-sk", self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        du = results[0]
        if not du.ok or not du.stdout.split():
            return CheckResult.error("du failed", stderr=du.stderr.strip())
        size = int(du.stdout.split()[0])
        verdict = CheckResult.passed if size <= self.params.max_kib else CheckResult.failed
        return verdict(f"{self.params.path}: {size} KiB", kib=size)
