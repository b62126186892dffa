"""Ansible host patterns, for `--limit` and a play's `hosts:`.

A pattern is split into terms on `,` (or on `:` when it is not a single host or address).
Each term is a host or group name, `all`, a glob (`web*`), a regex (`~web\\d+`), or
`@file` (one term per line). `&term` intersects and `!term` excludes; whatever their
order, Ansible applies all plain terms first, then the intersections, then the
exclusions. A group term may end in a subscript: `web[0]`, `web[-1]`, `web[1:3]`.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import TYPE_CHECKING

from opsfix.errors import InventoryError, Location
from opsfix.inventory.addresses import parse_address

if TYPE_CHECKING:
    from opsfix.inventory.model import Inventory

_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)[:-]([0-9]*))\]$")
_GLOB_CHARS = (".", "?", "*", "[")


def split_pattern(pattern: str) -> list[str]:
    """`'web:&prod,!db'` -> `['web:&prod', '!db']`; `'web:&prod'` -> `['web', '&prod']`."""
    if "," in pattern:
        parts = pattern.split(",")
    elif ":" not in pattern:  # one name or address, or words: the terms are the same
        parts = _TERMS.findall(pattern)
    else:
        try:
            parse_address(pattern)
            parts = [pattern]
        except ValueError:
            parts = _TERMS.findall(pattern)
    return [part.strip() for part in parts if part.strip()]


def evaluate(
    inventory: Inventory, pattern: str | None, origin: Location | None = None
) -> tuple[list[str], list[str]]:
    """Host names `pattern` selects, in inventory order, and the terms that matched nothing."""
    if pattern is None:
        terms = ["all"]
    else:
        terms = _read_files(split_pattern(pattern), origin)
        if not terms:
            raise InventoryError(
                f"empty host pattern {pattern!r}; expected host or group names, or 'all'",
                origin,
            )
    names: list[str] = []
    unmatched: list[str] = []
    for term in _ordered(terms):
        if term in inventory.hosts:
            names.append(term)
            continue
        found = _match_term(inventory, _bare(term, origin), unmatched, origin)
        if term[0] in "&!":
            chosen, keep = set(found), term[0] == "&"
            names = [name for name in names if (name in chosen) == keep]
        else:
            names.extend(found)
    return list(dict.fromkeys(names)), list(dict.fromkeys(unmatched))


def _bare(term: str, origin: Location | None) -> str:
    """The term without its `&` or `!`."""
    bare = term[1:] if term[0] in "&!" else term
    if not bare:
        raise InventoryError(f"pattern term {term!r} names no host or group", origin)
    return bare


def _ordered(terms: list[str]) -> list[str]:
    plain = [t for t in terms if t[0] not in "&!"]
    both = [t for t in terms if t[0] == "&"]
    minus = [t for t in terms if t[0] == "!"]
    return (plain or ["all"]) + both + minus


def _read_files(terms: list[str], origin: Location | None) -> list[str]:
    """Replace each `@file` term by the names the file lists, one per line."""
    result: list[str] = []
    for term in terms:
        if not term.startswith("@"):
            result.append(term)
            continue
        path = Path(term[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InventoryError(
                f"cannot read host list file {str(path)!r} from pattern term {term!r}: "
                f"{exc.strerror if isinstance(exc, OSError) else exc}",
                origin,
            ) from None
        result.extend(line.strip() for line in lines if line.strip())
    return result


def _match_term(
    inventory: Inventory, term: str, unmatched: list[str], origin: Location | None
) -> list[str]:
    expr, subscript = _split_subscript(term)
    found = _enumerate(inventory, expr, unmatched, origin)
    if not found or subscript is None:
        return found
    start, end = subscript
    if not end:  # as in Ansible, [i:0] means [i]
        try:
            return [found[start]]
        except IndexError:
            raise InventoryError(
                f"pattern {term!r} asks for host {start} of {expr!r}, which has "
                f"{len(found)} hosts (counting from 0)",
                origin,
            ) from None
    return found[start : (len(found) if end == -1 else end + 1)]


def _split_subscript(term: str) -> tuple[str, tuple[int, int | None] | None]:
    match = _SUBSCRIPT.match(term) if term[0] != "~" else None
    if not match:
        return term, None
    expr, index, start, end = match.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _enumerate(
    inventory: Inventory, expr: str, unmatched: list[str], origin: Location | None
) -> list[str]:
    regex = _compile(expr, origin)
    groups = [name for name in inventory.groups if regex.match(name)]
    found = [host for name in groups for host in inventory.groups[name].members]
    if not groups or expr[0] == "~" or any(c in expr for c in _GLOB_CHARS):
        found.extend(name for name in inventory.hosts if regex.match(name))
    if not found and not groups and expr != "all":
        unmatched.append(expr)
    return found


def _compile(expr: str, origin: Location | None) -> re.Pattern[str]:
    try:
        return re.compile(expr[1:] if expr[0] == "~" else fnmatch.translate(expr))
    except re.error as exc:
        raise InventoryError(f"invalid host pattern {expr!r}: {exc}", origin) from None
