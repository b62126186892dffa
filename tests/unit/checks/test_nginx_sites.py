"""nginx_sites: the check's script run for real in dash against an `nginx` that prints a
config (as `nginx -T` does) and a Python HTTP server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.checks.nginx_sites import NginxSites, NginxSitesParams
from opsfix.transport.base import CommandResult

from .throwaway import free_port

CONFIG = """# configuration file /etc/nginx/nginx.conf:
http {{
\t# listen 9999;   a comment, never a listen
\troot {base}/a;
\tindex index.htm index.html;
\tserver {{ listen 127.0.0.1:{port}; root {base}/b;
\t\tlocation /x {{ root /nowhere; }}
\t}}
\tserver {{
\t\tlisten {closed} ssl http2;
\t\tserver_name shop;
\t\troot "{base}/c";
\t}}
\tserver {{ listen 127.0.0.1:{silent}; return 444; }}
}}
stream {{
\tserver {{ listen 5432; proxy_pass db:5432; }}
}}
"""


@pytest.fixture
def port() -> Iterator[int]:
    number = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(number), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )
    try:
        for _ in range(100):
            ran = subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{number}/"])
            if ran.returncode == 0:
                break
            subprocess.run(["sleep", "0.05"])
        yield number
    finally:
        server.kill()
        server.wait()


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that reads each request and closes the connection, as nginx does for 444."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:  # as nginx does for 444: the request read, then closed unanswered
                conn.settimeout(5)
                conn.recv(65536)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def fake_nginx(tmp_path: Path, port: int, closed: int, silent: int) -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "index.htm").write_text("hello\n")
    (tmp_path / "b" / "index.html").write_text("")
    config = tmp_path / "dump.conf"
    config.write_text(CONFIG.format(base=tmp_path, port=port, closed=closed, silent=silent))
    binary = tmp_path / "nginx"
    binary.write_text(f'#!/bin/sh\n[ "$1" = -T ] && cat {config}\n')
    binary.chmod(0o755)
    return binary


def run(check: NginxSites, ss: str = "") -> tuple[CommandResult, CommandResult]:
    script = check.commands()[0]
    done = subprocess.run(["dash", "-c", script], capture_output=True, text=True, timeout=60)
    return CommandResult(script, done.returncode, done.stdout, done.stderr), CommandResult(
        "ss", 0, ss, ""
    )


@pytest.mark.skipif(not (shutil.which("dash") and shutil.which("curl")), reason="needs dash, curl")
def test_every_listen_is_asked_and_every_server_root_looked_at(
    tmp_path: Path, port: int, silent: int
) -> None:
    closed = free_port()
    binary = fake_nginx(tmp_path, port, closed, silent)
    check = NginxSites(NginxSitesParams(binary=str(binary), timeout=2))
    asked, ss = run(check)
    assert asked.ok, asked.stderr
    lines = sorted(asked.stdout.splitlines())
    assert lines == sorted(
        [
            f"opsfix-listen 127.0.0.1:{port} {port} 200",
            f"opsfix-listen {closed} {closed} 000",  # asked over https: nothing answers
            f"opsfix-listen 127.0.0.1:{silent} {silent} 444",  # closed at once: it serves
            f"opsfix-root ok {tmp_path}/a",  # index.htm, from the index directive
            f"opsfix-root empty {tmp_path}/b",
            f"opsfix-root missing {tmp_path}/c",  # quotes dropped; /nowhere is a location's
        ]
    )
    verdict = check.evaluate([asked, ss])  # ss says nothing of owners: not judged
    assert verdict.status == "failed"
    assert verdict.evidence["faults"] == [
        f"{closed}: no answer",
        f"{tmp_path}/b: index empty",
        f"{tmp_path}/c: index missing",
    ]


def answers(*lines: str) -> CommandResult:
    return CommandResult("script", 0, "".join(f"{line}\n" for line in lines), "")


SS = (
    'LISTEN 0 511 0.0.0.0:8081 0.0.0.0:* users:(("nginx",pid=12,fd=6),("nginx",pid=11,fd=6))\n'
    'LISTEN 0 5 0.0.0.0:8090 0.0.0.0:* users:(("python3",pid=40,fd=3))\n'
)


@pytest.mark.parametrize(
    "lines, status, summary",
    [
        (["opsfix-listen 8081 8081 200", "opsfix-root ok /srv/shop"], "passed", "8081 answer(s)"),
        (["opsfix-listen 8081 8081 404"], "passed", "8081 answer(s)"),
        (["opsfix-listen 8081 8081 444"], "passed", "8081 answer(s)"),  # closed, no answer
        (["opsfix-listen 8081 8081 502"], "failed", "8081: answered 502"),
        (["opsfix-listen 8090 8090 200"], "failed", "8090: port 8090 is not held by nginx"),
        ([], "failed", "nginx's config listens nowhere"),
    ],
)
def test_verdicts(lines: list[str], status: str, summary: str) -> None:
    check = NginxSites(NginxSitesParams())
    verdict = check.evaluate([answers(*lines), CommandResult("ss", 0, SS, "")])
    assert (verdict.status, verdict.summary) == (status, summary)


def test_a_config_nginx_cannot_read_is_could_not_tell() -> None:
    failed = CommandResult("script", 3, "", "nginx -T fails: the config cannot be read\n")
    verdict = NginxSites(NginxSitesParams()).evaluate([failed, CommandResult("ss", 0, "", "")])
    assert verdict.status == "error" and "nginx -T fails" in verdict.summary
