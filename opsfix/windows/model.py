"""Maintenance windows and freezes, and the arithmetic that says whether disruption may run.

A window opens at every wall-clock time its cron expression matches in its time zone and
stays open for its duration of *elapsed* time. Wall-clock times do not map one to one onto
instants, so two rules settle the daylight-saving changes (PEP 495's, as zoneinfo applies
them, and what systemd does for the repeated hour):

- a wall-clock time that happens twice (clocks go back) means the first of the two, so a
  window starts once that night;
- a wall-clock time that never happens (clocks go forward) means the moment the clocks
  jump, so a window due at 02:30 on that night opens at 03:00 new time and is not lost.

A freeze is a span of instants in which nothing disruptive may run, whatever the windows
say. Every instant here is a timezone-aware datetime; the clock is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from opsfix.errors import Location
from opsfix.playbook.durations import format_duration

MAX_DURATION = timedelta(days=31)
HORIZON = timedelta(days=366 * 5)  # how far next_opening looks before it gives up
_SLACK = timedelta(hours=3)  # more than any daylight-saving shift, to search around one
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class WindowValueError(ValueError):
    """A bad value for one field of a window or freeze; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Window:
    """Opens at each match of `cron` (5 fields, in `timezone`) for `duration`."""

    cron: str
    duration: timedelta
    timezone: str = "UTC"
    name: str = ""
    origin: Location | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cron", check_cron(self.cron))
        zone(self.timezone)
        if not timedelta(minutes=1) <= self.duration <= MAX_DURATION:
            raise WindowValueError(
                "duration",
                f"duration {format_duration(self.duration)} is out of range; "
                "expected at least 1m and at most 31d",
            )

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def label(self) -> str:
        return self.name or self.cron

    def starts(self, since: datetime) -> Iterator[datetime]:
        """Start instants at or after `since`, in order, in UTC."""
        since = utc(since)
        wall = _wall(since - _SLACK, self.zone)
        matches = croniter(self.cron, wall)
        last = None
        while True:
            try:
                instant = instant_of(matches.get_next(datetime), self.zone)
            except CroniterError:  # no later match (beyond year 9999)
                return
            if instant >= since and instant != last:
                last = instant
                yield instant

    def last_start(self, at: datetime) -> datetime | None:
        """The latest start at or before `at`, in UTC (None if there is none)."""
        at = utc(at)
        matches = croniter(self.cron, _wall(at + _SLACK, self.zone))
        while True:
            try:
                instant = instant_of(matches.get_prev(datetime), self.zone)
            except CroniterError:
                return None
            if instant <= at:
                return instant

    def opening_at(self, at: datetime) -> Opening | None:
        """The opening of this window that `at` falls in, if any (the latest-ending one)."""
        start = self.last_start(at)
        if start is None or start + self.duration <= utc(at):
            return None
        return Opening(self, start, start + self.duration)

    def openings(self, since: datetime) -> Iterator[Opening]:
        """Openings that are still open at `since` or start later, in order of start."""
        since = utc(since)
        for start in self.starts(since - self.duration + timedelta(microseconds=1)):
            yield Opening(self, start, start + self.duration)

    def describe(self) -> str:
        return f"{self.cron} for {format_duration(self.duration)}, {self.timezone}"


@dataclass(frozen=True)
class Freeze:
    """Nothing disruptive runs from `start` until `end` (exclusive), both in UTC."""

    start: datetime
    end: datetime
    reason: str
    timezone: str = "UTC"
    origin: Location | None = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        zone(self.timezone)
        if self.end <= self.start:
            raise WindowValueError("end", "the freeze ends before it starts; expected end >= start")

    @classmethod
    def days(cls, first: date, last: date, reason: str, timezone: str = "UTC") -> Freeze:
        """From the start of day `first` to the end of day `last`, both in `timezone`."""
        tz = zone(timezone)
        start = instant_of(datetime.combine(first, time()), tz)
        end = instant_of(datetime.combine(last + timedelta(days=1), time()), tz)
        return cls(start, end, reason, timezone)

    def contains(self, at: datetime) -> bool:
        return self.start <= utc(at) < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def describe(self) -> str:
        """Its span in its own zone: whole days as `first .. last`, else date and time."""
        tz = zone(self.timezone)
        start, end = self.start.astimezone(tz), self.end.astimezone(tz)
        if _is_midnight(start) and _is_midnight(end):
            last = (end - timedelta(days=1)).date()
            span = f"{start.date()}" if last == start.date() else f"{start.date()} .. {last}"
            return f"{span} ({self.timezone})"
        return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} ({self.timezone})"


