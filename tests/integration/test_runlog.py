"""-vvv, the log file and --format jsonl on a real repair of a lab host, verify included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import PLAYBOOK, clean_env, opsfix_with_env

pytestmark = pytest.mark.integration


def test_a_repair_as_jsonl_events_with_ssh_detail_in_the_log(
    clean_lab: Lab, tmp_path: Path
) -> None:
    clean_lab.exec("web1", "rm /var/www/html/index.html")
    log = tmp_path / "run.log"
    env = {**clean_env(str(tmp_path)), "OPSFIX_STATE_DIR": str(tmp_path), "OPSFIX_LOG": str(log)}
    run = opsfix_with_env(
        "apply", PLAYBOOK, "-i", str(clean_lab.inventory_path), "-l", "web1:web2",
        "--format", "jsonl", "-vv", env=env,
    )  # fmt: skip
    assert run.returncode == 0, run
    events = [json.loads(line) for line in run.stdout.splitlines()]
    web1 = [e["event"] for e in events if e.get("host") == "web1"]
    assert web1[0] == "host_started" and web1[-2:] == ["host_done", "verify"], run.stdout
    assert "remediation" in web1 and web1.count("step") == 6  # the playbook has 6 steps
    [verify] = [e for e in events if e["event"] == "verify" and e["host"] == "web1"]
    assert verify["status"] == "repaired" and verify["tests"]
    assert all(t["outcome"] == "passed" and t["duration"] > 0 for t in verify["tests"])
    assert events[-1]["event"] == "run" and events[-1]["summary"]["repaired"] == 1
    # -vv on the terminal: hosts, steps and commands, not SSH detail
    assert "web1 | command:" in run.stderr and "web1 | ssh:" not in run.stderr
    text = log.read_text()  # the log file: everything, SSH included, with timestamps
    assert "web1 | ssh: connecting to root@" in text and "web1 | ssh: connected (new)" in text
    assert "web1 | restore_content" in text or "web1 | web root is complete: " in text
