"""Healthy when its command succeeds: a check whose command prints without end, so a test
can show that a host's output is bounded (and a cut text never judged healthy)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.transport.base import CommandResult


class ChattyParams(Params):
    megabytes: int = Field(500, gt=0, description="how much the command prints, in MB")


class Chatty(Check[ChattyParams]):
    Params = ChattyParams

    def commands(self) -> list[str]:
        return [f"head -c {self.params.megabytes * 1000000} /dev/zero | tr '\\0' x"]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        if results[0].ok:  # naive on purpose: only the engine stands between a cut text and this
            return CheckResult.passed(f"printed {len(results[0].stdout)} bytes")
        return CheckResult.failed(results[0].stderr or "the command failed")
