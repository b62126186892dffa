"""The nouns every layer shares: a host from the inventory and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsfix.errors import Location


class Secret:
    """A value that must never be printed: str() and repr() show a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Host:
    """A host as the inventory resolved it: its name, groups and merged variables.

    `vars` holds inventory variables only (group vars merged in Ansible order, then host
    vars); playbook and extra vars are layered on later by `opsfix.variables`. `origins`
    says where each of those values was set (file:line), for error messages.
    """

    name: str
    groups: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    origins: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)


DEFAULT_OUTPUT_LIMIT = 4 << 20  # bytes of stdout, and of stderr, kept of one command


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything the transport needs to open one host's connection."""

    host: str  # inventory name, used in messages
    hostname: str  # address to connect to
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    connection: str = "ssh"  # "ssh" or "local"
    become: bool = False
    become_method: str = "sudo"  # "sudo", "su" or "doas"
    become_user: str = "root"
    become_password: Secret | None = None
    known_hosts_files: tuple[str, ...] = ()
    trust_new_host_keys: bool = False  # trust on first use: accept and record *new* keys only
    proxy_command: str | None = None
    proxy_jump: str | None = None
    compress: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    output_limit: int = DEFAULT_OUTPUT_LIMIT  # past it, output is read and dropped
