"""`ansible_connection: local`: the machine opsfix runs on, same contract, no SSH.

Commands run through `/bin/sh -c` in their own session, so a timeout can stop the whole
process group; become uses the same sudo command line as SSH, password on stdin.

A transport that reaches a host by starting a local process that enters it (`nsenter`,
`ip netns exec`, `chroot`) is this one with two things changed: `argv` (how the process
starts) and `root` (where the host's files are, seen from here).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import signal
import subprocess
import tempfile
import time

from opsfix.errors import CommandTimeout
from opsfix.shell import cmd
from opsfix.transport.ansible_vars import refuse
from opsfix.transport.base import BoundedOutput, CommandResult
from opsfix.transport.registry import Transport
from opsfix.transport.settings import (
    MAX_INLINE_SCRIPT,
    command_result,
    invocation,
    script_file_mode,
)
from opsfix.transport.spec import ConnectionSpec

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL after a timeout
_CHUNK = 65536


class LocalConnection:
    """A Connection to the machine opsfix runs on (see opsfix.transport.base.Connection)."""

    root = ""  # the host's / as a path here (a subclass: e.g. /proc/PID/root)

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
            os.unlink(self.root + path)

    def argv(self, command: str) -> list[str]:
        """The local process that runs one command line on the host."""
        return ["/bin/sh", "-c", command]

    def _script_file(self, script: str, become: bool) -> str:
        """A script too long for one argument goes to a private temporary file; its path
        as the host sees it."""
        folder = self.root + "/tmp" if self.root else None
        fd, path = tempfile.mkstemp(prefix="opsfix-", suffix=".sh", dir=folder)
        os.fchmod(fd, script_file_mode(self.spec, login_user=self.login_user, become=become))
        with os.fdopen(fd, "w") as f:
            f.write(script)
        return path[len(self.root) :]

    def _execute(self, script: str, body: str, become: bool, limit: float) -> CommandResult:
        how = invocation(body, login_user=self.login_user, spec=self.spec, become=become)
        proc = subprocess.Popen(
            self.argv(how.command),
            stdin=subprocess.PIPE if how.password_line else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out, err = BoundedOutput(self.spec.output_limit), BoundedOutput(self.spec.output_limit)
        if not _collect(proc, how.password_line, out, err, time.monotonic() + limit):
            _stop(proc)
            raise CommandTimeout(self.host, script, limit, out.text(), err.text())
        return command_result(
            script,
            proc.returncode,
            out.text(),
            err.text(),
            spec=self.spec,
            how=how,
            truncated=out.truncated or err.truncated,
        )

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write a local file, its mode set before any byte lands."""
        fd = os.open(self.root + remote_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)
            f.write(data)

    def close(self) -> None:
        """Nothing to close."""

    @property
    def native_client(self) -> None:
        return None


def _collect(
    proc: subprocess.Popen[bytes],
    password_line: bytes,
    out: BoundedOutput,
    err: BoundedOutput,
    deadline: float,
) -> bool:
    """Read both streams to their end and wait for the exit, as communicate() would, but
    bounded (past the limit, output is read and dropped); False when `deadline` passed."""
    assert proc.stdout is not None and proc.stderr is not None
    if proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(password_line)
        proc.stdin.close()
    with selectors.DefaultSelector() as streams:
        streams.register(proc.stdout, selectors.EVENT_READ, out)
        streams.register(proc.stderr, selectors.EVENT_READ, err)
        while streams.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in streams.select(left):
                data = os.read(key.fd, _CHUNK)
                if data:
                    key.data.add(data)
                else:
                    streams.unregister(key.fileobj)
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        return False
    proc.stdout.close()
    proc.stderr.close()
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM the command's process group, then KILL what is left."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _no_terminal(spec: ConnectionSpec) -> None:
    """su and doas read a password only from a terminal, which this transport never opens."""
    if spec.become_password and spec.become_method != "sudo":
        raise refuse(
            spec.host,
            "ansible_become_method",
            f"{spec.become_method} with a password needs a terminal, which the local "
            "connection does not open: use sudo, or reach this host over ssh",
        )


TRANSPORT = Transport(
    names=("local",),
    about="the machine opsfix runs on, commands as local processes",
    connect=LocalConnection,
    testinfra="local",
    check=_no_terminal,
)
