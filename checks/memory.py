"""Healthy while enough memory is available: MemAvailable as a share of MemTotal.

MemAvailable (Linux 3.14+) is the kernel's own estimate of what new work can use without
swapping: free memory plus the caches it can drop. Kernels without it get the same sum
worked out from MemFree, Buffers and Cached, and the evidence says it is an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from opsfix.checks._units import human, percent
from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class MemoryParams(Params):
    min_available_percent: float = Field(10, ge=0, lt=100, description="fail below this")
    warn_available_percent: float = Field(20, ge=0, lt=100, description="warn below this")

    @model_validator(mode="after")
    def _ordered(self) -> MemoryParams:
        if self.warn_available_percent < self.min_available_percent:
            raise ValueError(
                f"warn_available_percent ({self.warn_available_percent:g}) is below "
                f"min_available_percent ({self.min_available_percent:g})"
            )
        return self


class Memory(Check[MemoryParams]):
    def commands(self) -> list[str]:
        return [cmd("cat", "/proc/meminfo")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        info, p = _meminfo(results[0].stdout), self.params
        total = info.get("MemTotal", 0)
        if not results[0].ok or total <= 0:
            return CheckResult.error("cannot read /proc/meminfo", stderr=results[0].stderr.strip())
        available = info.get("MemAvailable")
        estimated = available is None
        if available is None:
            available = sum(info.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
        share = percent(available, total)
        facts = {"available": human(available), "total": human(total), "percent": share}
        swap = info.get("SwapTotal", 0) - info.get("SwapFree", 0)
        if info.get("SwapTotal"):
            facts["swap_used"] = f"{human(swap)} of {human(info['SwapTotal'])}"
        if estimated:
            facts["estimated"] = "no MemAvailable: MemFree + Buffers + Cached"
        text = f"{share:g}% of memory available ({human(available)} of {human(total)})"
        if share < p.min_available_percent:
            return CheckResult.failed(f"only {text}", **facts)
        if share < p.warn_available_percent:
            return CheckResult.passed(f"warning: {text}", warnings=[text], **facts)
        return CheckResult.passed(text, **facts)


def _meminfo(text: str) -> dict[str, int]:
    """`Name:   1234 kB` lines, in bytes."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        number = rest.split()[:1]
        if number and number[0].isdigit():
            values[name] = int(number[0]) * (1024 if rest.strip().endswith("kB") else 1)
    return values
