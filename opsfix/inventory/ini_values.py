"""Turn an INI value into Python data exactly as Ansible's `ini` plugin does.

Ansible feeds each value to `ast.literal_eval`: `8080` is a number, `True` a boolean,
`[1, 2]` a list, `'07'` the string 07; anything that is not a Python literal (`yes`,
`hello world`) stays a string. Tuples and sets become lists; complex numbers and `...`
stay text, since no variable can hold them.
"""

from __future__ import annotations

import ast
import warnings
from typing import Any


def parse_value(text: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value
