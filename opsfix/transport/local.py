"""The local transport, for `ansible_connection: local`: same contract, no SSH.

Commands run through `/bin/sh -c` in their own session, so a timeout can stop the whole
process group; become uses the same sudo command line as SSH, password on stdin.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import tempfile

from opsfix.errors import CommandTimeout
from opsfix.hosts import ConnectionSpec
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult
from opsfix.transport.settings import (
    MAX_INLINE_SCRIPT,
    command_result,
    invocation,
    script_file_mode,
)

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL after a timeout


class LocalConnection:
    """A Connection to the machine opsfix runs on (see opsfix.transport.base.Connection)."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self.host = spec.host
        self.login_user = pwd.getpwuid(os.geteuid()).pw_name

    def open(self) -> None:
        """Nothing to open; present so callers treat every transport alike."""

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        become = self.spec.become if become is None else become
        limit = self.spec.command_timeout if timeout is None else timeout
        if len(script.encode()) <= MAX_INLINE_SCRIPT:
            return self._execute(script, script, become, limit)
        path = self._script_file(script, become)
        try:
            return self._execute(script, cmd("/bin/sh", path), become, limit)
        finally:
            os.unlink(path)

    def _script_file(self, script: str, become: bool) -> str:
        """A script too long for one argument goes to a private temporary file."""
        fd, path = tempfile.mkstemp(prefix="opsfix-", suffix=".sh")
        os.fchmod(fd, script_file_mode(self.spec, login_user=self.login_user, become=become))
        with os.fdopen(fd, "w") as f:
            f.write(script)
        return path

    def _execute(self, script: str, body: str, become: bool, limit: float) -> CommandResult:
        how = invocation(body, login_user=self.login_user, spec=self.spec, become=become)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", how.command],
            stdin=subprocess.PIPE if how.password_line else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(how.password_line or None, timeout=limit)
        except subprocess.TimeoutExpired:
            out, err = _stop(proc)
            raise CommandTimeout(self.host, script, limit, _text(out), _text(err)) from None
        return command_result(
            script, proc.returncode, _text(out), _text(err), spec=self.spec, used_sudo=how.uses_sudo
        )

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write a local file, its mode set before any byte lands."""
        fd = os.open(remote_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)
            f.write(data)

    def close(self) -> None:
        """Nothing to close."""

    @property
    def native_client(self) -> None:
        return None


def _stop(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """TERM the command's process group, then KILL what is left; what it wrote till then."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            out, err = proc.communicate(timeout=wait)
            return out or b"", err or b""
        except subprocess.TimeoutExpired:
            continue
    return b"", b""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
