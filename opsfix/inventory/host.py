"""A host as the inventory resolved it: the noun every layer shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsfix.errors import Location


@dataclass(frozen=True)
class Host:
    """A host as the inventory resolved it: its name, groups and merged variables.

    `vars` holds inventory variables only (group vars merged in Ansible order, then host
    vars); playbook and extra vars are layered on later by `opsfix.playbook.variables`. `origins`
    says where each of those values was set (file:line), for error messages.
    """

    name: str
    groups: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    origins: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)

    def with_extra_vars(self, extra: dict[str, Any]) -> Host:
        """This host with `-e` values over its inventory's (they win, as in Ansible),
        each one's origin `--extra-vars`."""
        origins = {key: Location("--extra-vars", field=key) for key in extra}
        return Host(self.name, self.groups, {**self.vars, **extra}, {**self.origins, **origins})
