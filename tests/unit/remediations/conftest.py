"""Shared pieces for the remediation tests: canned gather output, a real dash, a fake host.

Canned output in data/ was captured by data/capture.py running the gather commands for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from opsfix.plugin import RemediationContext
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

DATA = Path(__file__).parent / "data"
Run = Callable[..., CommandResult]


def canned_result(name: str) -> CommandResult:
    record = json.loads((DATA / f"{name}.json").read_text())
    return CommandResult(
        f"<canned {name}>", record["exit_status"], record["stdout"], record["stderr"]
    )


@pytest.fixture
def canned() -> Callable[[str], CommandResult]:
    return canned_result


def run_sh(command: str, env: dict[str, str] | None = None) -> CommandResult:
    """Run one command in dash, as the engine runs it on a host."""
    done = subprocess.run(
        ["dash", "-c", command], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return CommandResult(command, done.returncode, done.stdout, done.stderr)


@pytest.fixture
def sh() -> Run:
    if not shutil.which("dash"):
        pytest.skip("needs dash")
    return run_sh


@pytest.fixture
def context(tmp_path: Path) -> RemediationContext:
    def render(name: str, variables: Mapping[str, Any]) -> str:
        return f"# {name}\nroot {variables['web_root']};\n"

    return RemediationContext("web1", {"web_root": "/var/www/html"}, tmp_path, render)


def _needs_namespaces() -> None:
    if os.geteuid() != 0 or not all(map(shutil.which, ("unshare", "nsenter", "nginx", "ip"))):
        pytest.skip("needs root, unshare, nsenter, ip and nginx")
    if subprocess.run(["unshare", "-m", "-p", "-f", "true"], capture_output=True).returncode:
        pytest.skip("namespaces not permitted here")


# PID 1 of the fake host reaps orphans, as sshd does on a lab host (else they linger as zombies).
_REAPER = """
import os, time
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        time.sleep(0.02)
"""


@pytest.fixture
def namespace_host(tmp_path: Path) -> Iterator[Run]:
    """A throwaway host like the lab's: own pid, mount and network namespaces, no systemd,
    a tmpfs on /run and a test nginx tree bind-mounted over /etc/nginx (listens on 127.0.0.1).
    Yields a runner that executes a command inside it; everything in it dies with it.
    """
    _needs_namespaces()
    etc = tmp_path / "etc-nginx"
    etc.mkdir()
    (etc / "nginx.conf").write_text(
        f"pid /run/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        "http { access_log off; server { listen 127.0.0.1:8080; } }\n"
    )
    setup = f"mount -t tmpfs tmpfs /run && mount --bind {etc} /etc/nginx && ip link set lo up"
    host = subprocess.Popen(
        [
            "unshare",
            "-m",
            "-n",
            "-p",
            "-f",
            "--mount-proc",
            "--kill-child",
            "dash",
            "-c",
            f"{setup} && echo ready && exec {sys.executable} -c {quote(_REAPER)}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None and host.stdout.readline() == "ready\n"
        init = (Path(f"/proc/{host.pid}/task/{host.pid}/children").read_text().split() or ["?"])[0]

        def run(command: str) -> CommandResult:
            enter = ["nsenter", "-t", init, "-m", "-n", "-p", "dash", "-c", command]
            done = subprocess.run(enter, capture_output=True, text=True, timeout=30)
            time.sleep(0.05)  # let a daemon that just forked settle
            return CommandResult(command, done.returncode, done.stdout, done.stderr)

        yield run
    finally:
        host.kill()
        host.wait()


def write_nginx_tree(root: Path, scratch: Path) -> Path:
    """A valid nginx tree whose nginx.conf includes absolute paths into itself."""
    for folder in ("conf.d", "sites-available", "sites-enabled"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        f"pid {scratch}/nginx.pid;\nerror_log {scratch}/error.log;\nevents {{}}\n"
        f"http {{\n\taccess_log off;\n\tinclude {root}/conf.d/*.conf;\n"
        f"\tinclude {root}/sites-enabled/*;\n}}\n"
    )
    (root / "conf.d/gzip.conf").write_text("gzip on;\n")
    (root / "sites-available/default").write_text("server { listen 127.0.0.1:18080; }\n")
    (root / "sites-enabled/default").symlink_to(root / "sites-available/default")
    return root


@pytest.fixture
def nginx_tree(tmp_path: Path) -> Path:
    if not shutil.which("nginx") or os.geteuid() != 0:
        pytest.skip("needs nginx and root")
    return write_nginx_tree(tmp_path / "etc-nginx", tmp_path)


class LocalConnection:
    """Just enough of a Connection for the engine's Transaction: scripts run in dash here."""

    host = "localhost"

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        return run_sh(script)
