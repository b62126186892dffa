"""Which workers get a host: its inventory variable `opsfix_site` names their queue.

A worker started with `--queue SITE` takes only the hosts of that site, so each host's
work lands on the workers that can reach it (a site behind its own bastion). Hosts with
no site go to the default queue, which a worker without `--queue` serves.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from opsfix.errors import InventoryError, Location

SITE_VAR = "opsfix_site"
DEFAULT_QUEUE = "opsfix"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_queue(name: str, where: str) -> str:
    """A queue name that is safe as a broker key and a routing key, or an error."""
    if not _NAME.match(name):
        raise ValueError(
            f"{where}: {name!r} is not a site name (letters, digits, '_', '.', '-'; "
            "at most 64, starting with a letter or digit)"
        )
    return name


def queue_of(host: Any) -> str:
    """The queue of an inventory host (opsfix.inventory.host.Host); InventoryError naming where
    its `opsfix_site` was set when the value cannot be a queue."""
    site = host.vars.get(SITE_VAR)
    if site is None:
        return DEFAULT_QUEUE
    where = host.origins.get(SITE_VAR) or Location(f"inventory vars of {host.name}")
    where = dataclasses.replace(where, field=where.field or SITE_VAR)
    if not isinstance(site, str):
        raise InventoryError(f"expected a site name, got {site!r}", where)
    try:
        return check_queue(site, "site")
    except ValueError as exc:
        raise InventoryError(str(exc), where) from None
