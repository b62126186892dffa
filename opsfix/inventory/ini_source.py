"""Read an INI inventory (the format of Ansible's `ini` inventory plugin) into a draft.

Lines before any section are ungrouped hosts. `[g]` lists hosts with inline `key=value`
vars, `[g:vars]` holds one `key=value` per line, `[g:children]` names groups. Like Ansible,
`[g:children]` may name a group defined further down, and `[g:vars]` needs `g` defined
somewhere in the file; what is still undefined at the end is an error at its line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from opsfix.errors import InventoryError, Location
from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.ini_values import parse_value
from opsfix.inventory.ranges import RangeError, host_entry

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_KINDS = ("hosts", "vars", "children")


@dataclass
class _Pending:
    """A group used before it is defined: by `[g:vars]`, or named in `[p:children]`."""

    line: int
    kind: str
    parents: list[str] = field(default_factory=list)


def read_ini(text: str, file: str, draft: InventoryDraft) -> None:
    """Add the groups and hosts of INI `text` (from `file`) to `draft`."""
    _IniReader(file, draft).read(text.splitlines())


class _IniReader:
    def __init__(self, file: str, draft: InventoryDraft) -> None:
        self.file = file
        self.draft = draft
        self.pending: dict[str, _Pending] = {}

    def read(self, lines: list[str]) -> None:
        group, kind = "ungrouped", "hosts"
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            where = Location(self.file, number)
            section = _SECTION.match(line)
            if section:
                group, kind = self._section(section, line, number)
            elif line.startswith("[") and line.endswith("]"):
                raise InventoryError(
                    f"invalid section header {line!r}; expected [group], [group:vars] or "
                    "[group:children] with no spaces",
                    where,
                )
            else:
                getattr(self, f"_{kind}_line")(group, line, where)
        self._check_pending()

    def _section(self, match: re.Match[str], line: str, number: int) -> tuple[str, str]:
        group, kind = match.group(1), match.group(2) or "hosts"
        if kind not in _KINDS:
            raise InventoryError(
                f"section {line!r} has unknown type {kind!r}; expected :vars or :children",
                Location(self.file, number),
            )
        if group not in self.draft.groups:
            if kind == "vars" and group not in self.pending:
                self.pending[group] = _Pending(number, "vars")
            self.draft.add_group(group)
        if group in self.pending and kind != "vars":
            for parent in self.pending.pop(group).parents:
                self.draft.add_child(parent, group, Location(self.file, number))
        return group, kind

    def _hosts_line(self, group: str, line: str, where: Location) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"cannot split host line {line!r}: {exc}", where) from None
        names, port = self._host_names(tokens[0] if tokens else "", where)
        values = {}
        for token in tokens[1:]:
            key, equals, text = token.partition("=")
            if not equals or not key:
                raise InventoryError(
                    f"expected key=value after the host name, got {token!r}", where
                )
            values[key] = parse_value(text)
        for name in names:
            self.draft.add_host(name, group, port)
            for key, value in values.items():
                self.draft.set_host_var(name, key, value, where)

    def _host_names(self, entry: str, where: Location) -> tuple[list[str], int | None]:
        if not entry:
            raise InventoryError("empty host name; expected a host name or range", where)
        try:
            names, port = host_entry(entry)
        except RangeError as exc:
            raise InventoryError(str(exc), where) from None
        if entry.endswith(":") and port is None:
            raise InventoryError(f"host {entry!r} ends in ':'; expected host or host:port", where)
        if entry == "---":
            raise InventoryError(
                "host '---' looks like the start of a YAML document; name the file .yml "
                "to read it as YAML",
                where,
            )
        return names, port

    def _vars_line(self, group: str, line: str, where: Location) -> None:
        key, equals, text = line.partition("=")
        if not equals or not key.strip():
            raise InventoryError(f"expected key=value in [{group}:vars], got {line!r}", where)
        self.draft.set_group_var(group, key.strip(), parse_value(text.strip()), where)

    def _children_line(self, group: str, line: str, where: Location) -> None:
        match = _GROUP_NAME.match(line)
        if not match:
            raise InventoryError(
                f"expected a group name in [{group}:children], got {line!r}", where
            )
        child = match.group(1)
        if child in self.draft.groups:
            self.draft.add_child(group, child, where)
        else:
            self.pending.setdefault(child, _Pending(where.line or 0, "children"))
            self.pending[child].parents.append(group)

    def _check_pending(self) -> None:
        for name, use in self.pending.items():
            where = Location(self.file, use.line)
            if use.kind == "vars":
                raise InventoryError(
                    f"section [{name}:vars] sets vars of group {name!r}, which is not "
                    f"defined; expected a [{name}] or [{name}:children] section",
                    where,
                )
            raise InventoryError(
                f"section [{use.parents[-1]}:children] names group {name!r}, which is not "
                f"defined; expected a [{name}] or [{name}:children] section "
                "(hosts cannot be children)",
                where,
            )
