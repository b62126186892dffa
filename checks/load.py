"""Healthy while the load average per CPU stays under `max_per_core`.

The load average counts tasks running or waiting to run (and, on Linux, those stuck in
uninterruptible I/O), so it is judged per online CPU: 2.0 on 2 CPUs is a full machine,
on 16 an idle one. `which` picks the 1, 5 or 15 minute average; 5 ignores a short spike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_INDEX = {"1": 0, "5": 1, "15": 2}


class LoadParams(Params):
    max_per_core: float = Field(2.0, gt=0, le=1000, description="fail at or above this")
    warn_per_core: float = Field(1.0, gt=0, le=1000, description="warn at or above this")
    which: Literal["1", "5", "15"] = Field("5", description="the average judged, in minutes")

    @model_validator(mode="after")
    def _ordered(self) -> LoadParams:
        if self.warn_per_core > self.max_per_core:
            raise ValueError(
                f"warn_per_core ({self.warn_per_core:g}) is over max_per_core "
                f"({self.max_per_core:g})"
            )
        return self


class Load(Check[LoadParams]):
    def commands(self) -> list[str]:
        return [cmd("cat", "/proc/loadavg"), "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN"]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        loadavg, cores_out, p = results[0], results[1], self.params
        fields = loadavg.stdout.split()[:3]
        cores = cores_out.stdout.strip()
        try:
            averages = [float(f) for f in fields]
            count = int(cores)
        except ValueError:
            return CheckResult.error(
                "cannot read the load average or the CPU count",
                stderr=(loadavg.stderr + cores_out.stderr).strip(),
            )
        if len(averages) != 3 or count < 1:
            return CheckResult.error("cannot read the load average", output=loadavg.stdout[:200])
        load = averages[_INDEX[p.which]]
        per_core = round(load / count, 2)
        facts = {"load": " ".join(fields), "cores": count, "per_core": per_core}
        text = f"{p.which}-min load {load:g} on {count} CPU(s): {per_core:g} per CPU"
        if per_core >= p.max_per_core:
            return CheckResult.failed(f"{text} (max {p.max_per_core:g})", **facts)
        if per_core >= p.warn_per_core:
            return CheckResult.passed(f"warning: {text}", warnings=[text], **facts)
        return CheckResult.passed(text, **facts)
