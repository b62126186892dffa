"""Healthy after the host has slept: a check that blocks, so a test can interrupt a run."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class SlowParams(Params):
    seconds: float = Field(30.0, gt=0, description="how long the command sleeps on the host")


class Slow(Check[SlowParams]):
    def commands(self) -> list[str]:
        return [cmd("sleep", f"{self.params.seconds:g}")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        return CheckResult.passed(f"slept {self.params.seconds:g}s")
