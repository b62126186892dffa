"""Record the canned outputs of the host-health checks (disk_usage, var_growth, memory, load,
listening_ports, log_errors) on a practice-lab host: a minimal Debian without systemd,
with a 16 MiB tmpfs on /var/log. Needs root and a running lab:

    opsfix lab up --hosts 1
    .venv/bin/python tests/unit/checks/capture_health.py [LAB_STATE_DIR] [HOST]

Every case puts the host back as it found it (files removed, helper processes killed).
Each data/<check>/<case>.json holds the params used and one result per command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from opsfix.checks import disk_usage, listening_ports, load, log_errors, memory, var_growth
from opsfix.lab import Lab
from opsfix.plugin import Check
from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult

DATA = Path(__file__).parent / "data"
LOG = "/var/log/nginx"


def save(lab: Lab, host: str, module: Any, case: str, params: dict[str, Any]) -> None:
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Check) and v.__module__ == module.__name__
    )
    check: Check[Any] = cls(cls.Params.model_validate(params))
    commands = check.commands()
    done = lab.exec(host, batch(commands), check=False)
    results = unbatch(commands, CommandResult("batch", done.returncode, done.stdout, done.stderr))
    record = {"params": params, "run": "lab host", "results": [r.__dict__ for r in results]}
    path = DATA / check.name / f"{case}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"{check.name}/{case}: {[r.exit_status for r in results]}")


def access_lines(minutes_ago: int, statuses: list[int]) -> str:
    """Lines in nginx's combined format, stamped `minutes_ago` by the host's clock."""
    stamp = f"$(LC_ALL=C date -d '-{minutes_ago} min' '+%d/%b/%Y:%H:%M:%S %z')"
    return "".join(
        f'echo "10.0.0.9 - - [{stamp}] \\"GET /p{i} HTTP/1.1\\" {s} 12 \\"-\\" \\"curl/7.88\\""'
        f" >> {LOG}/access.log\n"
        for i, s in enumerate(statuses)
    )


def error_lines(minutes_ago: int, level: str, count: int) -> str:
    stamp = f"$(date -d '-{minutes_ago} min' '+%Y/%m/%d %H:%M:%S')"
    return "".join(
        f'echo "{stamp} [{level}] 31#31: *{i} open() \\"/var/www/html/x{i}\\" failed" '
        f">> {LOG}/error.log\n"
        for i in range(count)
    )


def main() -> None:
    lab = Lab.load(sys.argv[1] if len(sys.argv) > 1 else None)
    host = sys.argv[2] if len(sys.argv) > 2 else next(iter(lab.hosts))
    run = lab.exec

    save(lab, host, disk_usage, "lab", {})
    save(lab, host, disk_usage, "named", {"mounts": ["/var/log", "/var"]})
    save(lab, host, disk_usage, "missing_mount", {"mounts": ["/var/log", "/no/such/mount"]})
    run(host, "head -c 15700000 /dev/zero > /var/log/fill.bin")
    try:
        save(lab, host, disk_usage, "log_full", {})
    finally:
        run(host, "rm -f /var/log/fill.bin")
    run(host, "mkdir -p /var/log/many && cd /var/log/many && seq 1 2000 | xargs touch")
    try:
        save(lab, host, disk_usage, "log_inodes", {"mounts": ["/var/log"]})
    finally:
        run(host, "rm -rf /var/log/many")

    save(lab, host, memory, "lab", {})
    save(lab, host, load, "lab", {})

    save(lab, host, listening_ports, "lab", {})
    save(lab, host, listening_ports, "lab_udp", {"protocols": ["tcp", "udp"]})
    servers = (
        "setsid python3 -m http.server -b 0.0.0.0 8080 >/dev/null 2>&1 < /dev/null &\n"
        "setsid python3 -m http.server -b 127.0.0.1 8081 >/dev/null 2>&1 < /dev/null &\n"
        "sleep 1"
    )
    run(host, servers)
    try:
        save(lab, host, listening_ports, "stray", {})
    finally:
        run(host, "pkill -f 'http[.]server -b'; true")

    save(lab, host, log_errors, "quiet", {})
    traffic = (
        access_lines(200, [500] * 30)  # outside the window
        + access_lines(30, [200] * 36 + [502] * 3 + [404])
        + access_lines(0, [200, 503])
        + error_lines(300, "error", 20)
        + error_lines(20, "warn", 4)
        + error_lines(10, "error", 3)
        + error_lines(1, "crit", 1)
    )
    run(host, traffic)
    try:
        save(lab, host, log_errors, "busy", {})
        save(lab, host, log_errors, "busy_10min", {"minutes": 10})
    finally:
        run(host, f": > {LOG}/access.log; : > {LOG}/error.log")
    save(lab, host, log_errors, "missing_log", {"access_log": "/var/log/nginx/none.log"})

    save(lab, host, var_growth, "lab", {})
    save(lab, host, var_growth, "lab_depth1", {"depth": 1})
    save(lab, host, var_growth, "missing_path", {"path": "/var/no-such-folder"})
    save(lab, host, var_growth, "du_timeout", {"timeout": 0.001})


if __name__ == "__main__":
    main()
