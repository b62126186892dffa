"""Windows and freezes as written in a playbook (`windows:`, `freezes:`) or in inventory
variables (`opsfix_windows`, `opsfix_freezes`), checked with the exact place of each error.

    windows:
      - name: monthly                 # optional label
        cron: "0 2 * * 2#1"           # first Tuesday of the month, 02:00 ...
        duration: 2h                  # ... for two hours (elapsed time)
        timezone: UTC                 # IANA name; default UTC
    freezes:
      - start: 2024-12-20             # whole days, inclusive ...
        end: 2025-01-02
        reason: year-end holidays
        timezone: Europe/Berlin
      - start: "2025-03-14 18:00"     # ... or date and time (end exclusive)
        end: "2025-03-17 06:00"
        reason: release weekend
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsfix.errors import InputError, InventoryError, Location, PlaybookError
from opsfix.playbook import yamlpos
from opsfix.playbook.durations import DurationError, parse_duration
from opsfix.windows.model import Freeze, Policy, Window, WindowValueError, instant_of, zone

WINDOWS_VAR = "opsfix_windows"
FREEZES_VAR = "opsfix_freezes"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WindowSpec(_Spec):
    name: str | None = Field(default=None, description="a label for reports")
    cron: str = Field(description="when it opens: 5-field cron expression in `timezone`")
    duration: str = Field(description="how long it stays open: 2h, 90m, 1h30m, 1d")
    timezone: str = Field(default="UTC", description="IANA time zone of `cron`")


class FreezeSpec(_Spec):
    start: Any = Field(description="first day (inclusive), or date and time")
    end: Any = Field(default=None, description="last day (inclusive), or date and time")
    reason: str = Field(min_length=1, description="why nothing disruptive may run")
    timezone: str = Field(default="UTC", description="IANA time zone of the dates")


def parse_policy(
    data: Mapping[str, Any] | None,
    source: str,
    *,
    keys: tuple[str, str] = ("windows", "freezes"),
    error: type[InputError] = PlaybookError,
) -> Policy:
    """The windows and freezes under `keys` of mapping `data` (a playbook's top level).

    Absent keys mean none. Raises `error` at the file:line:col of the first bad value.
    """
    data = data or {}
    windows_key, freezes_key = keys
    reader = _Reader(source, error)
    windows = reader.items(data, windows_key, reader.window)
    freezes = reader.items(data, freezes_key, reader.freeze)
    return Policy(tuple(windows), tuple(freezes))


def policy_for_host(
    playbook_policy: Policy | None, host_vars: Mapping[str, Any], source: str = "inventory"
) -> Policy | None:
    """The policy for one host: `opsfix_windows` / `opsfix_freezes` from its (merged)
    inventory vars replace the playbook's windows / freezes. None: nothing declared
    anywhere, so nothing is gated. Raises InventoryError for a bad inventory value."""
    base = playbook_policy or Policy()
    own = parse_policy(host_vars, source, keys=(WINDOWS_VAR, FREEZES_VAR), error=InventoryError)
    policy = Policy(
        own.windows if WINDOWS_VAR in host_vars else base.windows,
        own.freezes if FREEZES_VAR in host_vars else base.freezes,
    )
    return None if policy.is_empty else policy


class _Reader:
    def __init__(self, source: str, error: type[InputError]) -> None:
        self.source = source
        self.error = error

    def items(self, data: Mapping[str, Any], key: str, build: Any) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._at(data, key, key, f"expected a list, got {type(value).__name__}")
        return [build(item, value, i, f"{key}[{i}]") for i, item in enumerate(value)]

    def window(self, item: Any, parent: Any, index: int, where: str) -> Window:
        spec = self._validate(WindowSpec, item, parent, index, where)
        try:
            return Window(
                spec.cron,
                parse_duration(spec.duration),
                spec.timezone,
                spec.name or "",
                origin=self._location(parent, index, where),
            )
        except (WindowValueError, DurationError) as exc:
            raise self._at(item, exc.field, f"{where}.{exc.field}", exc.message) from None

    def freeze(self, item: Any, parent: Any, index: int, where: str) -> Freeze:
        spec = self._validate(FreezeSpec, item, parent, index, where)
        try:
            frz = _freeze(spec)
        except (WindowValueError, DurationError) as exc:
            raise self._at(item, exc.field, f"{where}.{exc.field}", exc.message) from None
        origin = self._location(parent, index, where)
        return Freeze(frz.start, frz.end, frz.reason, frz.timezone, origin=origin)

    def _validate(self, model: Any, item: Any, parent: Any, index: int, where: str) -> Any:
        if not isinstance(item, dict):
            found = type(item).__name__
            raise self._at(parent, index, where, f"expected a mapping, got {found}")
        try:
            return model.model_validate(dict(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            return self._fail(item, name, f"{where}.{name}", err, model)

    def _fail(self, item: Any, name: str, where: str, err: Any, model: Any) -> Any:
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(model.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(model.model_fields)
            line, col = yamlpos.key_position(item, name)
            message = f"unknown field {name!r}{hint}; expected: {known}"
            raise self.error(message, Location(self.source, line, col, where))
        if err["type"] == "missing":
            raise self._at(item, None, where, "required field is missing")
        value = item.get(name)
        raise self._at(item, name, where, f"{err['msg']} (got {value!r})")

    def _location(self, container: Any, key: Any, where: str) -> Location:
        return Location(self.source, *yamlpos.position(container, key), where)

    def _at(self, container: Any, key: Any, where: str, message: str) -> InputError:
        return self.error(message, self._location(container, key, where))


def _freeze(spec: FreezeSpec) -> Freeze:
    tz = zone(spec.timezone)
    end = spec.start if spec.end is None else spec.end
    first, last = _moment(spec.start, "start"), _moment(end, "end")
    if isinstance(first, date) and not isinstance(first, datetime):
        if isinstance(last, datetime):
            raise WindowValueError("end", "start is a date, so end must be a date too")
        return Freeze.days(first, last, spec.reason, spec.timezone)
    if not isinstance(last, datetime):
        raise WindowValueError("end", "start has a time, so end must have one too")
    if spec.end is None:
        raise WindowValueError("end", "a freeze that starts at a time needs an end")
    return Freeze(_aware(first, tz), _aware(last, tz), spec.reason, spec.timezone)


def _moment(value: Any, field: str) -> date:
    """A date or a datetime from YAML's own dates or from ISO text."""
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else ""
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise WindowValueError(
            field,
            f"invalid {field} {value!r}; expected a date (2024-12-20) or a date and time "
            "(2024-12-20 18:00, optionally with an offset such as +01:00)",
        ) from None


def _aware(moment: datetime, tz: Any) -> datetime:
    return moment if moment.tzinfo is not None else instant_of(moment, tz)
