"""Kept connections on lab hosts: a run that follows another logs in nowhere, repairs and
verifies through the connections the keeper kept, and the keeper gives them up when it
should (an edited known_hosts file, a dead session, `opsfix connections close`).

"Logged in nowhere" is read from each host's sshd log, one line per login. Every test
closes its keeper before it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from opsfix.errors import HostKeyError
from opsfix.lab import Lab
from opsfix.transport import wire
from opsfix.transport.keeper.link import build_tag
from opsfix.transport.spec import ConnectionSpec
from opsfix.transport.ssh import SSHConnection

from .helpers import (
    EXPECTED,
    PLAYBOOK,
    Run,
    break_host,
    clean_env,
    config_ok,
    host_public_key,
    http_body,
    log_marks,
    log_since,
    opsfix_command,
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


# -- secrets: the keeper never holds a become password --------------------------------------

SUDO_USER = "opskept"
PASSWORD = "kept-nowhere-Q7x9v2"
ADD_SUDO_USER = f"""
useradd -M -d /tmp/{SUDO_USER} -s /bin/sh {SUDO_USER}
echo '{SUDO_USER}:{PASSWORD}' | chpasswd
echo '{SUDO_USER} ALL=(ALL) ALL' > /etc/sudoers.d/{SUDO_USER}
chmod 0440 /etc/sudoers.d/{SUDO_USER}
install -d -o {SUDO_USER} -m 0700 /tmp/{SUDO_USER} /tmp/{SUDO_USER}/.ssh
install -o {SUDO_USER} -m 0600 /root/.ssh/authorized_keys /tmp/{SUDO_USER}/.ssh/
"""
REMOVE_SUDO_USER = f"userdel {SUDO_USER}; rm -rf /etc/sudoers.d/{SUDO_USER} /tmp/{SUDO_USER}"


@pytest.fixture
def sudo_inventory(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    """web1 as root, and web2 as a user whose sudo needs a password."""
    lab.exec("web2", REMOVE_SUDO_USER, check=False)
    lab.exec("web2", ADD_SUDO_USER)
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    web = inventory["all"]["children"]["web"]["hosts"]
    web["web2"] = {**web["web2"], "ansible_user": SUDO_USER, "ansible_become": True}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    yield path
    lab.exec("web2", REMOVE_SUDO_USER, check=False)


def test_the_keeper_holds_no_become_password_in_its_environment_or_memory(
    lab: Lab, keeper: Keeper, sudo_inventory: Path
) -> None:
    env = {**keeper.env, "OPSFIX_BECOME_PASSWORD": PASSWORD}
    args = ("check", PLAYBOOK, "-i", sudo_inventory, "--limit", "web1:web2")
    first = opsfix_with_env(*args, "--format", "json", env=env)
    assert first.returncode == 0, first  # web2's checks ran through sudo with the password
    pid = keeper.pid()
    assert pid is not None
    assert [k["host"] for k in keeper.kept()] == ["web1"]  # web2 connected in the run itself
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"OPSFIX_BECOME_PASSWORD" not in environ and PASSWORD.encode() not in environ
    assert b"PATH=" in environ  # it is the keeper's environment, read for real

    asked = _run_on_a_terminal([opsfix_command(), *map(str, args), "-K"], keeper.env, PASSWORD)
    assert asked.returncode == 0, asked
    assert keeper.pid() == pid  # the same keeper served both runs
    assert _memory_holds(pid, b"PATH=")  # the scan reads its memory for real
    assert not _memory_holds(pid, PASSWORD.encode()), "the keeper's memory holds the password"


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable mapping of process `pid` contains `needle` (root reads any)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms, *rest = line.split()
            if "r" not in perms or (rest and rest[-1] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            with contextlib.suppress(OSError, ValueError, OverflowError):
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
    return False


def _run_on_a_terminal(argv: list[str], env: dict[str, str], answer: str) -> Run:
    """`argv` with a terminal of its own (so -K prompts), answering the prompt."""
    began = time.monotonic()
    master, slave = os.openpty()

    def controlling_terminal() -> None:  # pragma: no cover - in the child
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        argv,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: the run is over
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"BECOME password:" in seen:
            os.write(master, answer.encode() + b"\n")
            answered = True
    os.close(master)
    code = process.wait(timeout=30)
    text = seen.decode(errors="replace")
    return Run(argv, code, text, "", time.monotonic() - began)


# -- host keys: revoked keys, certificate authorities, a kept connection's age -------------


def test_a_revoked_host_key_is_refused(lab: Lab, keeper: Keeper) -> None:
    key_type, key_text = host_public_key(lab, "web1").split()[:2]
    revoked = keeper.home / "revoked_hosts"
    revoked.write_text(f"# web1's key was stolen\n@revoked * {key_type} {key_text}\n")
    marks = log_marks(lab)
    run = keeper.run(lab, "check", "--known-hosts", str(revoked), "--format", "json")
    assert run.returncode == 3, run
    web1, web2 = run.host("web1"), run.host("web2")
    assert web1["status"] == "unreachable"
    assert "host key for" in web1["reason"] and "is REVOKED" in web1["reason"], web1
    assert str(revoked) in web1["reason"]
    assert web2["status"] == "healthy"
    assert logins(lab, marks) == {"web1": 0, "web2": 1}  # refused before logging in
    assert [k["host"] for k in keeper.kept() if k["alive"]] == ["web2"]


def test_a_host_only_a_certificate_authority_vouches_for_is_refused_plainly(
    lab: Lab, tmp_path: Path
) -> None:
    authority = tmp_path / "known_hosts"
    authority.write_text(f"@cert-authority * {host_public_key(lab, 'web2').strip()}\n")
    spec = ConnectionSpec(
        host="web3",
        hostname=lab.hosts["web3"],
        user="root",
        key_file=str(lab.private_key_path),
        known_hosts_files=(str(authority),),
        trust_new_host_keys=True,
    )
    with pytest.raises(HostKeyError, match="opsfix does not check host certificates"):
        SSHConnection(spec).open()
    assert "|1|" not in authority.read_text()  # trust on first use recorded nothing


def test_a_kept_connection_older_than_the_max_age_is_not_reused(lab: Lab, keeper: Keeper) -> None:
    keeper.env["OPSFIX_PERSIST_MAX_AGE"] = "3"
    marks = log_marks(lab)
    assert keeper.run(lab, "check").returncode == 0
    assert keeper.run(lab, "check").returncode == 0  # young: reused
    assert logins(lab, marks) == {"web1": 1, "web2": 1}
    time.sleep(3.2)
    marks = log_marks(lab)
    again = keeper.run(lab, "check")
    assert again.returncode == 0, again
    assert logins(lab, marks) == {"web1": 1, "web2": 1}, "an old connection was reused"
    assert all(float(str(k["age"])) < 3 for k in keeper.kept())
