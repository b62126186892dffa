"""Evidence from real runs on lab hosts, through the real CLI.

A check finds web2 broken, an apply repairs it; together they must leave: both runs in
history (`opsfix history`, `opsfix show`), JSON that the published schema accepts,
JUnit XML that parses with the right counts, a Markdown report with the before and after
evidence and a bundle hash anyone can recompute, a metrics file prometheus_client parses,
and a capacity report from the /var samples. A secret variable (its value in the URL a
check requests, so it does reach the evidence) and the inventory's sudo password appear
in none of it: not in any file, any stdout or stderr, nor in the state database's bytes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from opsfix.lab import Lab

from .helpers import (
    PLAYBOOK,
    REPO,
    Run,
    break_host,
    inventory_copy,
    opsfix_with_state,
    reset_hosts,
)

pytestmark = pytest.mark.integration

SECRET = f"Tok3n-{secrets.token_hex(8)}"
BECOME = f"Bec0me-{secrets.token_hex(8)}"
HOSTS = "web1:web2"
SCHEMA = json.loads((REPO / "docs" / "schema" / "run.schema.json").read_text())


run = opsfix_with_state


def playbook(folder: Path) -> Path:
    """nginx_recovery with a secret in a checked URL, and a /var growth step."""
    book = yaml.safe_load(PLAYBOOK.read_text())
    book["name"] = "evidence"
    book["secret_vars"] = ["api_token"]
    book["vars"]["release_dir"] = str(REPO / "templates" / "webapp")
    book["verify"] = [str(REPO / "tests" / "host" / "test_nginx.py")]
    book["checks"] = [c for c in book["checks"] if c["check"] != "http"]
    book["checks"].append(
        {
            "name": "site answers with the token",
            "check": "http",
            "with": {"url": "http://127.0.0.1/?token={{ api_token }}", "contains": "opsfix"},
        }
    )
    book["checks"].append(
        # samples seconds apart: the run's own backups and snapshots read as GiB a day, so
        # only a forecast of hours fails (this test is about evidence, not the forecast)
        {
            "name": "/var growth",
            "check": "var_growth",
            "with": {"min_span_hours": 0, "forecast_days": 0.1},
        }
    )
    path = folder / "evidence.yml"
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    return path


@pytest.fixture
def world(clean_lab: Lab, tmp_path: Path) -> dict[str, Any]:
    reset_hosts(clean_lab, ["web1", "web2"])
    break_host(clean_lab, "web2", ["nginx_stopped", "conf_d_syntax"])
    (tmp_path / "secret.yml").write_text(f"api_token: {SECRET}\n")
    return {
        "book": playbook(tmp_path),
        "inventory": inventory_copy(
            clean_lab, tmp_path / "inventory.yml", ansible_become_password=BECOME
        ),
        "vars": f"@{tmp_path / 'secret.yml'}",
        "state": tmp_path / "state",
        "out": _folder(tmp_path / "out"),  # what opsfix writes; the inputs stay outside
    }


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def test_a_real_run_leaves_history_reports_and_metrics_and_no_secret(world):
    book, out, state = world["book"], world["out"], world["state"]
    common = [book, "-i", world["inventory"], "--limit", HOSTS, "-e", world["vars"]]
    runs: list[Run] = []

    checked = run("check", *common, "--junit", out / "check.xml", state=state)
    runs.append(checked)
    assert checked.returncode == 2, checked
    applied = run(
        "apply", *common, "--format", "json", "--junit", out / "apply.xml",
        "--metrics-file", out / "opsfix.prom", state=state,
    )  # fmt: skip
    runs.append(applied)
    assert applied.returncode == 0, applied
    assert applied.host("web2")["status"] == "repaired"

    # --format json: valid against the published schema, with the run's id
    jsonschema.Draft202012Validator(SCHEMA).validate(applied.report)
    run_id = applied.report["run_id"]
    assert "********" in applied.stdout  # the secret did reach the evidence, masked

    # history lists both runs; show gives the apply in full
    listed = run("history", "--playbook", book, state=state)
    runs.append(listed)
    lines = listed.stdout.splitlines()
    assert len(lines) == 3 and lines[1].startswith(run_id), listed
    assert "apply" in lines[1] and "check" in lines[2]
    shown = run("show", run_id, state=state)
    runs.append(shown)
    assert "web2  REPAIRED" in shown.stdout and "nginx_restore_config: applied" in shown.stdout

    # JUnit: the check saw web2 fail, the apply saw every check pass and verify run
    check_xml = ET.parse(out / "check.xml").getroot()
    apply_xml = ET.parse(out / "apply.xml").getroot()
    steps = len(yaml.safe_load(book.read_text())["checks"])
    assert int(check_xml.get("tests", 0)) == 2 * steps
    assert int(check_xml.get("failures", 0)) >= 2  # config, nginx running (at least)
    web2 = check_xml.find("testsuite[@name='web2']/testcase[@name='nginx config is valid']")
    assert web2 is not None and web2.find("failure") is not None
    assert int(apply_xml.get("failures", 1)) == 0 and int(apply_xml.get("errors", 1)) == 0
    assert any(c.get("name", "").startswith("verify: ") for c in apply_xml.iter("testcase"))

    # the operation log: before and after evidence, and a hash anyone can recompute
    report_md = out / "report.md"
    runs.append(run("report", run_id, "-o", report_md, state=state))
    text = report_md.read_text()
    assert "Before (broken):" in text and "After (recovered):" in text
    assert "typo.conf" in text  # the broken file, from the check's evidence before
    assert "nginx -t: configuration ok" in text  # the evidence after
    runs.append(run("report", run_id, "--format", "html", "-o", out / "report.html", state=state))
    runs.append(run("report", run_id, "--format", "bundle", "-o", out / "bundle.json", state=state))
    digest = hashlib.sha256((out / "bundle.json").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in text
    verified = run("report", run_id, "--verify-hash", digest, state=state)
    runs.append(verified)
    assert verified.returncode == 0 and "OK:" in verified.stdout

    # metrics: parsed back by prometheus_client
    families = {
        f.name: f for f in text_string_to_metric_families((out / "opsfix.prom").read_text())
    }
    ok = {
        (s.labels["host"], s.labels["check"]): s.value for s in families["opsfix_check_ok"].samples
    }
    assert ok[("web2", "nginx config is valid")] == 1.0
    counts = {
        (s.labels["host"], s.labels["remediation"], s.labels["result"]): s.value
        for s in families["opsfix_remediation"].samples
    }
    assert counts[("web2", "nginx_restore_config", "applied")] == 1.0
    assert {s.labels["host"] for s in families["opsfix_var_days_until_full"].samples} == {
        "web1",
        "web2",
    }
    assert families["opsfix_run_duration_seconds"].samples[0].value > 0

    # capacity: the /var samples both runs took
    capacity = run("report", "capacity", "-o", out / "capacity.png", state=state)
    runs.append(capacity)
    rows = [ln.split() for ln in capacity.stdout.splitlines()[1:]]
    rows = [r[1:] if r[0] == "!" else r for r in rows]  # "!": fills within --warn-days
    hosts = [r[0] for r in rows if not r[0].isdigit()]  # not the marks' legend line
    assert hosts in (["web1", "web2"], ["web2", "web1"]), capacity
    assert (out / "capacity.png").read_bytes()[:4] == b"\x89PNG"

    # no secret anywhere: outputs, every file written, the state database's bytes
    for done in runs:
        for value in (SECRET, BECOME):
            assert value not in done.stdout + done.stderr, done
    files = [p for p in [*out.rglob("*"), *state.rglob("*")] if p.is_file()]
    assert {"opsfix.db", "report.md", "report.html", "opsfix.prom"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for value in (SECRET, BECOME):
            assert value.encode() not in data, f"{value} found in {path}"
