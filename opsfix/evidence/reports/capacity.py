"""/var over time, per host, and the day it fills: a table and a chart.

The samples are the ones the var_growth check stores in the state database at each run;
the forecast is the check's own (opsfix.checks.var_growth): the least squares growth
rate over the last `window_days` of samples, and the filesystem's free space over that
rate. Hosts are sorted so that the one that fills first comes first; hosts whose folder
is not growing, or that have too few samples for a rate, come last.

matplotlib is imported only to draw a chart, with its Agg backend (no display needed);
it is the optional extra `opsfix[charts]`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any  # matplotlib's Axes: matplotlib is imported late

from opsfix.checks._units import human
from opsfix.checks.var_growth import DAY, SKEW, slope
from opsfix.evidence.state import GrowthSample, Store

CHART_FORMATS = (".png", ".svg")


@dataclass(frozen=True)
class Forecast:
    host: str
    path: str
    samples: Sequence[GrowthSample] = field(repr=False)  # oldest first
    per_day: float | None  # bytes per day over the window; None without a rate
    days_left: float | None  # None when not growing or without a rate

    @property
    def latest(self) -> GrowthSample:
        return self.samples[-1]

    @property
    def full_at(self) -> float | None:
        return None if self.days_left is None else self.latest.taken_at + self.days_left * DAY

    @property
    def full_size(self) -> int:
        """The folder's size on the day its filesystem is full."""
        return self.latest.total + self.latest.fs_avail

    def status(self) -> str:
        if self.per_day is None:
            return f"collecting samples ({len(self.samples)})"
        if self.days_left is None:
            return "not growing"
        return f"full in {self.days_left:.1f} days"


def forecast(
    host: str, path: str, samples: Sequence[GrowthSample], window_days: float = 7.0
) -> Forecast | None:
    """The forecast from a host's samples, as the var_growth check makes it at its newest."""
    ordered = sorted(samples, key=lambda s: (s.taken_at, s.total))
    if not ordered:
        return None
    now = ordered[-1].taken_at
    window = [s for s in ordered if now - window_days * DAY <= s.taken_at <= now + SKEW]
    rate = slope([(s.taken_at, s.total) for s in window])
    per_day = None if rate is None else rate * DAY
    days = ordered[-1].fs_avail / per_day if per_day and per_day > 0 else None
    return Forecast(host, path, ordered, per_day, days)


def forecasts(
    store: Store,
    path: str = "/var",
    hosts: Sequence[str] | None = None,
    window_days: float = 7.0,
    since: float | None = None,
) -> list[Forecast]:
    """Every host's forecast, the host that fills first first."""
    found = []
    for host in hosts or store.growth_hosts(path):
        made = forecast(host, path, store.growth_samples(host, path, since=since), window_days)
        if made is not None:
            found.append(made)
    return sorted(found, key=_urgency)


def _urgency(f: Forecast) -> tuple[float, float, str]:
    full = f.full_at if f.full_at is not None else float("inf")
    return full, -(f.per_day or 0.0), f.host


