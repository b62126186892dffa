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


def to_list(inventory: Inventory) -> dict[str, Any]:
    result: dict[str, Any] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = inventory.groups[name]
        entry: dict[str, list[str]] = {}
        if name != "all" and group.hosts:
            entry["hosts"] = list(group.hosts)
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
        if inventory.hosts[name].vars
    }
    result["_meta"] = {"hostvars": hostvars, "profile": PROFILE}
    return result


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {key: shown(value) for key, value in values.items()}


def graph(inventory: Inventory, group: str = "all", with_vars: bool = False) -> str:
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
