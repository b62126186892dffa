"""The resolved inventory: hosts with merged vars, groups, and host selection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from opsfix.errors import Location
from opsfix.inventory import output, patterns
from opsfix.inventory.host import Host


@dataclass(frozen=True)
class Group:
    """A group as the inventory defines it.

    `hosts` are the hosts listed in the group itself; `members` adds those of every
    descendant group, in inventory order (what the pattern `name` selects). `vars` are the
    group's own vars (inventory file, then group_vars/ files), not inherited ones.
    """

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    priority: int = 1
    depth: int = 0
    members: tuple[str, ...] = ()


class Selection(NamedTuple):
    """The hosts a pattern selected, and the pattern terms that matched nothing.

    Ansible ignores a term that matches no host or group and warns about it; the caller
    decides how to warn about `unmatched`. Unpacks as `hosts, unmatched = ...`.
    """

    hosts: list[Host]
    unmatched: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """Hosts and groups, in the order the sources define them.

    `warnings` lists what Ansible would warn about (skipped keys, names used for both a
    host and a group); the CLI decides whether to print them.
    """

    hosts: dict[str, Host]
    groups: dict[str, Group]
    sources: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    def match(
        self,
        pattern: str | None,
        within: Iterable[Host] | None = None,
        origin: Location | None = None,
    ) -> Selection:
        """Hosts matching an Ansible host pattern; None means all.

        With `within` (say the hosts a play's `hosts:` selected), the result keeps the
        order of `within` and only its hosts: that is how `--limit` applies. `origin`
        names where the pattern came from in error messages.
        """
        names, unmatched = patterns.evaluate(self, pattern, origin)
        if within is None:
            hosts = [self.hosts[name] for name in names]
        else:
            chosen = set(names)
            hosts = [host for host in within if host.name in chosen]
        return Selection(hosts, tuple(unmatched))

    select_with_unmatched = match

    def select(self, pattern: str | None, within: Iterable[Host] | None = None) -> list[Host]:
        """The hosts of `match`, for callers that do not warn about unmatched terms."""
        return self.match(pattern, within).hosts

    def to_list(self, only: set[str] | None = None) -> dict[str, Any]:
        """The data `ansible-inventory --list` prints, with secrets masked; `only`: the
        hosts a --limit kept."""
        return output.to_list(self, only)

    def to_yaml_tree(self, only: set[str] | None = None) -> dict[str, Any]:
        """The data `ansible-inventory --list --yaml` prints, with secrets masked."""
        return output.to_yaml_tree(self, only)

    def graph(
        self, group: str = "all", with_vars: bool = False, only: set[str] | None = None
    ) -> str:
        """The text `ansible-inventory --graph [--vars]` prints, with secrets masked."""
        return output.graph(self, group, with_vars, only)
