"""Open the right transport for a spec (opsfix.transport.registry says which)."""

from __future__ import annotations

from opsfix.transport.base import Connection
from opsfix.transport.registry import transport_for
from opsfix.transport.spec import ConnectionSpec


def make_connection(spec: ConnectionSpec) -> Connection:
    """A connection object for `spec`, not yet opened."""
    return transport_for(spec).connect(spec)


def open_connection(spec: ConnectionSpec) -> Connection:
    """An open connection to `spec`'s host; raises ConnectionFailed or HostKeyError."""
    connection = make_connection(spec)
    connection.open()
    return connection
