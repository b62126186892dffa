"""The inventory while sources are still being read: groups, hosts and their own vars.

Loaders add to one draft in source order, so several sources merge the way Ansible merges
them (same group or host name = same object; a later value replaces an earlier one).
`reconcile` then applies Ansible's rules: every top group hangs under `all`, and a host in
no other group lands in `ungrouped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsfix.errors import InventoryError, Location

PRIORITY_VAR = "ansible_group_priority"


@dataclass
class GroupDraft:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Location] = field(default_factory=dict)  # where each var was set
    priority: int = 1


class InventoryDraft:
    """Mutable groups and hosts; `hosts` maps each host to its inline vars, in first-seen order."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupDraft] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.host_origins: dict[str, dict[str, Location]] = {}
        self.sources: list[Path] = []
        self.warnings: list[str] = []
        self.add_group("all")
        self.add_group("ungrouped")
        self.add_child("all", "ungrouped", Location("<builtin>"))

    def warn(self, message: str, where: Location) -> None:
        self.warnings.append(f"{where}: {message}")

    def add_group(self, name: str) -> GroupDraft:
        return self.groups.setdefault(name, GroupDraft(name))

    def add_host(self, name: str, group: str, port: int | None = None) -> None:
        if name not in self.hosts:
            # Like Ansible, a `host:port` sets the port only where the host first appears.
            self.hosts[name] = {} if port is None else {"ansible_port": port}
            self.host_origins[name] = {}
        members = self.groups[group].hosts
        if name not in members:
            members.append(name)

    def add_child(self, parent: str, child: str, where: Location) -> None:
        """Nest group `child` under `parent`; a loop in the nesting is an error."""
        upper, lower = self.groups[parent], self.groups[child]
        if child in upper.children:
            return
        if child == parent or child in self.ancestors(parent):
            path = " > ".join([*self._path(child, parent), child])
            raise InventoryError(
                f"group {child!r} cannot be a child of {parent!r}: the groups would form a "
                f"cycle ({path}); expected children to nest without loops",
                where,
            )
        upper.children.append(child)
        if parent not in lower.parents:
            lower.parents.append(parent)

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[name].parents)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.groups[current].parents)
        return seen

    def _path(self, start: str, goal: str) -> list[str]:
        """Group names from `start` down to `goal` through children (breadth first)."""
        trail = {start: [start]}
        queue = [start]
        while queue and goal not in trail:
            current = queue.pop(0)
            for kid in self.groups[current].children:
                if kid not in trail:
                    trail[kid] = [*trail[current], kid]
                    queue.append(kid)
        return trail.get(goal, [start, goal])

    def set_group_var(self, group: str, key: str, value: Any, where: Location) -> None:
        if key == PRIORITY_VAR:
            self.groups[group].priority = _priority(value, where)
        else:
            self.groups[group].vars[key] = value
            self.groups[group].origins[key] = where

    def set_host_var(self, host: str, key: str, value: Any, where: Location) -> None:
        self.hosts[host][key] = value
        self.host_origins[host][key] = where

    def reconcile(self) -> None:
        """Apply Ansible's rules once every source has been read."""
        for name, group in self.groups.items():
            if name != "all" and not group.parents:
                self.add_child("all", name, Location("<builtin>"))
        named: dict[str, set[str]] = {host: set() for host in self.hosts}
        for group in self.groups.values():
            for host in group.hosts:
                named[host].add(group.name)
        ungrouped = self.groups["ungrouped"].hosts
        for host, groups in named.items():
            groups.discard("all")
            if "ungrouped" in groups and len(groups) > 1:
                ungrouped.remove(host)
            elif not groups:
                ungrouped.append(host)
        for name in sorted(self.hosts.keys() & self.groups.keys()):
            self.warnings.append(f"found both a group and a host named {name!r}")


def _priority(value: Any, where: Location) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InventoryError(
            f"{PRIORITY_VAR} must be a whole number, got {value!r}", where
        ) from None
