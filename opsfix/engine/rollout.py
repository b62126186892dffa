"""Rolling execution: how many hosts per batch, and when a failing rollout must stop.

`serial` works as in Ansible: a number, a percentage of the targeted hosts, or a list
such as `[1, "25%", "100%"]` (a canary first). List items are used in order and the last
one repeats for the hosts that remain. A batch counts as failed hosts everything that
did not end healthy or repaired (failed, unreachable, verify failed); when that share of
the batch exceeds `max_fail_percentage`, no further batch starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
SerialItem = int | str
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def validate_serial(value: SerialItem | Sequence[SerialItem] | None) -> list[SerialItem] | None:
    """Normalise and check a serial spec; raise ValueError with what was expected."""
    if value is None:
        return None
    items: list[SerialItem] = (
        list(value) if isinstance(value, list | tuple) else [value]  # type: ignore[list-item]
    )
    if not items:
        raise ValueError("serial list is empty; expected a number, a percentage or a list")
    for item in items:
        _size(item, 100)  # raises on a bad item
    return items


def batch_sizes(total: int, serial: Sequence[SerialItem] | None) -> list[int]:
    """Sizes of the successive batches for `total` hosts."""
    if total <= 0:
        return []
    if not serial:
        return [total]
    sizes: list[int] = []
    remaining = total
    index = 0
    while remaining > 0:
        item = serial[min(index, len(serial) - 1)]
        size = min(remaining, _size(item, total))
        sizes.append(size)
        remaining -= size
        index += 1
    return sizes


def split(items: Sequence[T], serial: Sequence[SerialItem] | None) -> list[list[T]]:
    batches, start = [], 0
    for size in batch_sizes(len(items), serial):
        batches.append(list(items[start : start + size]))
        start += size
    return batches


def exceeds(failed: int, size: int, max_fail_percentage: float | None) -> bool:
    """True when a batch's failures must stop the rollout.

    Without a threshold, only a batch in which every host failed stops it (as Ansible).
    """
    if size == 0 or failed == 0:
        return False
    if max_fail_percentage is None:
        return failed == size
    return failed * 100.0 / size > max_fail_percentage


def _size(item: SerialItem, total: int) -> int:
    if isinstance(item, bool):
        raise ValueError(f"serial item {item!r}: expected a number or a percentage")
    if isinstance(item, int):
        if item < 1:
            raise ValueError(f"serial item {item!r}: must be at least 1")
        return item
    match = _PERCENT.match(str(item))
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"serial item {item!r}: percentage must be in (0, 100]")
        return max(1, int(total * percent / 100))
    if str(item).strip().isdigit():
        return _size(int(str(item).strip()), total)
    raise ValueError(
        f"serial item {item!r}: expected a number such as 2 or a percentage such as '25%'"
    )
