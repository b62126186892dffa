"""Per rule and host: at most N runs in any hour, and a cool-down after a failed repair.

These come on top of the playbook's flap guard (which counts repairs of one step in the
run history): they bound how often an alert may start a run at all. Kept in memory; a
restarted server starts counting anew, and the flap guard still holds.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import timedelta

__all__ = ["Limits"]

HOUR = 3600.0


class Limits:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._starts: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._failed: dict[tuple[str, str], float] = {}

    def refusal(self, rule: str, host: str, per_hour: int, cooldown: timedelta) -> str | None:
        """Why a run of `rule` on `host` may not start now, or None."""
        now = self.clock()
        starts = self._recent(rule, host, now)
        if len(starts) >= per_hour:
            wait = int(starts[0] + HOUR - now) + 1
            return (
                f"rate limit: rule {rule!r} ran {len(starts)} time(s) on {host} in the last "
                f"hour (runs_per_host_per_hour: {per_hour}); next run possible in {wait}s"
            )
        failed = self._failed.get((rule, host))
        if failed is not None and now - failed < cooldown.total_seconds():
            wait = int(failed + cooldown.total_seconds() - now) + 1
            return f"cool-down: the last run of rule {rule!r} on {host} failed; next in {wait}s"
        return None

    def started(self, rule: str, host: str) -> None:
        self._starts[(rule, host)].append(self.clock())

    def finished(self, rule: str, host: str, ok: bool) -> None:
        if ok:
            self._failed.pop((rule, host), None)
        else:
            self._failed[(rule, host)] = self.clock()

    def _recent(self, rule: str, host: str, now: float) -> deque[float]:
        starts = self._starts[(rule, host)]
        while starts and starts[0] <= now - HOUR:
            starts.popleft()
        return starts
