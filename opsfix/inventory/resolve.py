"""Turn a finished draft into the `Inventory`: group depths, members and merged host vars.

Host vars follow Ansible's precedence (lowest first), replacing per key:

1. the `all` group's vars from the inventory files
2. every other group of the host, from the inventory files, in group order
3. `group_vars/all` files
4. `group_vars/<group>` files, in group order
5. the host's own vars from the inventory files (including a `host:port` port)
6. `host_vars/<host>` files

Group order is by depth (parents before children), then `ansible_group_priority`, then
name. Steps 3, 4 and 6 go through the sources in the order given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from opsfix.errors import Location
from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.host import Host
from opsfix.inventory.masking import mask_secrets
from opsfix.inventory.model import Group, Inventory
from opsfix.inventory.varsfiles import VarsFiles


def resolve(draft: InventoryDraft) -> Inventory:
    draft.reconcile()
    files = VarsFiles(draft.sources)
    depth = _depths(draft)
    groups = {
        name: Group(
            name=name,
            hosts=tuple(group.hosts),
            children=tuple(group.children),
            parents=tuple(group.parents),
            vars=mask_secrets({**group.vars, **_from_files(files, "group_vars", name)}),
            priority=group.priority,
            depth=depth(name),
            members=_members(draft, name),
        )
        for name, group in draft.groups.items()
    }
    memberships = _memberships(groups)
    hosts = {
        name: Host(
            name=name,
            groups=tuple(sorted(memberships[name] - {"all"})),
            vars=mask_secrets(_host_vars(draft, files, groups, name, memberships[name])),
            origins=_host_origins(draft, files, groups, name, memberships[name]),
        )
        for name in draft.hosts
    }
    warnings = (*draft.warnings, *files.warnings)
    return Inventory(hosts, groups, tuple(draft.sources), warnings)


def _depths(draft: InventoryDraft) -> Callable[[str], int]:
    """Longest path from `all` to each group, as Ansible counts a group's depth."""

    @cache
    def depth(name: str) -> int:
        parents = draft.groups[name].parents
        return 1 + max(depth(parent) for parent in parents) if parents else 0

    return depth


def _members(draft: InventoryDraft, name: str) -> tuple[str, ...]:
    """Hosts of `name` and its descendants: the group's own first, then level by level."""
    order, level, seen = [name], [name], {name}
    while level:
        level = [kid for group in level for kid in draft.groups[group].children]
        level = [kid for kid in dict.fromkeys(level) if kid not in seen]
        seen.update(level)
        order.extend(level)
    return tuple(dict.fromkeys(host for group in order for host in draft.groups[group].hosts))


def _memberships(groups: dict[str, Group]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for group in groups.values():
        for host in group.members:
            result.setdefault(host, set()).add(group.name)
    return result


def _from_files(files: VarsFiles, kind: str, name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for base in files.bases:
        merged.update(files.load(base, kind, name))
    return merged


def _host_vars(
    draft: InventoryDraft, files: VarsFiles, groups: dict[str, Group], host: str, names: set[str]
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in _layers(draft, files, groups, host, names, files.load):
        merged.update(layer)
    merged.update(draft.hosts[host])
    merged.update(_from_files(files, "host_vars", host))
    return merged


def _host_origins(
    draft: InventoryDraft, files: VarsFiles, groups: dict[str, Group], host: str, names: set[str]
) -> dict[str, Location]:
    """Where each of `_host_vars`' values was set, merged in the same order."""
    merged: dict[str, Location] = {}
    for layer in _layers(draft, files, groups, host, names, files.origins, origins=True):
        merged.update(layer)
    merged.update(draft.host_origins[host])
    for base in files.bases:
        merged.update(files.origins(base, "host_vars", host))
    return merged


def _layers(
    draft: InventoryDraft,
    files: VarsFiles,
    groups: dict[str, Group],
    host: str,
    names: set[str],
    load: Callable[[Path, str, str], dict[str, Any]],
    *,
    origins: bool = False,
) -> Iterator[dict[str, Any]]:
    """Group-level vars (or their origins) of `host`, lowest precedence first."""
    ordered = sorted(
        (groups[name] for name in names - {"all"}), key=lambda g: (g.depth, g.priority, g.name)
    )
    for name in ["all", *(group.name for group in ordered)]:
        draft_group = draft.groups[name]
        yield dict(draft_group.origins) if origins else draft_group.vars
    for base in files.bases:
        yield load(base, "group_vars", "all")
    for base in files.bases:
        for group in ordered:
            yield load(base, "group_vars", group.name)
