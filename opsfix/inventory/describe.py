"""Name a bad value in an error message: its kind and a short quote of it."""

from __future__ import annotations

from typing import Any

_KINDS = (
    (bool, "a boolean"),
    (int, "a number"),
    (float, "a number"),
    (str, "a string"),
    (dict, "a mapping"),
    (list, "a list"),
)


def describe(value: Any, limit: int = 60) -> str:
    """`a list ['web1', 'web2']`, `a string 'web1'`, `nothing (null)`."""
    if value is None:
        return "nothing (null)"
    kind = next((name for cls, name in _KINDS if isinstance(value, cls)), type(value).__name__)
    quoted = repr(value)
    if len(quoted) > limit:
        quoted = quoted[: limit - 3] + "..."
    return f"{kind} {quoted}"
