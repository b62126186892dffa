"""A Connection that runs scripts in the local /bin/sh: real shell, no SSH, for unit tests."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from opsfix.transport.base import CommandResult
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec


class LocalShell:
    host = "localhost"

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def open(self) -> None:
        pass

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        self.scripts.append(script)
        # as the SSH transport does: the script goes as UTF-8 (a stray surrogate is an error,
        # never smuggled through), the output comes back decoded with replacement characters
        done = subprocess.run(
            [b"/bin/sh", b"-c", script.encode()], capture_output=True, timeout=timeout or 60
        )
        out, err = (data.decode("utf-8", "replace") for data in (done.stdout, done.stderr))
        return CommandResult(script, done.returncode, out, err)

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        Path(remote_path).write_bytes(data)
        Path(remote_path).chmod(mode)

    def close(self) -> None:
        pass

    @property
    def native_client(self) -> Any:
        return None


class Recording:
    """A local connection that notes each command and the thread that ran it."""

    def __init__(self, name: str) -> None:
        spec = ConnectionSpec(host=name, hostname="127.0.0.1", connection="ssh")
        self.inner = LocalConnection(spec)
        self.host = name
        self.calls: list[tuple[str, str]] = []

    def run(self, script: str, **kw: Any) -> CommandResult:
        self.calls.append((script, threading.current_thread().name))
        return self.inner.run(script, **kw)

    @property
    def native_client(self) -> None:
        return None
