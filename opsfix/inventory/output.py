"""Print the inventory the way `ansible-inventory --list` and `--graph` do.

Both mirror ansible-core 2.19 byte for byte once dumped (`json.dumps(..., sort_keys=True,
indent=4)` for the list), except that secrets show as a mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opsfix.errors import InventoryError
from opsfix.escape import printable
from opsfix.inventory.masking import shown

if TYPE_CHECKING:
    from opsfix.inventory.model import Inventory

PROFILE = "inventory_legacy"  # ansible-inventory 2.19 names its JSON encoding here


def to_list(inventory: Inventory, only: set[str] | None = None) -> dict[str, Any]:
    """`only`: the hosts a --limit kept (groups keep their place, as in ansible-inventory)."""
    result: dict[str, Any] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = inventory.groups[name]
        entry: dict[str, list[str]] = {}
        hosts = [h for h in group.hosts if only is None or h in only]
        if name != "all" and hosts:
            entry["hosts"] = hosts
        if group.children:
            entry["children"] = list(group.children)
        if entry:
            result[name] = entry
        for child in group.children:
            if child not in seen:
                seen.add(child)
                visit(child)

    visit("all")
    hostvars = {
        name: _shown(inventory.hosts[name].vars)
        for name in inventory.groups["all"].members
        if inventory.hosts[name].vars and (only is None or name in only)
    }
    result["_meta"] = {"hostvars": hostvars, "profile": PROFILE}
    return result


def to_yaml_tree(inventory: Inventory, only: set[str] | None = None) -> dict[str, Any]:
    """The data `ansible-inventory --list --yaml` dumps: groups nested under `all`, each
    host's vars where it first appears, empty groups left out."""
    seen_groups: set[str] = set()
    seen_hosts: set[str] = set()

    def visit(name: str) -> dict[str, Any]:
        group = inventory.groups[name]
        children: dict[str, Any] = {}
        for child in group.children:
            if child in seen_groups:
                children[child] = {}
            else:
                seen_groups.add(child)
                children.update(visit(child))
        hosts: dict[str, Any] = {}
        for host in group.hosts if name != "all" else ():
            if only is not None and host not in only:
                continue
            hosts[host] = {} if host in seen_hosts else _shown(inventory.hosts[host].vars)
            seen_hosts.add(host)
        entry = {k: v for k, v in (("children", children), ("hosts", hosts)) if v}
        return {name: entry} if entry else {}

    return visit("all") or {"all": {}}


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {key: shown(value) for key, value in values.items()}


def graph(
    inventory: Inventory, group: str = "all", with_vars: bool = False, only: set[str] | None = None
) -> str:
    if group not in inventory.groups:
        raise InventoryError(
            f"no group named {group!r} to graph; expected one of {sorted(inventory.groups)}"
        )
    lines: list[str] = []

    def visit(name: str, depth: int) -> None:
        lines.append(_line(f"@{name}:", depth))
        current = inventory.groups[name]
        for child in current.children:
            visit(child, depth + 1)
        if name != "all":
            for host in current.hosts:
                if only is not None and host not in only:
                    continue
                lines.append(_line(host, depth + 1))
                if with_vars:
                    lines.extend(_var_lines(inventory.hosts[host].vars, depth + 2))
        if with_vars:
            lines.extend(_var_lines(_group_vars(current), depth + 1))

    visit(group, 0)
    return "\n".join(lines)


def _group_vars(group: Any) -> dict[str, Any]:
    if group.priority == 1:
        return dict(group.vars)
    return {**group.vars, "ansible_group_priority": group.priority}


def _var_lines(values: dict[str, Any], depth: int) -> list[str]:
    return [_line(f"{{{key} = {shown(value)}}}", depth) for key, value in sorted(values.items())]


def _line(text: str, depth: int) -> str:
    """One line of the graph: names and values may hold any character, shown escaped."""
    text = printable(text, one_line=True)
    return "  |" * depth + "--" + text if depth else text