@dataclass(frozen=True)
class Opening:
    """One occurrence of a window, `start` to `end` (exclusive) in UTC, and freezes on it."""

    window: Window
    start: datetime
    end: datetime
    freezes: tuple[Freeze, ...] = ()

    def contains(self, at: datetime) -> bool:
        return self.start <= utc(at) < self.end

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.window.zone)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.window.zone)

    def free_spans(self) -> list[tuple[datetime, datetime]]:
        """The parts of the opening that no freeze covers."""
        spans = [(self.start, self.end)]
        for frz in self.freezes:
            spans = [part for span in spans for part in _cut(span, frz)]
        return spans

    @property
    def is_frozen(self) -> bool:
        """True when freezes cover all of it."""
        return not self.free_spans()


@dataclass(frozen=True)
class Verdict:
    """May a disruptive step run now, and why (or why not)."""

    allowed: bool
    reason: str
    opening: Opening | None = None  # the window open now
    freeze: Freeze | None = None  # the freeze in force now
    next_opening: datetime | None = None  # when not allowed: when it next is (UTC)

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Policy:
    """The windows and freezes that apply to a host.

    No windows means any time is fine except in a freeze; otherwise disruption runs only
    inside a window and outside every freeze.
    """

    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.windows and not self.freezes

    def freeze_at(self, at: datetime) -> Freeze | None:
        """The freeze in force at `at` (the one that lasts longest), if any."""
        frozen = [f for f in self.freezes if f.contains(at)]
        return max(frozen, key=lambda f: f.end) if frozen else None

    def opening_at(self, at: datetime) -> Opening | None:
        """The window open at `at` (the one that closes last), if any."""
        found = [o for w in self.windows if (o := w.opening_at(at))]
        return self._with_freezes(max(found, key=lambda o: o.end)) if found else None

    def allows_disruption(self, now: datetime) -> Verdict:
        now = utc(now)
        frz = self.freeze_at(now)
        opening = self.opening_at(now) if self.windows else None
        if frz is not None:
            after = self.next_opening(now)
            why = f"frozen until {format_instant(frz.end, zone(frz.timezone))}: {frz.reason}"
            return Verdict(False, why + _next(after), opening, frz, after)
        if not self.windows:
            return Verdict(True, "no maintenance window is declared and no freeze is in force")
        if opening is not None:
            until = format_instant(opening.end, opening.window.zone)
            why = f"inside maintenance window {opening.window.label!r} until {until}"
            return Verdict(True, why, opening)
        after = self.next_opening(now)
        return Verdict(False, "outside every maintenance window" + _next(after), None, None, after)

    def next_opening(self, now: datetime, horizon: timedelta = HORIZON) -> datetime | None:
        """The first instant at or after `now` when disruption is allowed, in UTC.

        `now` itself when it is allowed now; None when no such instant comes within
        `horizon` (say, every window falls in a freeze).
        """
        at = utc(now)
        limit = at + horizon
        while at <= limit:
            frz = self.freeze_at(at)
            if frz is not None:
                at = frz.end
                continue
            if not self.windows or any(w.opening_at(at) for w in self.windows):
                return at
            starts = [s for w in self.windows if (s := next(w.starts(at), None))]
            if not starts:
                return None
            at = min(starts)
        return None

    def windows_between(self, start: datetime, end: datetime) -> list[Opening]:
        """Every opening that overlaps [start, end), in order, with the freezes on it."""
        start, end = utc(start), utc(end)
        found = []
        for window in self.windows:
            for opening in window.openings(start):
                if opening.start >= end:
                    break
                found.append(self._with_freezes(opening))
        return sorted(found, key=lambda o: (o.start, o.end, o.window.label))

    def upcoming(self, now: datetime, count: int) -> list[Opening]:
        """The next `count` openings (the one open now included), with their freezes."""
        found = []
        for window in self.windows:
            for opening, _ in zip(window.openings(now), range(count), strict=False):
                found.append(self._with_freezes(opening))
        return sorted(found, key=lambda o: (o.start, o.end, o.window.label))[:count]

    def _with_freezes(self, opening: Opening) -> Opening:
        frozen = tuple(f for f in self.freezes if f.overlaps(opening.start, opening.end))
        return Opening(opening.window, opening.start, opening.end, frozen)


