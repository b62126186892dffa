"""Durations as people write them in playbooks (`90m`, `1h30m`, `1d`).

Apart from the maintenance windows so that the flap guard, which every repairing run
consults, does not import the windows' cron parser and time zone code."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$", re.I)


class DurationError(ValueError):
    """A duration that does not parse; `field` and `message` as a window error has them."""

    field = "duration"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_duration(text: str) -> timedelta:
    """`2h`, `90m`, `1h30m`, `1d`, `1d 12h`: days, hours and minutes, each optional."""
    found = _DURATION.match(str(text))
    if not found or not any(found.groups()):
        raise DurationError(f"invalid duration {text!r}; expected e.g. 2h, 90m, 1h30m or 1d")
    days, hours, minutes = (int(part or 0) for part in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def format_duration(span: timedelta) -> str:
    """`1d2h30m`: the syntax durations are written in."""
    minutes, seconds = divmod(int(span.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0m"
