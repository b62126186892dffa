"""Healthy while /var (or `path`) is not on course to fill its filesystem soon.

Each run measures `path` and its largest subfolders with a bounded `du` (one filesystem,
`depth` levels, `timeout`, at low CPU and I/O priority where `nice`/`ionice` exist) and
the free space of the filesystem holding it (`df`), and stores the sample in opsfix's
state database on the controller, at the controller's time. The growth rate is the least
squares slope over the samples of the last `window_days`; the forecast is free space over
that rate. The first run records a baseline. Samples dated after "now" (the controller's
clock was set back) are left out; a shrinking folder has no forecast.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from opsfix.checks._units import human
from opsfix.evidence.state import GrowthSample
from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

DAY = 86400.0
SKEW = 300.0  # seconds a sample may lie in the future before it counts as clock skew
KEEP = 60  # du lines sent back, largest first


class VarGrowthParams(Params):
    path: str = Field("/var", description="folder to measure, absolute")
    depth: int = Field(2, ge=1, le=2, description="subfolder levels measured (1 or 2)")
    window_days: float = Field(7, gt=0, le=366, description="samples used for the rate")
    min_span_hours: float = Field(1, ge=0, description="time the samples must span for a rate")
    forecast_days: float = Field(14, gt=0, description="fail when full sooner than this")
    max_growth_mib_per_day: float | None = Field(None, gt=0, description="fail above this rate")
    timeout: float = Field(20, gt=0, le=600, description="seconds du may run")
    top: int = Field(5, ge=1, le=20, description="fastest-growing folders named in evidence")

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/") or posixpath.normpath(path) != path:
            raise ValueError(f"path must be an absolute, normalized folder, not {path!r}")
        return path


class VarGrowth(Check[VarGrowthParams]):
    def commands(self) -> list[str]:
        p = self.params
        du = cmd("du", "-xk", "-d", p.depth, "--", p.path)
        limit = f"timeout -k 2 {p.timeout:g}"
        return [
            cmd("df", "-Pk", "--", p.path),
            "p=''; command -v nice >/dev/null 2>&1 && p='nice -n 19'\n"
            'ionice -c 3 true 2>/dev/null && p="$p ionice -c 3"\n'
            f"t=''; command -v timeout >/dev/null 2>&1 && t={quote(limit)}\n"
            f'{{ $t $p {du} 2>/dev/null; echo "du-exit $?" >&2; }} | sort -rn | head -n {KEEP}',
        ]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        sample = self._sample(results)
        if isinstance(sample, CheckResult):
            return sample
        store = self.context.state()
        if store is None:
            return CheckResult.error("no state database to keep samples in")
        since = sample.taken_at - self.params.window_days * DAY
        first = store.growth_sample_count(sample.host, sample.path) == 0
        history = store.growth_samples(sample.host, sample.path, since=since)
        store.add_growth_sample(sample)
        if first:
            return CheckResult.passed(
                f"baseline recorded: {sample.path} {human(sample.total)}", **_facts(sample)
            )
        return judge(self.params, [*history, sample], sample)

    def _sample(self, results: Sequence[CommandResult]) -> GrowthSample | CheckResult:
        df, du, path = results[0], results[1], self.params.path
        lines = df.stdout.splitlines() if df.ok else []
        fs = lines[1].split(maxsplit=5) if len(lines) > 1 else []
        if len(fs) != 6 or not fs[1].isdigit():
            return CheckResult.error(f"df {path} failed", stderr=(df.stderr or df.stdout).strip())
        if "du-exit 124" in du.stderr or "du-exit 137" in du.stderr:
            return CheckResult.error(f"du {path} did not finish in {self.params.timeout:g}s")
        sizes: dict[str, int] = {}
        for line in du.stdout.splitlines():
            size, _, folder = line.partition("\t")
            if size.isdigit() and folder:
                sizes[folder] = int(size) * 1024
        if path not in sizes:
            return CheckResult.error(f"du {path} failed", stderr=du.stderr.strip()[-500:])
        total = sizes.pop(path)
        return GrowthSample(
            host=self.context.host,
            path=path,
            taken_at=self.context.clock(),
            total=total,
            fs_size=int(fs[1]) * 1024,
            fs_avail=int(fs[3]) * 1024,
            folders=sizes,
        )


def judge(
    params: VarGrowthParams, samples: Sequence[GrowthSample], now: GrowthSample
) -> CheckResult:
    """Pure: the verdict on the samples of the window, `now` being the newest measurement."""
    usable = sorted((s for s in samples if s.taken_at <= now.taken_at + SKEW), key=_time)
    facts = _facts(now)
    if len(usable) < len(samples):
        facts["ignored_future_samples"] = len(samples) - len(usable)
    span = usable[-1].taken_at - usable[0].taken_at if usable else 0.0
    facts.update(samples=len(usable), span=_duration(span))
    rate = slope([(s.taken_at, s.total) for s in usable])
    if rate is None or span < params.min_span_hours * 3600:
        need = f"{params.min_span_hours:g} h"
        return CheckResult.passed(
            f"collecting samples: {len(usable)} over {_duration(span)} (a rate needs {need})",
            **facts,
        )
    per_day = rate * DAY
    facts["growth"] = _rate(per_day)
    growing = fastest(usable, params.top)
    if growing:
        facts["fastest_growing"] = growing
    if per_day <= 0:
        return CheckResult.passed(f"{now.path} is not growing ({_rate(per_day)})", **facts)
    days = now.fs_avail / per_day
    facts["days_left"] = round(days, 1)
    limit = params.max_growth_mib_per_day
    if days < params.forecast_days:
        return CheckResult.failed(
            f"{now.path} fills its filesystem in {days:.1f} days at {_rate(per_day)}", **facts
        )
    if limit is not None and per_day > limit * 1024 * 1024:
        return CheckResult.failed(
            f"{now.path} grows {_rate(per_day)}, over {limit:g} MiB/day", **facts
        )
    return CheckResult.passed(f"{now.path} full in {days:.0f} days at {_rate(per_day)}", **facts)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least squares slope of y over t; None without two distinct times."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread <= 0:
        return None
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread


def fastest(samples: Sequence[GrowthSample], top: int) -> list[str]:
    """The subfolders growing fastest, leaving out a parent whose growth a child explains."""
    rates: dict[str, float] = {}
    for folder in samples[-1].folders:
        # a folder missing from a sample was new, or too small to make the list
        points = [(s.taken_at, s.folders.get(folder, 0)) for s in samples]
        rate = slope(points)
        if rate is not None and rate > 0:
            rates[folder] = rate * DAY
    explained = {
        parent
        for parent, rate in rates.items()
        for child, child_rate in rates.items()
        if child.startswith(parent.rstrip("/") + "/") and child_rate >= 0.8 * rate
    }
    ranked = sorted((r, f) for f, r in rates.items() if f not in explained)[::-1]
    return [f"{folder} {_rate(rate)}" for rate, folder in ranked[:top]]


def _facts(sample: GrowthSample) -> dict[str, Any]:
    return {
        "path": sample.path,
        "size": human(sample.total),
        "filesystem_free": f"{human(sample.fs_avail)} of {human(sample.fs_size)}",
    }


def _time(sample: GrowthSample) -> float:
    return sample.taken_at


def _rate(per_day: float) -> str:
    sign = "+" if per_day >= 0 else "-"
    return f"{sign}{human(abs(per_day))}/day"


def _duration(seconds: float) -> str:
    if seconds >= DAY:
        return f"{seconds / DAY:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"
