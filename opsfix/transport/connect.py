"""Open the right transport for a spec."""

from __future__ import annotations

from opsfix.transport.base import Connection
from opsfix.transport.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec


def make_connection(spec: ConnectionSpec) -> Connection:
    """A connection object for `spec`, not yet opened."""
    if spec.connection == "local":
        return LocalConnection(spec)
    if spec.connection == "ssh":
        from opsfix.transport.ssh import SSHConnection  # paramiko: when a run connects itself

        return SSHConnection(spec)
    raise ValueError(f"{spec.host}: unknown connection type {spec.connection!r}")


def open_connection(spec: ConnectionSpec) -> Connection:
    """An open connection to `spec`'s host; raises ConnectionFailed or HostKeyError."""
    connection = make_connection(spec)
    connection.open()
    return connection
