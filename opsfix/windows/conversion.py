"""A window's cron expression as systemd OnCalendar= lines and as crontab lines.

croniter reads the expression; what it found is turned into `Rule`s, each one calendar
line that both systemd and cron can state:

- cron's OR rule: when both day of month and day of week are restricted, a day matching
  either one fires, so there are two rules (one per field);
- the nth weekday `2#1` (first Tuesday) is that weekday on days 1-7; `#n` on days
  (n-1)*7+1 to n*7;
- the last day of the month `L`, and the last weekday of the month `L5` (last Friday),
  are systemd's `~01` and `Fri ~07/1`; crontab lines reach them with a guard command.

What has no equivalent (croniter's `W`, nearest weekday) is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from croniter import croniter

from opsfix.windows.model import UTC, Window, clock_jump

DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


class ConversionError(ValueError):
    """A window cannot be scheduled this way; the message says why."""

    def __init__(self, message: str, window: Window | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.window = window


@dataclass(frozen=True)
class Rule:
    """One calendar line. None means every value; weekdays count from 0 = Sunday."""

    minutes: tuple[int, ...] | None
    hours: tuple[int, ...] | None
    months: tuple[int, ...] | None
    days: tuple[int, ...] | None = None
    weekdays: tuple[int, ...] | None = None
    week: int | None = None  # the nth week: days (n-1)*7+1 .. n*7
    last_day: bool = False  # the last day of the month
    last_week: bool = False  # the last seven days of the month

    @property
    def day_range(self) -> tuple[int, int] | None:
        if self.week is not None:
            return (self.week - 1) * 7 + 1, min(self.week * 7, 31)
        return None


@dataclass(frozen=True)
class CronLine:
    """Five crontab fields and a shell guard (empty, or a test that ends in ` && `)."""

    fields: tuple[str, str, str, str, str]
    guard: str = ""


def rules(cron: str) -> list[Rule]:
    """The calendar rules that together fire exactly when `cron` matches."""
    parsed = croniter(cron)
    if getattr(parsed, "nearest_weekday", None):
        raise ConversionError(
            f"{cron!r}: 'W' (nearest weekday) has no systemd or crontab equivalent"
        )
    minute, hour, dom, month, dow = parsed.expanded
    base = Rule(_values(minute), _values(hour), _values(month))
    if parsed.nth_weekday_of_month:
        return _nth_rules(parsed.nth_weekday_of_month, base)
    if dom != ["*"] and dow != ["*"]:
        return [*_day_rules(dom, base), replace(base, weekdays=_values(dow))]
    return _day_rules(dom, replace(base, weekdays=_values(dow)))


def oncalendar(window: Window) -> list[str]:
    """systemd OnCalendar= values for the window's starts, in the window's time zone."""
    return [_oncalendar(rule, window.timezone) for rule in _rules(window)]


def cron_lines(window: Window) -> list[CronLine]:
    """crontab lines (in the machine's time zone, which must be the window's)."""
    return [line for rule in _rules(window) for line in _cron_lines(rule)]


def _rules(window: Window) -> list[Rule]:
    try:
        return rules(window.cron)
    except ConversionError as exc:
        raise ConversionError(f"window {window.label!r}: {exc.message}", window) from None


def dst_skipped_starts(window: Window, since: datetime, days: int = 366) -> list[datetime]:
    """Starts within `days` that fall in an hour the clocks skip, in the window's zone.

    The window still opens then (at the jump), but systemd skips such a time: the timer
    does not fire that day.
    """
    tz, found = window.zone, []
    at, end = since.astimezone(UTC), since.astimezone(UTC) + timedelta(days=days)
    while at < end:
        later = at + timedelta(hours=1)
        before, after = at.astimezone(tz).utcoffset(), later.astimezone(tz).utcoffset()
        if before is not None and after is not None and after > before:
            jump = clock_jump(at, later, tz)
            gap_start = (jump + before).replace(tzinfo=None)
            match = croniter(window.cron, gap_start - timedelta(seconds=1)).get_next(datetime)
            if match < gap_start + (after - before):
                found.append(match.replace(tzinfo=tz))
        at = later
    return found


def _values(field: Sequence[object]) -> tuple[int, ...] | None:
    return None if list(field) == ["*"] else tuple(int(str(v)) for v in field)


def _day_rules(dom: Sequence[object], base: Rule) -> list[Rule]:
    if list(dom) == ["*"]:
        return [base]
    numbers = tuple(int(str(d)) for d in dom if d != "l")
    found = [replace(base, days=numbers)] if numbers else []
    if "l" in dom:
        found.append(replace(base, last_day=True))
    return found


def _nth_rules(nth: dict[object, set[object]], base: Rule) -> list[Rule]:
    by_week: dict[object, list[int]] = {}
    for day, weeks in nth.items():
        for week in weeks:
            by_week.setdefault(week, []).append(int(str(day)))
    found = []
    for week, days in sorted(by_week.items(), key=lambda item: str(item[0])):
        wd = tuple(sorted(days))
        if week == "l":
            found.append(replace(base, weekdays=wd, last_week=True))
        else:
            found.append(replace(base, weekdays=wd, week=int(str(week))))
    return found


def _oncalendar(rule: Rule, tz: str) -> str:
    months = _runs(rule.months, "..", 2)
    if rule.last_day:
        date = f"*-{months}~01"
    elif rule.last_week:
        date = f"*-{months}~07/1"
    elif rule.day_range:
        first, last = rule.day_range
        date = f"*-{months}-{first:02d}..{last:02d}"
    else:
        date = f"*-{months}-{_runs(rule.days, '..', 2)}"
    clock = f"{_runs(rule.hours, '..', 2)}:{_runs(rule.minutes, '..', 2)}:00"
    days = ",".join(DAY_NAMES[d] for d in rule.weekdays) if rule.weekdays is not None else ""
    return " ".join(part for part in (days, date, clock, tz) if part)


def _cron_lines(rule: Rule) -> list[CronLine]:
    minute, hour = _runs(rule.minutes, "-"), _runs(rule.hours, "-")
    month = _runs(rule.months, "-")
    if rule.last_day:
        guard = '[ "$(date -d tomorrow +\\%d)" = 01 ] && '
        return [CronLine((minute, hour, "28-31", month, "*"), guard)]
    if rule.day_range or rule.last_week:
        first, last = rule.day_range or (22, 31)
        days = f"{first}-{last}"
        more = ' && [ "$(date -d +7days +\\%d)" -le 7 ]' if rule.last_week else ""
        return [
            CronLine((minute, hour, days, month, "*"), f'[ "$(date +\\%w)" = {d} ]{more} && ')
            for d in rule.weekdays or ()
        ]
    dom, dow = _runs(rule.days, "-"), _runs(rule.weekdays, "-")
    return [CronLine((minute, hour, dom, month, dow))]


def _runs(values: tuple[int, ...] | None, dash: str, width: int = 1) -> str:
    """`1..5,7` (systemd) or `1-5,7` (cron); runs of three or more become ranges."""
    if values is None:
        return "*"
    ordered = sorted(set(values))
    parts, start = [], 0
    for i in range(1, len(ordered) + 1):
        if i == len(ordered) or ordered[i] != ordered[i - 1] + 1:
            run = ordered[start:i]
            if len(run) >= 3:
                parts.append(f"{run[0]:0{width}d}{dash}{run[-1]:0{width}d}")
            else:
                parts.extend(f"{v:0{width}d}" for v in run)
            start = i
    return ",".join(parts)
