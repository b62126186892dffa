"""Read a YAML inventory (the format of Ansible's `yaml` inventory plugin) into a draft.

Groups are mappings with optional `hosts`, `children` and `vars`; a string in place of
`hosts` or `children` names a single entry, as Ansible allows. Structural mistakes are
errors that name file:line:col; keys Ansible merely skips become warnings.
"""

from __future__ import annotations

from typing import Any

from opsfix.errors import InventoryError, Location
from opsfix.inventory.describe import describe
from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.ranges import RangeError, host_entry
from opsfix.playbook import yamlpos
from opsfix.playbook.yamlpos import PosDict

SECTIONS = ("vars", "children", "hosts")
_EXPECTED = {
    "vars": "a mapping of variable names to values",
    "children": "a mapping of group names",
    "hosts": "a mapping of host names (each with its vars, or empty)",
}


def read_yaml(data: Any, file: str, draft: InventoryDraft) -> None:
    """Add the groups and hosts of parsed YAML `data` (from `file`) to `draft`."""
    if data is None:
        return
    if not isinstance(data, dict):
        where = Location(file, *yamlpos.position(data, None))
        raise InventoryError(
            f"expected a mapping of group names at the top, got {describe(data)}", where
        )
    if "plugin" in data:
        raise InventoryError(
            f"'plugin: {data['plugin']}' configures a dynamic inventory plugin, which opsfix "
            "does not run; expected a static inventory of groups",
            _at(file, data, "plugin", ""),
        )
    reader = _YamlReader(file, draft)
    for name, body in data.items():
        if body is None or isinstance(body, dict):
            reader.group(name, body, data, str(name))
        else:
            draft.warn(
                f"skipping {name!r}: a group must be a mapping with hosts, children or vars, "
                f"got {describe(body)}",
                _at(file, data, name, str(name)),
            )


def _at(file: str, container: Any, key: Any, field: str, *, of_key: bool = False) -> Location:
    find = yamlpos.key_position if of_key else yamlpos.position
    return Location(file, *find(container, key), field)


def _single(container: dict[Any, Any], key: str) -> PosDict:
    """`hosts: web1` means `hosts: {web1: null}`; keep the position of the string."""
    mapping = PosDict({container[key]: None})
    pos = yamlpos.position(container, key)
    if pos[0] is not None:
        mapping.pos = mapping.key_pos[container[key]] = pos  # type: ignore[assignment]
    return mapping


class _YamlReader:
    def __init__(self, file: str, draft: InventoryDraft) -> None:
        self.file = file
        self.draft = draft

    def group(self, name: Any, body: Any, container: Any, field: str) -> str:
        if not isinstance(name, str) or not name:
            raise InventoryError(
                f"group name must be a non-empty string, got {describe(name)}",
                _at(self.file, container, name, field, of_key=True),
            )
        self.draft.add_group(name)
        if body is None:
            return name
        if not isinstance(body, dict):
            raise InventoryError(
                f"group {name!r} must be a mapping with hosts, children or vars, "
                f"got {describe(body)}",
                _at(self.file, container, name, field),
            )
        for key in body:
            self._section(name, body, key, f"{field}.{key}")
        return name

    def _section(self, name: str, body: dict[Any, Any], key: Any, field: str) -> None:
        if key not in SECTIONS:
            self.draft.warn(
                f"skipping unexpected key {key!r} in group {name!r}; "
                "expected only hosts, children and vars",
                _at(self.file, body, key, field, of_key=True),
            )
            return
        value = _single(body, key) if isinstance(body[key], str) else body[key]
        if value is None:
            return
        if not isinstance(value, dict):
            raise InventoryError(
                f"expected {_EXPECTED[key]}, got {describe(value)}",
                _at(self.file, body, key, field),
            )
        getattr(self, f"_{key}")(name, value, field)

    def _vars(self, name: str, values: dict[Any, Any], field: str) -> None:
        for key, value in values.items():
            where = self._var_name(values, key, field)
            self.draft.set_group_var(name, key, value, where)

    def _var_name(self, values: dict[Any, Any], key: Any, field: str) -> Location:
        where = _at(self.file, values, key, f"{field}.{key}", of_key=True)
        if not isinstance(key, str) or not key:
            raise InventoryError(
                f"variable name must be a non-empty string, got {describe(key)}", where
            )
        return where

    def _children(self, name: str, children: dict[Any, Any], field: str) -> None:
        for child, body in children.items():
            self.group(child, body, children, f"{field}.{child}")
            where = _at(self.file, children, child, f"{field}.{child}", of_key=True)
            self.draft.add_child(name, child, where)

    def _hosts(self, name: str, hosts: dict[Any, Any], field: str) -> None:
        for entry, values in hosts.items():
            where = _at(self.file, hosts, entry, f"{field}.{entry}", of_key=True)
            names, port = self._host_names(entry, where)
            if values is None:
                values = {}
            if not isinstance(values, dict):
                raise InventoryError(
                    f"vars of host {entry!r} must be a mapping of variable names, "
                    f"got {describe(values)}",
                    _at(self.file, hosts, entry, f"{field}.{entry}"),
                )
            for key in values:
                self._var_name(values, key, f"{field}.{entry}")
            for host in names:
                self.draft.add_host(host, name, port)
                for key, value in values.items():
                    where = _at(self.file, values, key, f"{field}.{entry}.{key}")
                    self.draft.set_host_var(host, key, value, where)

    def _host_names(self, entry: Any, where: Location) -> tuple[list[str], int | None]:
        if not isinstance(entry, str) or not entry:
            raise InventoryError(
                f"host name must be a non-empty string, got {describe(entry)}; "
                "put numbers in quotes",
                where,
            )
        try:
            return host_entry(entry)
        except RangeError as exc:
            raise InventoryError(str(exc), where) from None
