"""How to reach one host: everything a transport needs to open its connection."""

from __future__ import annotations

from dataclasses import dataclass

from opsfix.secret import Secret

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
