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
    needs_password_input,
    shell_command,
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
        if become and self.spec.become_user not in ("root", self.login_user):
            os.fchmod(fd, 0o644)  # the become user must be able to read it
        with os.fdopen(fd, "w") as f:
            f.write(script)
        return path

    def _execute(self, script: str, body: str, become: bool, limit: float) -> CommandResult:
        command = shell_command(body, login_user=self.login_user, spec=self.spec, become=become)
        password = needs_password_input(self.spec, login_user=self.login_user, become=become)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE if password else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        stdin = _password_line(self.spec) if password else None
        try:
            out, err = proc.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise CommandTimeout(self.host, script, limit) from None
        used_sudo = become and self.login_user != self.spec.become_user
        return command_result(
            script, proc.returncode, _text(out), _text(err), spec=self.spec, used_sudo=used_sudo
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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM the command's process group, then KILL what is left."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _password_line(spec: ConnectionSpec) -> bytes:
    return (spec.become_password.reveal() if spec.become_password else "").encode() + b"\n"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
