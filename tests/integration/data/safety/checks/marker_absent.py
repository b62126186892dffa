"""Test check: healthy while a marker file is absent (tests break a host by creating it)."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class MarkerAbsentParams(Params):
    path: str = Field(description="marker file")


class MarkerAbsent(Check[MarkerAbsentParams]):
    def commands(self) -> list[str]:
        return [cmd("test", "-e", self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        if results[0].exit_status == 0:
            return CheckResult.failed(f"{self.params.path} exists")
        return CheckResult.passed(f"{self.params.path} absent")
