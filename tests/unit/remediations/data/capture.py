"""Re-capture the canned gather output the remediation tests read.

Run as root from the repository: `.venv/bin/python tests/unit/remediations/data/capture.py`.
Each gather command runs in dash against a tree built here, as it would on a host, and its
exit status, stdout and stderr land in <name>.json. States that need systemd cannot be
captured on a machine without it; those files are written by hand and say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from opsfix.plugin import RemediationContext
from opsfix.remediations import _nginx, _service
from opsfix.remediations.restore_content import RestoreContent, RestoreContentParams
from opsfix.shell import quote

HERE = Path(__file__).parent
CONTEXT = RemediationContext("capture", {}, HERE, lambda name, variables: "")
NO_SYSTEMD = "written by capture.py: the machine it ran on has no systemd"
NGINX_CONF = (
    "events {}\nhttp {\n\tinclude /etc/nginx/conf.d/*.conf;\n"
    "\tinclude /etc/nginx/sites-enabled/*;\n}\n"
)


def run(name: str, command: str) -> None:
    done = subprocess.run(["dash", "-c", command], capture_output=True, text=True)
    record = {"exit_status": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    (HERE / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{name}: exit {done.returncode}, {len(done.stdout)} chars")


def write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def link(root: Path, rel: str, target: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).symlink_to(target)


def healthy(root: Path) -> None:
    """A small Debian-like /etc/nginx (links point at /etc/nginx, as on a host)."""
    write(root, "nginx.conf", NGINX_CONF)
    write(root, "mime.types", "types {\n\ttext/html html;\n}\n")
    write(root, "sites-available/default", "server {\n\tlisten 80 default_server;\n}\n")
    write(root, "snippets/ssl.conf", "# nothing yet\n", 0o600)
    (root / "conf.d").mkdir()
    link(root, "sites-enabled/default", "/etc/nginx/sites-available/default")


def capture_nginx_trees(tmp: Path) -> None:
    good = tmp / "good"
    healthy(good)
    run("live_healthy", _nginx.manifest_command(str(good)))
    run("known_good", _nginx.snapshot_command(str(good)))
    run("known_good_missing", _nginx.snapshot_command(str(tmp / "none")))
    run("live_missing", _nginx.manifest_command(str(tmp / "none")))

    broken = tmp / "broken"
    healthy(broken)
    write(broken, "nginx.conf", NGINX_CONF.replace("events {}", "events {"))
    write(broken, "conf.d/broken.conf", "proxy_pass;\n")
    (broken / "sites-available/default").unlink()
    link(broken, "sites-enabled/old", "/etc/nginx/sites-available/old")
    run("live_broken", _nginx.manifest_command(str(broken)))

    drifted = tmp / "drifted"
    healthy(drifted)
    write(drifted, "sites-available/default", "server { listen 8080; }\n")
    (drifted / "sites-enabled/default").unlink()
    write(drifted, "sites-enabled/stale", "server { listen 81; }\n")
    write(drifted, "conf.d/extra.conf", "gzip off;\n")
    write(drifted, "conf.d/README", "not loaded: only *.conf is\n")
    run("live_drifted", _nginx.manifest_command(str(drifted)))

    big = tmp / "big"
    healthy(big)
    write(big, "big.bin", "x" * (3 * 1024 * 1024))
    run("known_good_too_big", _nginx.snapshot_command(str(big)))


def in_namespace_host(tmp: Path, command: str, *, start_nginx: bool, then: str = "") -> str:
    """`command` run on a throwaway host like the lab's: own pid, mount and network
    namespaces, a tmpfs on /run, a test nginx tree over /etc/nginx, no systemd."""
    etc = tmp / "etc-nginx"
    etc.mkdir(exist_ok=True)
    (etc / "nginx.conf").write_text(
        f"pid /run/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
        "http { access_log off; server { listen 127.0.0.1:8080; } }\n"
    )
    setup = f"mount -t tmpfs tmpfs /run && mount --bind {etc} /etc/nginx && ip link set lo up"
    start = f" && nginx && sleep 0.2{then}" if start_nginx else ""
    inner = f"{setup}{start} && exec dash -c {quote(command)}"
    return f"unshare -m -n -p -f --mount-proc dash -c {quote(inner)}"


def capture_states(tmp: Path) -> None:
    state = _nginx.state_command("nginx", "nginx")
    run("nginx_stopped", in_namespace_host(tmp, state, start_nginx=False))
    run("nginx_running", in_namespace_host(tmp, state, start_nginx=True))
    kill_master = ' && kill -9 "$(cat /run/nginx.pid)" && sleep 0.2'
    run("nginx_stray", in_namespace_host(tmp, state, start_nginx=True, then=kill_master))
    missing = _nginx.state_command("/opt/none/nginx", "nginx")
    run("nginx_missing", in_namespace_host(tmp, missing, start_nginx=False))
    none = "opsfix-none"
    run("unknown_stopped", _service.state_command(none, none, command=none))
    for name, running in (("nginx_systemd_active", "systemd"), ("nginx_systemd_stopped", "no")):
        stdout = f"systemd=yes running={running} initd=yes path=yes\n"
        record = {"exit_status": 0, "stdout": stdout, "stderr": "", "handwritten": NO_SYSTEMD}
        (HERE / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")


def capture_webroot(tmp: Path) -> None:
    dest = tmp / "html"
    shutil.copytree(HERE / "release", dest)
    (dest / "app.js").write_text('console.log("release 1");\n')
    (dest / "extra.txt").write_text("left over\n")
    run("webroot_drifted", content_gather(str(dest)))
    run("webroot_missing", content_gather(str(tmp / "none")))


def content_gather(dest: str) -> str:
    params = RestoreContentParams(source=HERE / "release", dest=dest)
    return RestoreContent(params, CONTEXT).gather()[0]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        capture_nginx_trees(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        capture_states(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        capture_webroot(Path(tmp))
