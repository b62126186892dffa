"""What one task carries, and the inventory a worker rebuilds from it.

The signed envelope holds the run's id and mode, the host's inventory entry (name,
groups, merged variables) and those of the peers a repair may ask, the extra vars, the
run options that shape a host's run, the bundle's sha256 and an expiry. Values that are
secrets (vault-encrypted inventory values, a become password) never go in: the run is
refused instead, and workers take such values from their own environment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opsfix.errors import OptionsError
from opsfix.secret import Secret

FORMAT = "opsfix-task/1"
OPTIONS = (
    "connect_timeout",
    "command_timeout",
    "output_limit",
    "show_diff",
    "override_reason",
    "lock_wait",
    "flap_guard",
)


def entry(host: Any, groups: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON form of an inventory host (opsfix.inventory.host.Host); refuses secret values."""
    for key, value in host.vars.items():
        _no_secret(value, f"inventory variable {key!r} of {host.name}")
    chosen = list(host.groups if groups is None else groups)
    return {"name": host.name, "groups": chosen, "vars": dict(host.vars)}


def envelope(
    *,
    run_id: str,
    mode: str,
    host: dict[str, Any],
    peers: list[dict[str, Any]],
    extra_vars: Mapping[str, Any],
    options: Mapping[str, Any],
    bundle_sha256: str,
    lifetime: float,
) -> dict[str, Any]:
    for key, value in extra_vars.items():
        _no_secret(value, f"extra variable {key!r}")
    doc = {
        "format": FORMAT,
        "run_id": run_id,
        "mode": mode,
        "host": host,
        "peers": peers,
        "extra_vars": dict(extra_vars),
        "options": {k: options[k] for k in OPTIONS},
        "bundle_sha256": bundle_sha256,
        "expires": time.time() + lifetime,
    }
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"--cluster: a value cannot travel as JSON: {exc}") from None
    return doc


def _no_secret(value: Any, where: str) -> None:
    if isinstance(value, Secret):
        raise OptionsError(
            f"--cluster: {where} is a secret (vault-encrypted); secrets never travel "
            "through the broker: give it to the workers in their own inventory "
            "or environment, or run this playbook from one controller"
        )
    if isinstance(value, Mapping):
        for item in value.values():
            _no_secret(item, where)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_secret(item, where)


def inventory_doc(env: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's inventory: the host and its peers with their variables, each group
    that lists them as a flat group of `all` (their variables are merged already)."""
    hosts = [env["host"], *env["peers"]]
    groups: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for group in host["groups"]:
            groups.setdefault(group, {"hosts": {}})["hosts"][host["name"]] = None
    return {"all": {"hosts": {h["name"]: dict(h["vars"]) for h in hosts}, "children": groups}}
