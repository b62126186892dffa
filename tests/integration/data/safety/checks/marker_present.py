"""Test check: healthy when a file exists."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class MarkerPresentParams(Params):
    path: str = Field(description="file that must exist")


class MarkerPresent(Check[MarkerPresentParams]):
    def commands(self) -> list[str]:
        return [cmd("test", "-e", self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        if results[0].exit_status == 0:
            return CheckResult.passed(f"{self.params.path} exists")
        return CheckResult.failed(f"{self.params.path} missing")
