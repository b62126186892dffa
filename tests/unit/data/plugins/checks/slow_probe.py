"""Test plugin: a probe that takes its time, and notes each time it runs."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import quote
from opsfix.transport.base import CommandResult


class SlowProbeParams(Params):
    seconds: float = Field(ge=0, description="how long the probe takes")
    log: str = Field(description="file that gets a line each time the probe starts")


class SlowProbe(Check[SlowProbeParams]):
    def commands(self) -> list[str]:
        p = self.params
        return [f"echo start >> {quote(p.log)}; sleep {p.seconds:g}; echo done"]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        if results[0].ok and results[0].stdout.strip() == "done":
            return CheckResult.passed("done")
        return CheckResult.error(f"probe ended with status {results[0].exit_status}")