def table(items: Sequence[Forecast], warn_days: float | None = None) -> str:
    """A plain text table: one row per host, the first to fill first. With `warn_days`,
    a host that fills sooner is marked `!` in the first column, and a line says why."""
    header = ("", "HOST", "PATH", "SIZE", "FREE ON FS", "GROWTH", "FULL IN", "FULL ON", "SAMPLES")
    rows = [header]
    for f in items:
        latest = f.latest
        soon = warn_days is not None and f.days_left is not None and f.days_left < warn_days
        rows.append(
            (
                "!" if soon else "",
                f.host,
                f.path,
                human(latest.total),
                f"{human(latest.fs_avail)} of {human(latest.fs_size)}",
                "-" if f.per_day is None else f"{_signed(f.per_day)}/day",
                "-" if f.days_left is None else f"{f.days_left:.1f} days",
                _date(f.full_at) if f.full_at is not None else f.status(),
                f"{len(f.samples)} since {_date(f.samples[0].taken_at)}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        " ".join(c.ljust(w) for c, w in zip(row[:2], widths[:2], strict=True))
        + "  "
        + "  ".join(c.ljust(w) for c, w in zip(row[2:], widths[2:], strict=True))
        for row in rows
    ]
    marked = sum(row[0] == "!" for row in rows)
    if marked:
        lines.append(f"! {marked} host(s) fill within {warn_days:g} days (--warn-days)")
    return "\n".join(line.rstrip() for line in lines)


def can_draw() -> bool:
    """Whether matplotlib (the `charts` extra) is installed; asked without importing it."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def chart(items: Sequence[Forecast], out: Path, warn_days: float = 14.0) -> None:
    """Days until full (bars, first to fill on top) over /var size in time (lines)."""
    if out.suffix.lower() not in CHART_FORMATS:
        raise ValueError(f"chart file must end in {' or '.join(CHART_FORMATS)}: {out}")
    import matplotlib.pyplot as plt

    fig = figure(items, warn_days)
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)


def figure(items: Sequence[Forecast], warn_days: float = 14.0) -> Any:
    """The chart as a matplotlib Figure (its first Axes holds the bars); close it after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 4.5 + 0.35 * len(items)
    fig, (bars, lines) = plt.subplots(
        2, 1, figsize=(10, height), gridspec_kw={"height_ratios": [1 + 0.12 * len(items), 2]}
    )
    _bars(bars, items, warn_days)
    _lines(lines, items)
    fig.suptitle(_title(items), fontsize=13, fontweight="bold", x=0.02, ha="left")
    fig.tight_layout()
    return fig


def _title(items: Sequence[Forecast]) -> str:
    if not items:
        return "/var capacity: no samples yet"
    first = items[0]
    if first.full_at is None:
        return f"{first.path} capacity: no host is on course to fill"
    return (
        f"{first.path} capacity: {first.host} fills first, in {first.days_left:.1f} days "
        f"({_date(first.full_at)})"
    )


def _bars(axes: Any, items: Sequence[Forecast], warn_days: float) -> None:
    """Every bar at its true length, none clipped: a linear scale when the days to full
    are of one order, a log scale when they span more (a host that fills in a year must
    neither squash the one that fills this week nor be drawn as long as a 2-month one)."""
    days = [f.days_left for f in items if f.days_left is not None]
    longest, shortest = max(days, default=warn_days), min(days, default=warn_days)
    log = longest > 10 * max(shortest, 0.5)
    start = 0.0
    if log:
        axes.set_xscale("log")
        start = min(shortest, warn_days) / 2  # a log axis has no zero: bars start here
    end = max(longest, warn_days) * (3.0 if log else 1.35)  # room for the labels
    names = [f.host for f in items][::-1]  # barh draws bottom up; first to fill on top
    for y, f in enumerate(items[::-1]):
        left = f.days_left
        width = max(left - start, 0.0) if left is not None else 0.0
        axes.barh(y, width, left=start, color=_colour(left, warn_days))
        label = f.status() if left is None else f"{left:.1f} days ({_date(f.full_at or 0)})"
        at = start + width
        axes.text(at * 1.05 if log else at + end * 0.01, y, label, va="center", fontsize=9)
    axes.axvline(warn_days, color="#b3261e", linestyle=":", linewidth=1)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlim(start, end)
    scale = " (log scale)" if log else ""
    axes.set_xlabel(f"days until the filesystem is full{scale} (dotted: {warn_days:g} days)")


def _lines(axes: Any, items: Sequence[Forecast]) -> None:
    import matplotlib.dates as mdates

    for f in items:
        times = [_num(s.taken_at) for s in f.samples]
        sizes = [s.total / 2**30 for s in f.samples]
        (line,) = axes.plot(times, sizes, marker="o", markersize=3, label=f"{f.host}: {f.status()}")
        if f.per_day and f.per_day > 0 and f.full_at is not None:
            span = f.samples[-1].taken_at - f.samples[0].taken_at  # as far ahead as seen back
            end = min(f.full_at, f.latest.taken_at + span)
            grown = f.latest.total + f.per_day * (end - f.latest.taken_at) / DAY
            axes.plot(
                [_num(f.latest.taken_at), _num(end)],
                [f.latest.total / 2**30, grown / 2**30],
                linestyle="--",
                color=line.get_color(),
            )
            if end == f.full_at:
                axes.plot(
                    _num(end), f.full_size / 2**30, marker="X", markersize=9, color=line.get_color()
                )
    locator = mdates.AutoDateLocator(tz=UTC, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    axes.ticklabel_format(axis="y", style="plain", useOffset=False)  # no "+2.3" puzzles
    axes.set_ylabel("size (GiB)")
    axes.set_title("size over time (dashed: forecast; X: full)", fontsize=10, loc="left")
    axes.grid(True, alpha=0.3)
    if items:
        axes.legend(fontsize=8, loc="upper left")


def _colour(days: float | None, warn_days: float) -> str:
    if days is None:
        return "#8c959f"
    if days < warn_days:
        return "#b3261e"
    return "#d29922" if days < 2 * warn_days else "#2da44e"


def _num(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=UTC)


def _date(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + human(abs(value))
