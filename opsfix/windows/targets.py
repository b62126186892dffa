"""Which policy applies to which targeted host, for `opsfix windows` and `opsfix schedule`.

The playbook is read for `name`, `hosts`, `windows` and `freezes` only: these commands
need no plugins and contact no host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsfix.errors import Location, PlaybookError
from opsfix.inventory.host import Host
from opsfix.inventory.targeting import target_hosts
from opsfix.playbook import yamlpos
from opsfix.windows.model import Policy
from opsfix.windows.parse import parse_policy, policy_for_host


@dataclass(frozen=True)
class PlaybookWindows:
    """What a playbook says about windows, and whom it targets."""

    path: Path | None
    name: str
    hosts: str
    policy: Policy | None
    hosts_location: Location


@dataclass(frozen=True)
class HostGroup:
    """Targeted hosts that share one policy (None: no windows, nothing gated)."""

    policy: Policy | None
    hosts: tuple[str, ...]


def read_playbook(path: Path | None) -> PlaybookWindows:
    """The playbook's name, `hosts:` and policy; no playbook means all hosts, no policy."""
    if path is None:
        return PlaybookWindows(None, "inventory", "all", None, Location("--limit"))
    source = str(path)
    data = yamlpos.load(path, error=PlaybookError)
    if not isinstance(data, dict):
        raise PlaybookError("expected a mapping with 'hosts' and 'checks'", Location(source, 1, 1))
    policy = parse_policy(data, source)
    name, hosts = data.get("name") or path.stem, data.get("hosts") or "all"
    if not isinstance(hosts, str):
        where = Location(source, *yamlpos.position(data, "hosts"), "hosts")
        raise PlaybookError(f"expected an inventory pattern, got {hosts!r}", where)
    where = Location(source, *yamlpos.position(data, "hosts"), "hosts")
    return PlaybookWindows(path, str(name), hosts, None if policy.is_empty else policy, where)


def select_hosts(
    inventory: Any, playbook: PlaybookWindows, limit: str | None
) -> tuple[list[Host], list[str]]:
    """The playbook's `hosts:` narrowed by --limit, with warnings for terms matching nothing."""
    return target_hosts(inventory, playbook.hosts, limit, playbook.hosts_location)


def group_by_policy(playbook: PlaybookWindows, hosts: Iterable[Host]) -> list[HostGroup]:
    """Hosts with identical policies together, in the order the first of each appears."""
    groups: dict[Policy | None, list[str]] = {}
    for host in hosts:
        source = f"inventory vars of {host.name}"
        policy = policy_for_host(playbook.policy, host.vars, source)
        groups.setdefault(policy, []).append(host.name)
    return [HostGroup(policy, tuple(names)) for policy, names in groups.items()]


def describe_hosts(names: Sequence[str], inventory: Any) -> list[str]:
    """Inventory groups all of whose hosts are in `names`, largest first, then the rest.

    A group with a host outside `names` is never named, so a label never claims more
    hosts than the policy covers.
    """
    wanted = set(names)
    candidates = []
    for group in inventory.groups.values():
        members = set(group.members)
        if members and members <= wanted:
            candidates.append((-len(members), -group.depth, group.name, members))
    picked: list[str] = []
    covered: set[str] = set()
    for _, _, name, members in sorted(candidates):
        if not members <= covered:
            picked.append(name)
            covered |= members
    return picked + [n for n in names if n not in covered]
