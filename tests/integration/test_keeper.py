"""Kept connections on lab hosts: a run that follows another logs in nowhere, repairs and
verifies through the connections the keeper kept, and the keeper gives them up when it
should (an edited known_hosts file, a dead session, `opsfix connections close`).

"Logged in nowhere" is read from each host's sshd log, one line per login. Every test
closes its keeper before it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.hosts import ConnectionSpec
from opsfix.lab import Lab
from opsfix.transport import wire
from opsfix.transport.kept import build_tag
from opsfix.transport.ssh import SSHConnection

from .helpers import (
    EXPECTED,
    PLAYBOOK,
    Run,
    break_host,
    clean_env,
    config_ok,
    http_body,
    log_marks,
    log_since,
    opsfix_with_env,
    reset_hosts,
)

pytestmark = pytest.mark.integration

LOGIN = "Accepted publickey"
HOSTS = ["web1", "web2"]


class Keeper:
    """`opsfix` runs sharing one HOME, so one keeper, with kept connections turned on."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**clean_env(home), "OPSFIX_PERSIST": "30"}

    def opsfix(self, *args: str | Path) -> Run:
        return opsfix_with_env(*args, env=self.env)

    def run(self, lab: Lab, command: str, *extra: str) -> Run:
        return self.opsfix(
            command, PLAYBOOK, "-i", lab.inventory_path, "--limit", ":".join(HOSTS), *extra
        )

    def kept(self) -> list[dict[str, object]]:
        listed = self.opsfix("connections", "--format", "json")
        assert listed.returncode == 0, listed
        return list(json.loads(listed.stdout))

    @property
    def socket_path(self) -> Path:
        folder = self.home / ".local" / "state" / "opsfix" / "control"
        return folder / f"keeper-{build_tag()}.sock"

    def pid(self) -> int | None:
        """The keeper's pid, from the socket's peer credentials."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket_path))
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            return int.from_bytes(creds[:4], "little")
        return None


@pytest.fixture
def keeper(lab: Lab) -> Iterator[Keeper]:
    reset_hosts(lab, HOSTS)
    # a HOME others may pass through (as most are), so that only the keeper's own folder
    # and socket keep other users out; pytest's tmp_path is private all the way up
    home = Path(tempfile.mkdtemp(prefix="opsfix-keeper-"))
    home.chmod(0o755)
    kept = Keeper(home)
    try:
        yield kept
    finally:
        pid = kept.pid()
        kept.opsfix("connections", "close")
        if pid is not None:
            _wait_gone(pid)
        shutil.rmtree(home)


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), f"keeper {pid} still runs"


def logins(lab: Lab, marks: dict[str, int]) -> dict[str, int]:
    return {host: log_since(lab, host, marks).count(LOGIN) for host in HOSTS}


def test_a_run_that_follows_another_logs_in_nowhere_and_repairs_through_kept_connections(
    lab: Lab, keeper: Keeper
) -> None:
    marks = log_marks(lab)
    first = keeper.run(lab, "check")
    assert first.returncode == 0, first
    assert logins(lab, marks) == {"web1": 1, "web2": 1}
    listed = keeper.kept()
    assert sorted(str(k["host"]) for k in listed) == HOSTS
    assert all(k["alive"] and not k["in_use"] for k in listed)

    break_host(lab, "web1", ["conf_d_syntax"])
    marks = log_marks(lab)
    repair = keeper.run(lab, "apply", "--format", "json")
    assert repair.returncode == 0, repair
    assert logins(lab, marks) == {"web1": 0, "web2": 0}, "the second run logged in again"
    report = json.loads(repair.stdout)
    statuses = {h["host"]: h["status"] for h in report["hosts"]}
    assert statuses == {"web1": "repaired", "web2": "healthy"}
    for host in report["hosts"]:  # testinfra ran every test over the kept connection
        assert host["verify"] and {v["outcome"] for v in host["verify"]} == {"passed"}, host
    assert config_ok(lab, "web1")[0]
    assert EXPECTED in http_body(lab, "web1")


def test_an_edited_known_hosts_file_means_a_new_login_with_the_key_checked_again(
    lab: Lab, keeper: Keeper
) -> None:
    assert keeper.run(lab, "check").returncode == 0
    known = lab.known_hosts_path
    stat = known.stat()
    os.utime(known, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    marks = log_marks(lab)
    again = keeper.run(lab, "check")
    assert again.returncode == 0, again
    assert logins(lab, marks) == {"web1": 1, "web2": 1}


def test_a_kept_connection_that_died_is_replaced(lab: Lab, keeper: Keeper) -> None:
    assert keeper.run(lab, "check").returncode == 0
    # the host ends our session (as a reboot or a network cut would)
    lab.exec("web2", "pkill -f 'sshd: root@notty' || true", check=False)
    marks = log_marks(lab)
    again = keeper.run(lab, "check")
    assert again.returncode == 0, again
    assert logins(lab, marks) == {"web1": 0, "web2": 1}


def test_a_keepalive_tells_a_live_session_from_a_closed_one(lab: Lab) -> None:
    """What the keeper asks of a connection left idle before it lends it out again."""
    spec = ConnectionSpec(
        host="web3",
        hostname=lab.hosts["web3"],
        user="root",
        key_file=str(lab.private_key_path),
        known_hosts_files=(str(lab.known_hosts_path),),
    )
    conn = SSHConnection(spec)
    conn.open()
    try:
        assert conn.alive and conn.responds(5)
    finally:
        conn.close()
    assert not conn.alive and not conn.responds(1)


def test_connections_close_ends_the_keeper(lab: Lab, keeper: Keeper) -> None:
    assert keeper.run(lab, "check").returncode == 0
    pid = keeper.pid()
    assert pid is not None
    closed = keeper.opsfix("connections", "close")
    assert closed.returncode == 0 and "closed" in closed.stdout
    _wait_gone(pid)
    assert keeper.kept() == []
    assert not keeper.socket_path.exists()


def test_only_its_own_user_may_use_the_keeper(lab: Lab, keeper: Keeper) -> None:
    assert keeper.run(lab, "check").returncode == 0
    folder = keeper.socket_path.parent
    assert folder.stat().st_mode & 0o777 == 0o700
    assert keeper.socket_path.stat().st_mode & 0o077 == 0
    # even with the folders (the state folder is 0700 too) and the socket opened up,
    # another user gets no answer
    opened = [p for p in (folder, *folder.parents) if keeper.home in p.parents]
    for level in opened:
        level.chmod(0o755)
    keeper.socket_path.chmod(0o777)
    try:
        answer = _ask_as_nobody(keeper.socket_path)
    finally:
        for level in opened:
            level.chmod(0o700)
        keeper.socket_path.chmod(0o600)
    assert answer == "closed"
    assert len(keeper.kept()) == 2  # and the keeper serves its own user still


def _ask_as_nobody(path: Path) -> str:
    """Connect as uid 65534 in a child process and ask for the list of connections."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        verdict = "error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(path))
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    wire.send(sock, threading.Lock(), (1, "list"))
                try:
                    wire.receive(sock)
                    verdict = "answered"
                except (wire.Closed, ConnectionResetError):
                    verdict = "closed"
        except Exception as exc:
            verdict = f"error {exc}"
        os.write(write, verdict.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        return pipe.read()
