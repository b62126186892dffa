"""Fault tests: healthy when a file holds exactly the expected text."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class ContentIsParams(Params):
    path: str = Field(description="file to read")
    content: str = Field(description="the text it must hold")


class ContentIs(Check[ContentIsParams]):
    def commands(self) -> list[str]:
        return [cmd("cat", self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        found = results[0]
        if found.exit_status == 0 and found.stdout == self.params.content:
            return CheckResult.passed(f"{self.params.path} holds the expected text")
        return CheckResult.failed(f"{self.params.path} differs", found=found.stdout[:80])
