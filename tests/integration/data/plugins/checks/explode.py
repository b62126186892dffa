"""A check whose constructor raises: a plugin bug, which the CLI reports as exit 250."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsfix.plugin import Check, CheckResult, Params
from opsfix.transport.base import CommandResult


class Explode(Check[Params]):
    def __init__(self, params: Params, *context: Any) -> None:
        raise RuntimeError("explode: a plugin bug in __init__")

    def commands(self) -> list[str]:
        return ["true"]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        return CheckResult.passed("never reached")