def check_cron(expr: str) -> str:
    """`expr` (an alias such as @daily spelled out) if it is a usable 5-field cron expression."""
    text = " ".join(str(expr).split())
    text = _ALIASES.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise WindowValueError(
            "cron",
            f"cron expression {expr!r} has {len(fields)} field{'s' * (len(fields) != 1)}; "
            "expected 5 "
            "(minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/"
            "@monthly/@yearly",
        )
    _cron_checked(text)
    return text


@lru_cache(maxsize=256)
def _cron_checked(text: str) -> None:
    try:
        matches = croniter(text, datetime(2000, 1, 1))
    except CroniterError as exc:
        raise WindowValueError("cron", f"invalid cron expression {text!r}: {exc}") from None
    except (ValueError, KeyError, IndexError) as exc:  # croniter lets some of these through
        raise WindowValueError("cron", f"invalid cron expression {text!r}: {exc}") from None
    if matches.nth_weekday_of_month and matches.expanded[2] != ["*"]:
        raise WindowValueError(
            "cron",
            f"cron expression {text!r} gives both a day of month and an nth weekday ('#'); "
            "cron implementations disagree on what that means: give one or the other",
        )
    try:
        matches.get_next(datetime)
    except CroniterError:
        raise WindowValueError(
            "cron", f"cron expression {text!r} never matches a date (say, 31 February)"
        ) from None


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; WindowValueError names close spellings if it is unknown."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        import difflib
        import zoneinfo

        close = difflib.get_close_matches(str(name), sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WindowValueError(
            "timezone",
            f"unknown time zone {name!r}{hint}; expected an IANA name such as UTC or Europe/Berlin",
        ) from None


def utc(at: datetime) -> datetime:
    """`at` in UTC; a naive datetime is refused, since it names no instant."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def instant_of(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time `wall` in `tz` (see the module docstring)."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(instant, tz) == wall.replace(tzinfo=None):
        return instant
    return clock_jump(wall.replace(tzinfo=tz, fold=1).astimezone(UTC), instant, tz)


def clock_jump(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The moment between `before` and `after` when the clocks of `tz` jump forward."""
    lo, hi = int(before.timestamp()), int(after.timestamp())
    offset = after.astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _wall(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None, fold=0)


def _is_midnight(at: datetime) -> bool:
    return at.time() == time()


def _cut(span: tuple[datetime, datetime], frz: Freeze) -> list[tuple[datetime, datetime]]:
    start, end = span
    parts = [(start, min(end, frz.start)), (max(start, frz.end), end)]
    return [(a, b) for a, b in parts if a < b]


def _next(after: datetime | None) -> str:
    if after is None:
        return f"; no window opens within {HORIZON.days // 366} years"
    return f"; disruption is next allowed {format_instant(after, UTC)}"


def format_instant(at: datetime, tz: tzinfo) -> str:
    """`Tue 2025-01-07 02:00 CET`: an instant as a person reads it in zone `tz`."""
    local = at.astimezone(tz)
    seconds = f":{local:%S}" if local.second else ""
    return f"{local:%a %Y-%m-%d %H:%M}{seconds} {local:%Z}"
