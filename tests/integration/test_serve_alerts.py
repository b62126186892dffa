"""`opsfix serve` end to end, with the real alerting stack (tests/integration/alerting.py).

A blackbox exporter probes every lab host's HTTP; Prometheus fires `HttpProbeFailing`
after 5 s of failed probes; Alertmanager sends it to `opsfix serve` (bearer token from a
file). A drill stops nginx on web2; opsfix repairs and verifies it, the alert resolves,
history holds the run with the alert's fingerprint, the silence opsfix made while it
repaired has expired, the notification webhook got the summary, and no run touched the
healthy hosts.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.lab import Lab

from . import alerting
from .helpers import REPO, clean_env, http_body, opsfix, opsfix_command, opsfix_with_env

pytestmark = pytest.mark.integration

EXPECTED = "opsfix practice app"


@pytest.fixture
def stack_tools() -> None:
    missing = alerting.missing_daemons()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup.sh installs them)")


def _rules(tmp: Path, lab: Lab, stack: alerting.Stack | None, hook: str, am: str) -> Path:
    doc = {
        "playbook_dirs": [str(REPO / "playbooks")],
        "inventory": [str(lab.inventory_path)],
        "alertmanager": {"url": am, "silence": True, "silence_for": "2m"},
        "notify": [{"url": hook, "format": "json"}, {"url": hook + "/slack", "format": "slack"}],
        "reports": {"dir": "reports", "url": "https://ops.example/reports/{run_id}.md"},
        "rules": [
            {
                "name": "web-down",
                "match": {"alertname": alerting.ALERT, "labels": {"severity": "page"}},
                "playbook": "nginx_recovery.yml",
                "host_label": "instance",
                "mode": "apply",
                "limits": {"concurrency": 4, "runs_per_host_per_hour": 3, "cooldown": "5m"},
            }
        ],
    }
    path = tmp / "alerts.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _history(state: Path) -> list[dict[str, Any]]:
    """Every recorded run's bundle, as `opsfix show --format json` prints it."""
    env = {**clean_env(state), "OPSFIX_STATE_DIR": str(state)}
    listed = opsfix_with_env("history", "--limit", "0", "--format", "json", env=env)
    return [
        json.loads(opsfix_with_env("show", run["run_id"], "--format", "json", env=env).stdout)
        for run in json.loads(listed.stdout)
    ]


def test_alert_to_repair_end_to_end(clean_lab: Lab, stack_tools: None, tmp_path: Path) -> None:
    lab = clean_lab
    state, token = tmp_path / "state", secrets.token_urlsafe(24)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    port = alerting.free_port()
    targets = {host: f"http://{address}/" for host, address in lab.hosts.items()}
    receiver = alerting.Receiver()
    with alerting.running_stack(tmp_path / "stack", targets, port, token_file) as stack:
        rules = _rules(tmp_path, lab, stack, receiver.url, stack.alertmanager)
        env = {**clean_env(tmp_path), "OPSFIX_STATE_DIR": str(state)}
        argv = [
            opsfix_command(),
            "serve",
            "--rules",
            str(rules),
            "--listen",
            f"127.0.0.1:{port}",
            "--token-file",
            str(token_file),
        ]
        log = tmp_path / "serve.log"
        try:
            with alerting.opsfix_serve(argv, env, port, token, log):
                broke = opsfix(
                    "drill", "break", "nginx_stopped", "--limit", "web2", "-i", lab.inventory_path
                )
                assert broke.returncode == 0, broke
                firing = alerting.wait_for(
                    "the alert on web2", lambda: stack.alerts("web2"), 60, every=0.1
                )
                fingerprint = firing[0]["fingerprint"]
                alerting.wait_for(
                    "the notification",
                    lambda: [b for b in receiver.bodies if isinstance(b, dict) and "outcome" in b],
                    90,
                )
                alerting.wait_for("the alert to resolve", lambda: not stack.alerts("web2"), 60)
                metrics = _metrics(port)
        finally:
            receiver.stop()
            opsfix("drill", "reset", "--limit", "web2", "-i", lab.inventory_path)
        silences = stack.silences()
    serve_log = log.read_text()
    assert EXPECTED in http_body(lab, "web2"), serve_log

    runs = _history(state)
    assert len(runs) == 1, (runs, serve_log)  # no run for the healthy hosts
    run = runs[0]
    assert [h["host"] for h in run["report"]["hosts"]] == ["web2"]
    assert run["report"]["hosts"][0]["status"] == "repaired"
    assert all(v["outcome"] == "passed" for v in run["report"]["hosts"][0]["verify"])
    alert = run["options"]["alerts"][0]
    assert alert["fingerprint"] == fingerprint
    assert alert["labels"]["instance"] == targets["web2"]
    assert alert["time_to_repair"] > 0
    assert run["options"]["command"] == "serve"

    ours = [s for s in silences if s["createdBy"] == "opsfix serve"]
    assert len(ours) == 1, silences
    assert ours[0]["status"]["state"] == "expired"
    matchers = {m["name"]: m["value"] for m in ours[0]["matchers"]}
    assert matchers["instance"] == targets["web2"]

    summaries = [b for b in receiver.bodies if isinstance(b, dict) and "outcome" in b]
    assert len(summaries) == 1
    assert summaries[0]["host"] == "web2" and summaries[0]["outcome"] == "repaired"
    assert summaries[0]["fingerprint"] == fingerprint
    assert any("service_start applied" in line for line in summaries[0]["done"])
    assert summaries[0]["report"] == f"https://ops.example/reports/{run['run_id']}.md"
    assert summaries[0]["report_command"] == f"opsfix report {run['run_id']}"
    written = (tmp_path / "reports" / f"{run['run_id']}.md").read_text()
    assert "web2" in written and "HttpProbeFailing" in written
    slack = [b for b in receiver.bodies if isinstance(b, dict) and set(b) == {"text"}]
    assert len(slack) == 1 and "web2: repaired" in slack[0]["text"]
    assert 'opsfix_serve_runs_total{outcome="repaired",rule="web-down"} 1.0' in metrics
    assert 'opsfix_serve_time_to_repair_seconds_count{rule="web-down"} 1.0' in metrics
    assert 'opsfix_serve_alerts_received_total{action="queued",status="firing"} 1.0' in metrics


def _metrics(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
