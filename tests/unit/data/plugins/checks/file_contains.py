"""Test plugin: a file holds a given line."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class FileContainsParams(Params):
    path: str = Field(description="file to read")
    line: str = Field(description="line it must hold")
    count: int = Field(default=1, description="how many times at least")


class FileContains(Check[FileContainsParams]):
    def commands(self) -> list[str]:
        return [cmd("grep", "-cxF", "--", self.params.line, self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        found = results[0].stdout.strip()
        if results[0].exit_status > 1 or not found.isdigit():
            return CheckResult.error("cannot read", stderr=results[0].stderr.strip())
        if int(found) >= self.params.count:
            return CheckResult.passed(f"{found} match(es)")
        return CheckResult.failed("line missing", path=self.params.path)
