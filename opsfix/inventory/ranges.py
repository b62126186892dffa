"""Expand Ansible host ranges: `web[01:10]`, `db[a:f]`, `node[0:20:5]`, several per name."""

from __future__ import annotations

import string

from opsfix.inventory.addresses import split_port

MAX_HOSTS = 100_000  # a typo like web[1:10000000] fails fast instead of eating memory


class RangeError(ValueError):
    """A `[begin:end(:step)]` range that cannot be expanded."""


def expand(name: str) -> list[str]:
    """All host names `name` stands for (just `[name]` when it has no range)."""
    if "[" not in name:
        return [name]
    head, _, rest = name.partition("[")
    body, closed, tail = rest.partition("]")
    if not closed:
        raise RangeError(f"host range in {name!r} has no closing ']'")
    names: list[str] = []
    for item in _sequence(body, name):
        names.extend(expand(head + item + tail))
        if len(names) > MAX_HOSTS:
            raise RangeError(f"host range {name!r} expands to more than {MAX_HOSTS} hosts")
    return names


def _sequence(body: str, name: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"host range [{body}] in {name!r} must be [begin:end] or [begin:end:step]")
    begin, end = bounds[0] or "0", bounds[1]
    step = _step(bounds[2] if len(bounds) == 3 else "1", body, name)
    if not end:
        raise RangeError(f"host range [{body}] in {name!r} has no end value")
    if begin.isdigit() and end.isdigit():
        return _numeric(begin, end, step, body, name)
    letters = string.ascii_letters
    if len(begin) == len(end) == 1 and begin in letters and end in letters:
        if letters.index(begin) > letters.index(end):
            raise RangeError(f"host range [{body}] in {name!r} must have begin <= end")
        return list(letters[letters.index(begin) : letters.index(end) + 1 : step])
    raise RangeError(
        f"host range [{body}] in {name!r} must be numeric (01:10) or single letters (a:f)"
    )


def _step(text: str, body: str, name: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise RangeError(f"host range [{body}] in {name!r} needs a positive whole step")
    return int(text)


def _numeric(begin: str, end: str, step: int, body: str, name: str) -> list[str]:
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise RangeError(
            f"host range [{body}] in {name!r} must pad begin and end to the same width"
        )
    if int(begin) > int(end):
        raise RangeError(f"host range [{body}] in {name!r} must have begin <= end")
    if (int(end) - int(begin)) // step >= MAX_HOSTS:
        raise RangeError(f"host range [{body}] in {name!r} expands to more than {MAX_HOSTS} hosts")
    return [str(i).zfill(width) for i in range(int(begin), int(end) + 1, step)]


def host_entry(text: str) -> tuple[list[str], int | None]:
    """Host names and port of one inventory host entry such as `web[01:03]:2222`."""
    name, port = split_port(text)
    return expand(name), port
