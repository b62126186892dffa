"""Text from hosts (and host names) made safe to show a person.

A host may print anything: `ESC [2J` clears the operator's screen, `ESC ]8;;` makes a
link, a carriage return overwrites the line before it, U+202E reverses what follows. Every
human-readable output (terminal text, live progress, Markdown and HTML reports, history)
passes its text through `printable`, which writes such characters as visible escapes
(`\\x1b`, `\\r`, `\\u202e`). JSON needs none of this: its encoder escapes them itself.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and Unicode's bidirectional
# overrides and isolates (they reorder what a reader sees).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character written as an escape; newlines and tabs stay,
    unless `one_line` (a host name, a table cell: a newline there would forge a line)."""
    return (_LINE if one_line else _CONTROL).sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
