"""Which hosts a command works on: a playbook's `hosts:` pattern narrowed by --limit."""

from __future__ import annotations

from typing import Any

from opsfix.errors import InventoryError, Location
from opsfix.hosts import Host


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
    return hosts, warnings
