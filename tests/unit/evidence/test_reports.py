"""Operation logs of recorded runs: the template's fields, broken vs recovered, escaping,
and the commands that read history (history, show, report, --verify-hash)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.evidence import history
from opsfix.evidence.reports import html, markdown, oplog
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
    VerifyOutcome,
)
from opsfix.evidence.state import open_store

HOSTILE = "<script>alert(1)</script> ``` [x](http://evil) | *b*"


def report(mode: str = "apply") -> RunReport:
    broken = CheckOutcome(
        "nginx_config", "failed", "nginx -t: unexpected }", {"file": "/etc/nginx/conf.d/t.conf"}
    )
    fixed = CheckOutcome("nginx_config", "passed", "nginx -t: configuration ok")
    restore = RemediationOutcome(
        "nginx_restore_config",
        "applied",
        "restored from known-good",
        diff="--- a\n+++ b\n-bad\n+good\n",
        validate_output="nginx: configuration file test is successful",
        commands=["nginx -t", "nginx -s reload"],
        backup_path="/var/backups/opsfix/tx1",
    )
    hostile = CheckOutcome("http", "failed", HOSTILE, {"body": HOSTILE})
    return RunReport(
        "nginx_recovery",
        mode,  # type: ignore[arg-type]
        [
            HostReport(
                "web2",
                "repaired",
                steps=[StepReport("config valid", broken, [restore], fixed)],
                verify=[VerifyOutcome("test_nginx.py::test_serves", "passed")],
                duration=0.6,
            ),
            HostReport(
                "web3",
                "failed",
                reason="still failing: site",
                steps=[
                    StepReport(
                        "site",
                        hostile,
                        [RemediationOutcome("nginx_reload", "rolled_back", "re-check failed")],
                        hostile,
                    )
                ],
            ),
            HostReport("web1", "healthy", steps=[StepReport("config valid", fixed, [], fixed)]),
            HostReport("web4", "unreachable", reason="connection refused"),
        ],
        started=1_700_000_000.0,
        finished=1_700_000_007.5,
    )


def doc_of(rep: RunReport, **options: object) -> dict:
    return history.bundle_doc(
        rep,
        run_id="20231114T221320Z-abc123",
        playbook_path=Path("/srv/playbooks/nginx_recovery.yml"),
        options={"limit": None, **options},
        exit_code=2,
        secrets=[],
        user="alice@ctl",
    )


def test_the_log_has_the_templates_fields_from_the_runs_evidence():
    log = oplog.build(doc_of(report(), reason="INC-42 web outage"), "f" * 64)
    assert log.date_time == "2023-11-14 22:13:20 UTC to 22:13:27 UTC"
    assert "opsfix apply /srv/playbooks/nginx_recovery.yml" in log.operation
    assert "4 host(s)" in log.operation and "alice@ctl" in log.operation
    assert log.reason.startswith("INC-42 web outage (Checks found problems on 2 host(s)")
    assert log.impact[:2] == [
        "Before: 3 of 4 host(s) unhealthy or unknown.",
        "After: 2 of 4 host(s) unhealthy or unknown.",
    ]
    assert any(
        line.startswith("web2: broken (1 of 1 check(s) failing) -> repaired") for line in log.impact
    )
    assert log.duration == "7.5 s"
    assert any("nginx_reload rolled back: re-check failed" in i for i in log.issues)
    assert any("web4: unreachable: connection refused" in i for i in log.issues)
    assert any(f.startswith("Still failing: web3") for f in log.follow_up)
    assert any(f.startswith("Repaired: web2") for f in log.follow_up)
    assert [h.host for h in log.hosts] == ["web2", "web3", "web4"]
    assert log.quiet_hosts == ["web1"]


def test_a_check_run_suggests_the_repair_command():
    log = oplog.build(doc_of(report("check")), "0" * 64)
    assert log.reason.startswith("Checks found problems")
    assert any("opsfix apply /srv/playbooks/nginx_recovery.yml --limit web2:web3" in f
               for f in log.follow_up)  # fmt: skip


def test_markdown_shows_broken_and_recovered_evidence_and_the_hash():
    text = markdown.render(oplog.build(doc_of(report()), "ab" * 32))
    for field in ("Date/Time", "Operation", "Reason", "Impact", "Duration", "Issues", "Follow-up"):
        assert f"| **{field}** |" in text
    assert "sha256 `" + "ab" * 32 + "`" in text
    assert "Before (broken):" in text and "After (recovered):" in text
    assert "failed: nginx -t: unexpected }" in text and "file: /etc/nginx/conf.d/t.conf" in text
    assert "passed: nginx -t: configuration ok" in text
    assert "+good" in text and "nginx -s reload" in text and "/var/backups/opsfix/tx1" in text
    assert "--verify-hash " + "ab" * 32 in text


def test_markdown_escapes_what_hosts_printed():
    text = markdown.render(oplog.build(doc_of(report()), "0" * 64))
    cells = [ln for ln in text.splitlines() if ln.startswith("|") and "script" in ln]
    assert cells and all("\\<script>" in ln and "\\[x\\](http" in ln for ln in cells)
    assert not any(re.search(r"(?<!\\)<script>|(?<!\\)\]\(http", ln) for ln in cells)
    assert "````text" in text  # a longer fence, since the evidence holds ```


def test_markdown_fences_always_close():
    lines = markdown.block("a\n```\nb", "text")
    assert lines[0] == "````text" and lines[-1] == "````"


def test_html_is_self_contained_and_escaped():
    page = html.render(oplog.build(doc_of(report()), "0" * 64))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "http://evil" in page and 'href="http://evil' not in page
    assert "src=" not in page and "<link" not in page
    assert "Before (broken)" in page and "After (recovered)" in page
    assert "<code>opsfix apply /srv/playbooks/nginx_recovery.yml</code>" in page


@pytest.fixture
def recorded(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "state"))
    store = open_store()
    run = history.record(store, doc_of(report()))
    store.close()
    return run.id


def test_history_show_and_report_read_the_recorded_run(recorded, capsys, tmp_path):
    assert main(["history"]) == 0
    out = capsys.readouterr().out
    assert recorded in out and "nginx_recovery" in out and "alice@ctl" in out
    assert main(["history", "--host", "nobody"]) == 0
    assert recorded not in capsys.readouterr().out
    assert main(["show", recorded[:12]]) == 0
    shown = capsys.readouterr().out
    assert f"run       {recorded}" in shown and "web2  REPAIRED" in shown
    assert "-> nginx_restore_config: applied: restored from known-good" in shown
    assert main(["report", "last", "-o", str(tmp_path / "r.md")]) == 0
    assert "Broken vs recovered" in (tmp_path / "r.md").read_text()
    assert main(["report", "last", "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_the_bundle_is_the_file_whose_sha256_the_report_quotes(recorded, capsys, tmp_path):
    bundle = tmp_path / "bundle.json"
    assert main(["report", recorded, "--format", "bundle", "-o", str(bundle)]) == 0
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert json.loads(bundle.read_text())["run_id"] == recorded
    assert main(["report", recorded]) == 0
    assert f"sha256 `{digest}`" in capsys.readouterr().out
    assert main(["report", recorded, "--verify-hash", digest.upper()]) == 0
    assert "OK:" in capsys.readouterr().out
    assert main(["report", recorded, "--verify-hash", "0" * 64]) == 2
    assert "MISMATCH" in capsys.readouterr().out


def test_unknown_runs_and_an_empty_history_are_said_plainly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "none"))
    assert main(["history"]) == 0
    assert "No runs recorded." in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # reading history creates nothing
    assert main(["show", "last"]) == 5
    assert "no runs recorded yet" in capsys.readouterr().err


def test_the_suggested_commands_reach_the_inventory_the_run_used():
    doc = doc_of(report("check"))
    doc["options"] = {"inventory": ["/srv/inv/prod.yml", "/srv/inv/extra"], "limit": "web*"}
    log = oplog.build(doc, "0" * 64)
    book = "/srv/playbooks/nginx_recovery.yml"
    expected = f"opsfix apply {book} -i /srv/inv/prod.yml -i /srv/inv/extra --limit web2:web3"
    assert any(f"`{expected}`" in f for f in log.follow_up), log.follow_up
    assert log.operation.startswith(
        f"`opsfix check {book} -i /srv/inv/prod.yml -i /srv/inv/extra --limit 'web*'`"
    )


def test_the_inventory_is_recorded_absolute_even_when_found_not_given(tmp_path, monkeypatch):
    from opsfix.cli import _build_parser
    from opsfix.commands.run import _recorded_options

    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text("all: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPSFIX_INVENTORY", raising=False)
    args = _build_parser(["check", "pb.yml"]).parse_args(["check", "pb.yml"])
    assert _recorded_options(args)["inventory"] == [str(tmp_path / "inventory" / "hosts.yml")]
    args = _build_parser(["check"]).parse_args(["check", "pb.yml", "-i", "inventory"])
    assert _recorded_options(args)["inventory"] == [str(tmp_path / "inventory")]
