"""Fault tests: a check whose command takes `seconds` on the host (0: answers at once)."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class PauseParams(Params):
    seconds: float = Field(ge=0, description="how long the command sleeps on the host")


class Pause(Check[PauseParams]):
    def commands(self) -> list[str]:
        return [cmd("sleep", f"{self.params.seconds:g}")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        if results[0].exit_status == 0:
            return CheckResult.passed(f"answered after {self.params.seconds:g}s")
        return CheckResult.error(f"sleep ended with {results[0].exit_status}")
