"""Split `host:port` the way Ansible does, without mistaking IPv6 or ranges for a port.

Ansible accepts a port suffix only when what is left is a valid host name, IPv4 or IPv6
address (each possibly holding `[a:b]` ranges); anything else is kept whole as the name.
The same test decides whether a `--limit` word is one pattern or a `:`-separated list.
"""

from __future__ import annotations

import functools
import re

_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"

_V4 = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"
_V6 = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_LABEL = rf"(?:\w|{_ALNUM_RANGE})(?:[\w-]|{_ALNUM_RANGE})*(?<![_-])"


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """The address patterns, compiled on first use (a few ms, and most runs need none)."""
    return (
        re.compile(r"^\[(.+)\]:([0-9]+)$"),  # [host]:port
        re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$"),  # host:port
        re.compile(rf"^(?:{_V4}\.){{3}}{_V4}$", re.I),
        re.compile(
            rf"""^(
                (?:{_V6}:){{7}}{_V6}|
                (?:{_V6}:){{1,6}}:|
                (?:{_V6}:)(?::{_V6}){{1,6}}|
                (?:{_V6}:){{2}}(?::{_V6}){{1,5}}|
                (?:{_V6}:){{3}}(?::{_V6}){{1,4}}|
                (?:{_V6}:){{4}}(?::{_V6}){{1,3}}|
                (?:{_V6}:){{5}}(?::{_V6}){{1,2}}|
                (?:{_V6}:){{6}}(?::{_V6})|
                :(?::{_V6}){{1,6}}|
                {_V6}?::|
                (?:0:){{6}}(?:{_V6}\.){{3}}{_V6}|
                ::(?:ffff:)?(?:{_V6}\.){{3}}{_V6}|
                (?:0:){{5}}ffff:(?:{_V6}\.){{3}}{_V6}
            )$""",
            re.X | re.I,
        ),
        re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I),
    )


def parse_address(text: str) -> tuple[str, int | None]:
    """Return (host, port) for `text`; raise ValueError if it is not a host identifier."""
    bracketed_hostport, hostport, *addresses = _patterns()
    host, port = text, None
    for pattern in (bracketed_hostport, hostport):
        match = pattern.match(host)
        if match:
            host, port = match.group(1), int(match.group(2))
    if not any(p.match(host) for p in addresses):
        raise ValueError(f"not a valid host name or address: {text!r}")
    return host, port


def split_port(text: str) -> tuple[str, int | None]:
    """(name, port) of an inventory host entry; a name Ansible cannot parse stays whole."""
    if ":" not in text:
        return text, None  # no port, whatever the name: no need to parse it
    try:
        return parse_address(text)
    except ValueError:
        return text, None
