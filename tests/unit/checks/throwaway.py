"""A throwaway nginx on a loopback port, with its own config tree, pid file and web root.

Used by the live tests and by `capture.py`, which records the canned outputs under data/.
It never touches /etc/nginx or the system's nginx: everything lives under `base`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")

NGINX_CONF = """pid {base}/run/nginx.pid;
error_log {base}/run/error.log;
events {{
\tworker_connections 64;
}}
http {{
\taccess_log off;
\ttypes {{ text/html html; application/javascript js; text/plain txt; }}
\tdefault_type application/octet-stream;
\tclient_body_temp_path {base}/run/body;
\tproxy_temp_path {base}/run/proxy;
\tfastcgi_temp_path {base}/run/fastcgi;
\tuwsgi_temp_path {base}/run/uwsgi;
\tscgi_temp_path {base}/run/scgi;
\tinclude {base}/nginx/conf.d/*.conf;
\tinclude {base}/nginx/sites-enabled/*;
}}
"""

SITE = """server {{
\tlisten 127.0.0.1:{port};
{listen_v6}\troot {base}/www;
\tindex index.html;
\tlocation /assets/ {{
\t\ttry_files $uri =404;
\t}}
\tlocation / {{
\t\ttry_files $uri $uri/ /index.html;
\t}}
}}
"""

INDEX = """<!doctype html>
<html><head><title>Shop</title></head>
<body><div id="app">Welcome to the shop</div><script src="/assets/app.js"></script></body>
</html>
"""


@dataclass(frozen=True)
class Nginx:
    base: Path
    port: int

    @property
    def conf(self) -> Path:
        return self.base / "nginx" / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.base / "run" / "nginx.pid"

    @property
    def www(self) -> Path:
        return self.base / "www"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def master_pid(self) -> int:
        return int(self.pid_file.read_text().split()[0])


def run_local(
    commands: Sequence[str], *, path: str | None = None, as_user: str | None = None
) -> list[CommandResult]:
    """The commands batched as the engine batches them, run by the local /bin/sh (dash)."""
    env = {**os.environ, "PATH": path} if path else None
    user = ["setpriv", f"--reuid={as_user}", "--regid=nogroup", "--clear-groups"] if as_user else []
    done = subprocess.run(
        [*user, "/bin/sh", "-c", batch(commands)], capture_output=True, text=True, env=env
    )
    return unbatch(commands, CommandResult("batch", done.returncode, done.stdout, done.stderr))


def tools_dir(base: Path, tools: Sequence[str]) -> str:
    """A PATH of just these tools (plus what batch() itself needs): to hide curl, ss, ..."""
    folder = base / ("bin-" + "-".join(tools))
    folder.mkdir(parents=True, exist_ok=True)
    for tool in {*tools, "base64", "tr", "cat", "mktemp", "rm"}:
        found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        if found and not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    return str(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tree(base: Path, port: int, *, ipv6: bool = False) -> Nginx:
    """A fresh config tree, web root and run folder under `base`, readable by nginx workers."""
    shutil.rmtree(base, ignore_errors=True)
    for sub in ("nginx/conf.d", "nginx/sites-available", "nginx/sites-enabled", "www/assets"):
        (base / sub).mkdir(parents=True)
    (base / "run").mkdir()
    listen_v6 = f"\tlisten [::1]:{port};\n" if ipv6 else ""
    (base / "nginx/nginx.conf").write_text(NGINX_CONF.format(base=base))
    site = SITE.format(base=base, port=port, listen_v6=listen_v6)
    (base / "nginx/sites-available/default").write_text(site)
    (base / "nginx/sites-enabled/default").symlink_to(base / "nginx/sites-available/default")
    (base / "www/index.html").write_text(INDEX)
    (base / "www/assets/app.js").write_text('console.log("shop");\n')
    (base / "www/empty.txt").write_text("")
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return Nginx(base, port)


@contextmanager
def running(site: Nginx) -> Iterator[Nginx]:
    """nginx in the foreground as our child on the site's port; stopped and reaped after."""
    assert NGINX, "nginx is not installed"
    log = site.base / "run" / "error.log"
    master = subprocess.Popen(
        [NGINX, "-c", str(site.conf), "-e", str(log), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: master.poll() is not None or answers(site.port))
        if master.poll() is not None:
            raise RuntimeError(f"nginx did not start: {log.read_text()}")
        wait_until(site.pid_file.exists)
        yield site
    finally:
        master.send_signal(signal.SIGQUIT)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("throwaway nginx did not settle")
        time.sleep(0.05)
