"""Re-capture the canned gather output of the disk cleanups on a practice-lab host (no
systemd, no journald, a 16 MiB tmpfs on /var/log, apt-get and a full apt cache).

    opsfix lab up --hosts 1
    .venv/bin/python tests/unit/remediations/capture_disk.py [LAB_STATE_DIR] [HOST]

The host's /var/log is filled, aged and emptied again; a `sleep` holds one log open.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from opsfix.lab import Lab
from opsfix.plugin import RemediationContext
from opsfix.registry import load_registry
from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult

HERE = Path(__file__).parent / "data"
CONTEXT = RemediationContext("capture", {}, HERE, lambda name, variables: "")
LOGS = (
    "cd /var/log/nginx\n"
    "head -c 3000000 /dev/urandom > access.log.2.gz\n"
    "head -c 2000000 /dev/urandom > access.log.3.gz\n"
    "head -c 1000000 /dev/urandom > error.log.4.gz\n"
    "echo recent > access.log.1\n"
    "head -c 8000000 /dev/zero > /var/log/big.log\n"
    "ln -s /etc/passwd /var/log/passwd.1\n"
    "ln -s /etc /var/log/elsewhere\n"
    "touch -d '10 days ago' access.log.2.gz access.log.3.gz error.log.4.gz /var/log/big.log\n"
    "touch -d '2 days ago' access.log.1\n"
    "setsid sh -c 'exec 3</var/log/nginx/access.log.3.gz; exec sleep 600' "
    ">/dev/null 2>&1 </dev/null &\nsleep 0.3\n"
)


def save(lab: Lab, host: str, name: str, case: str, params: dict[str, Any]) -> None:
    cls = load_registry().remediations[name]
    remediation = cls(cls.Params.model_validate(params), CONTEXT)
    commands = remediation.gather()
    done = lab.exec(host, batch(commands), check=False)
    results = unbatch(commands, CommandResult("batch", done.returncode, done.stdout, done.stderr))
    record = {"params": params, "results": [r.__dict__ for r in results]}
    (HERE / f"{name}_{case}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{name}_{case}: {[r.exit_status for r in results]}")


def main() -> None:
    lab = Lab.load(sys.argv[1] if len(sys.argv) > 1 else None)
    host = sys.argv[2] if len(sys.argv) > 2 else next(iter(lab.hosts))
    lab.exec(host, LOGS)
    try:
        save(lab, host, "clean_logs", "filled", {})
        save(lab, host, "clean_logs", "outside", {"folders": ["/var/log/elsewhere"]})
        save(lab, host, "clean_logs", "missing", {"folders": ["/var/log/none"]})
    finally:
        lab.exec(
            host,
            "pkill -x sleep; find /var/log -mindepth 1 ! -path '/var/log/nginx*' -delete;"
            " find /var/log/nginx -mindepth 1 ! -name '*.log' -delete",
        )
    save(lab, host, "clean_logs", "clean", {})
    save(lab, host, "logrotate", "lab", {})
    save(lab, host, "journal_vacuum", "lab", {})
    save(lab, host, "package_cache_clean", "lab", {})


if __name__ == "__main__":
    main()
