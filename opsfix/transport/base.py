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
    truncated: bool = False  # output past the spec's output_limit was read and dropped

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class BoundedOutput:
    """What one stream of a command printed, up to `limit` bytes. The rest is read and
    dropped as it comes (a host printing 500 MB costs the controller nothing to hold)."""

    __slots__ = ("_chunks", "dropped", "kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self._chunks: list[bytes] = []

    def add(self, data: bytes) -> None:
        room = self.limit - self.kept
        if len(data) <= room:
            self._chunks.append(data)
            self.kept += len(data)
            return
        if room > 0:
            self._chunks.append(data[:room])
            self.kept += room
        self.dropped += len(data) - max(room, 0)

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")


class Connection(Protocol):
    """One open connection to one host, reused for every command of a run.

    `run` executes a POSIX shell script (already quoted by the caller) and returns its
    result; a non-zero exit is a result, not an exception. With `become=True` the script
    runs as the spec's become_user through sudo; the password, if any, goes over stdin and
    never appears in the command line. `run` raises CommandTimeout past `timeout` seconds
    (default: the spec's command_timeout) and ConnectionFailed if the connection is lost.
    Of stdout and of stderr each, at most the spec's `output_limit` bytes are kept: the
    rest is read and dropped (never held), and the result says `truncated`.
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
        """The underlying paramiko.SSHClient (the ssh transport hands it to testinfra),
        or None: a kept connection, or another transport."""
        ...
