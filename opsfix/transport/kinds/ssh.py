"""`ansible_connection: ssh` (also `smart`, `paramiko`): opsfix's own verified SSH.

The connection itself is opsfix.transport.ssh (paramiko, host keys checked on every hop),
imported only when a run connects in-process: with the connection keeper, a run never
loads paramiko (opsfix.transport.keeper.link). A verify suite's testinfra host is a paramiko
host given that verified client, so it never logs in a second time.
"""

from __future__ import annotations

from typing import Any

from opsfix.transport.base import Connection
from opsfix.transport.registry import Transport
from opsfix.transport.spec import ConnectionSpec


def connect(spec: ConnectionSpec) -> Connection:
    from opsfix.transport.ssh import SSHConnection

    return SSHConnection(spec)


def attach(backend: Any, connection: Connection, spec: ConnectionSpec) -> None:
    """testinfra's paramiko backend gets our verified client, never one of its own."""
    client = connection.native_client
    backend.client = client if client is not None else NoSecondLogin(spec.host)


class NoSecondLogin:
    """Stands in for testinfra's own paramiko client (a kept connection: the keeper holds
    the session), which would log in a second time with its own, laxer host key policy."""

    def __init__(self, host: str) -> None:
        self._host = host

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"{self._host}: testinfra asked for its own SSH client ({name}); opsfix runs every "
            "command of a verify suite over the run's connection"
        )


TRANSPORT = Transport(
    names=("ssh", "smart", "paramiko"),
    about="SSH, host keys verified, one connection per host (kept between runs)",
    connect=connect,
    testinfra="paramiko",
    attach=attach,
)
