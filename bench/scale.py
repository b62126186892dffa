"""The scale series: health-4 at growing fleet sizes, judged against the floor's growth.

Wall time on a shared 2-core machine drifts with other work, so nothing here compares
absolute times across rounds: each round runs every contender once (alternating), the
ratio of opsfix to the floor is taken within each round, and growth is the ratio at N
hosts over the ratio at the first size. A tool whose cost per host is flat grows as the
floor grows: growth 1.0.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

BASE_NETWORK = ipaddress.IPv4Address("10.240.0.0")
FIRST_HOST_OFFSET = 11  # as opsfix.lab.plan: .11 is the first host
MIB = 1024 * 1024
GROWTH_LIMIT = 1.2  # wall within 1.2x of linear from the first size, relative to the floor
LARGEST_RATIO = 1.2  # opsfix at the largest size: at most 1.2x the floor
RSS_LIMIT = 500 * MIB


Series = Mapping[tuple[str, int, str], Any]  # run.Series by (workload, size, contender)


def default_subnet(count: int) -> str:
    """The smallest subnet at 10.240.0.0 that holds `count` lab hosts (a /24 up to 243)."""
    for prefix in range(24, 15, -1):
        if 2 ** (32 - prefix) - FIRST_HOST_OFFSET - 1 >= count:
            return f"{BASE_NETWORK}/{prefix}"
    raise ValueError(f"{count} hosts: more than a /16 holds")


def rounds_at(size: int, rounds: int, large_rounds: int, large_from: int) -> int:
    """Fewer rounds at large sizes keep a full series under ~25 minutes."""
    return min(rounds, large_rounds) if size >= large_from else rounds


def growth(series: Series, sizes: Sequence[int]) -> list[str]:
    """Markdown rows: per size, opsfix and the floor per host, their ratio and its growth."""
    rows = [
        "| hosts | floor wall (s) | opsfix wall (s) | floor ms/host | opsfix ms/host | "
        "opsfix/floor (paired) | growth vs first size | opsfix CPU (s) | peak RSS (MiB) | "
        "threads | fds | hosts lost |",
        "| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    first = None
    for size in sizes:
        o, f = series.get(("health4", size, "opsfix")), series.get(("health4", size, "floor"))
        if not (o and f and o.samples and f.samples):
            continue
        ratio = o.paired(f) or o.median() / f.median()
        first = first or ratio
        lost = len(o.failures)
        rows.append(
            f"| {size} | {f.median():.2f} | {o.median():.2f} | {1000 * f.median() / size:.1f} | "
            f"{1000 * o.median() / size:.1f} | {ratio:.2f}x | {ratio / first:.2f} | "
            f"{o.median('cpu'):.2f} | {max(s.peak_rss for s in o.samples) / MIB:.0f} | "
            f"{o.threads or ''} | {o.fds or ''} | {lost} |"
        )
    return rows


def targets(series: Series, sizes: Sequence[int]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the scale targets the collected series can judge."""
    found: list[tuple[str, str, bool]] = []
    ratios = {}
    for size in sizes:
        o, f = series.get(("health4", size, "opsfix")), series.get(("health4", size, "floor"))
        if o and f and o.samples and f.samples:
            ratios[size] = o.paired(f) or o.median() / f.median()
    if len(ratios) < 2:
        return found
    first, *later = sorted(ratios)
    for size in later:
        g = ratios[size] / ratios[first]
        what = f"health-4 @{size}: growth of opsfix/floor since @{first} <= {GROWTH_LIMIT}"
        found.append((what, f"{g:.2f}", g <= GROWTH_LIMIT))
    largest = later[-1]
    what = f"health-4 @{largest} <= {LARGEST_RATIO}x floor (paired rounds)"
    found.append((what, f"{ratios[largest]:.2f}x", ratios[largest] <= LARGEST_RATIO))
    o = series[("health4", largest, "opsfix")]
    peak = max(s.peak_rss for s in o.samples)
    found.append(
        (f"controller RSS @{largest} < 500 MiB", f"{peak / MIB:.0f} MiB", peak < RSS_LIMIT)
    )
    lost = {
        size: len(s.failures)
        for (w, size, name), s in series.items()
        if w == "health4" and name in ("opsfix", "floor")
    }
    text = ", ".join(f"{n} failed runs @{size}" for size, n in sorted(lost.items()) if n) or "none"
    found.append(
        ("no host lost to a limit (every opsfix and floor run exit 0)", text, text == "none")
    )
    return found


def load_text(loads: Sequence[float]) -> str:
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else ""
