"""A throwaway OpenSSH server on 127.0.0.1 for transport tests.

Its own ed25519 host key, one authorized client key, a VERBOSE log (to count logins),
its own PidFile; `stop()` ends it and removes its directory. The directory is 0755 (not
pytest's 0700 tmp) so sshd can read authorized_keys as an unprivileged test user too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from opsfix.transport.spec import ConnectionSpec

SSHD = "/usr/sbin/sshd"


def keygen(path: Path) -> str:
    """A new ed25519 key pair at `path`; returns the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "opsfix-test", "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sshd:
    directory: Path
    port: int
    host_key: Path
    client_key: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    extra_config: list[str] = field(default_factory=list)

    @property
    def host_public_key(self) -> str:
        """`ssh-ed25519 AAAA...` without the comment."""
        return " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_public_key}\n"

    def fingerprint(self) -> str:
        """The host key's fingerprint as OpenSSH itself prints it."""
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return out.split()[1]

    def accepted_logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def spec(self, **overrides: object) -> ConnectionSpec:
        known = self.directory / "known_hosts"
        if not known.exists():
            known.write_text(self.known_hosts_line())
        values: dict[str, object] = {
            "host": f"sshd-{self.port}",
            "hostname": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "key_file": str(self.client_key),
            "known_hosts_files": (str(known),),
            "connect_timeout": 5.0,
            "command_timeout": 20.0,
        }
        values.update(overrides)
        return ConnectionSpec(**values)  # type: ignore[arg-type]

    def authorize(self, public_key: str) -> None:
        with open(self.directory / "authorized_keys", "a") as f:
            f.write(public_key + "\n")

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (and what they run) this server started."""
        return _descendants(self.process.pid) if self.process else []

    def stop(self) -> None:
        """End the server and every session it started, then remove its directory."""
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_sshd(extra_config: list[str] | None = None) -> Sshd:
    directory = Path(tempfile.mkdtemp(prefix="opsfix-sshd-"))
    directory.chmod(0o755)
    server = Sshd(
        directory=directory,
        port=free_port(),
        host_key=directory / "host_ed25519",
        client_key=directory / "client_ed25519",
        log=directory / "sshd.log",
        extra_config=extra_config or [],
    )
    try:
        keygen(server.host_key)
        server.authorize(keygen(server.client_key))
        (directory / "authorized_keys").chmod(0o644)
        config = directory / "sshd_config"
        config.write_text(_config(server))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        server.process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(server.log)],
            stdin=subprocess.DEVNULL,
        )
        _wait_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


def _config(server: Sshd) -> str:
    lines = [
        f"Port {server.port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {server.host_key}",
        f"PidFile {server.directory}/sshd.pid",
        f"AuthorizedKeysFile {server.directory}/authorized_keys",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        *server.extra_config,
    ]
    return "\n".join(lines) + "\n"


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(p) for p in out.split()]
    return children + [d for child in children for d in _descendants(child)]


def _wait_listening(server: Sshd, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise RuntimeError(f"sshd exited: {server.log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"sshd did not listen on port {server.port} within {timeout}s")
