"""Which hosts a command works on: a playbook's `hosts:` pattern narrowed by --limit."""

from __future__ import annotations

import difflib
from typing import Any

from opsfix.errors import InventoryError, Location, NoHostsError
from opsfix.inventory.host import Host


def target_hosts(
    inventory: Any, pattern: str, limit: str | None, where: Location | None = None
) -> tuple[list[Host], list[str]]:
    """The hosts `pattern` matches, narrowed by `limit`, with a warning per dead term.

    Errors in a pattern are reported at `where` (say, the playbook's `hosts:` line).
    """
    warnings = list(inventory.warnings)
    try:
        chosen = inventory.match(pattern, origin=where)
        warnings += [f"hosts pattern term {t!r} matched nothing" for t in chosen.unmatched]
        hosts: list[Host] = chosen.hosts
        if limit:
            limited = inventory.match(limit, within=hosts)
            warnings += [f"--limit term {t!r} matched nothing" for t in limited.unmatched]
            hosts = limited.hosts
    except InventoryError as exc:
        raise InventoryError(exc.message, exc.location or where) from None
    if not hosts:
        raise NoHostsError(_nothing_matched(inventory, pattern, limit))
    return hosts, warnings


def _nothing_matched(inventory: Any, pattern: str, limit: str | None) -> str:
    """What matched nothing, with the inventory's closest names, as a typo needs."""
    said = f"hosts pattern {pattern!r}" + (f" with --limit {limit!r}" if limit else "")
    terms = [t.lstrip("!&~") for t in (limit or pattern).replace(",", ":").split(":") if t]
    names = [*inventory.hosts, *inventory.groups]
    close = dict.fromkeys(
        c for t in terms for c in difflib.get_close_matches(t, names, n=3) if c != t
    )
    hint = f" (closest names: {', '.join(close)})" if close else ""
    return f"{said} matches no host{hint}"
