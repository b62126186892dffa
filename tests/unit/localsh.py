"""A Connection that runs scripts in the local /bin/sh: real shell, no SSH, for unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from opsfix.transport.base import CommandResult


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
        done = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=timeout or 60
        )
        return CommandResult(script, done.returncode, done.stdout, done.stderr)

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        Path(remote_path).write_bytes(data)
        Path(remote_path).chmod(mode)

    def close(self) -> None:
        pass

    @property
    def native_client(self) -> Any:
        return None
