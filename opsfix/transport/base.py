"""What every transport offers. Only opsfix.transport imports paramiko or fabric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one shell command on one host."""

    command: str
    exit_status: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class Connection(Protocol):
    """One open connection to one host, reused for every command of a run.

    `run` executes a POSIX shell script (already quoted by the caller) and returns its
    result; a non-zero exit is a result, not an exception. With `become=True` the script
    runs as the spec's become_user through sudo; the password, if any, goes over stdin and
    never appears in the command line. `run` raises CommandTimeout past `timeout` seconds
    (default: the spec's command_timeout) and ConnectionFailed if the connection is lost.
    """

    host: str

    def open(self) -> None: ...

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult: ...

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write bytes to a path the *login* user may write (staging), over SFTP."""
        ...

    def close(self) -> None: ...

    @property
    def native_client(self) -> Any:
        """The underlying paramiko.SSHClient (for testinfra), or None for local hosts."""
        ...
