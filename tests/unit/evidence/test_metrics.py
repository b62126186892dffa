"""The metrics file: node_exporter textfile format, parsed back with prometheus_client."""

from __future__ import annotations

import math
import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from opsfix.evidence import metrics
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
)


def report() -> RunReport:
    var = CheckOutcome("var_growth", "failed", "fills", {"days_left": 3.5, "growth": "+1 GiB/day"})
    flat = CheckOutcome("var_growth", "passed", "not growing", {"growth": "-1 KiB/day"})
    young = CheckOutcome("var_growth", "passed", "collecting samples", {"samples": 1})
    bad = CheckOutcome("http", "failed", "500")
    good = CheckOutcome("http", "passed", "200")
    rems = [RemediationOutcome("nginx_reload", "rolled_back"), RemediationOutcome("r2", "applied")]
    return RunReport(
        "daily",
        "apply",
        [
            HostReport(
                "web1",
                "repaired",
                steps=[StepReport("site", bad, rems, good), StepReport("/var", var)],
            ),
            HostReport("web2", "healthy", steps=[StepReport("/var", flat)]),
            HostReport("web3", "healthy", steps=[StepReport("/var", young)]),
            HostReport("web4", "unreachable", reason="refused"),
        ],
        started=100.0,
        finished=112.5,
    )


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_every_metric_parses_with_its_labels(tmp_path):
    out = tmp_path / "opsfix.prom"
    metrics.write_textfile(out, report())
    got = samples(out)
    book = ("playbook", "daily")
    assert got[("opsfix_check_ok", (("check", "site"), ("host", "web1"), book))] == 1.0
    assert got[("opsfix_check_ok", (("check", "/var"), ("host", "web1"), book))] == 0.0
    key = (("host", "web1"), book, ("remediation", "nginx_reload"), ("result", "rolled_back"))
    assert got[("opsfix_remediation_total", key)] == 1.0
    assert got[("opsfix_run_duration_seconds", (book,))] == 12.5
    assert got[("opsfix_last_run_timestamp_seconds", (book,))] == 112.5
    assert got[("opsfix_var_days_until_full", (("host", "web1"), book))] == 3.5
    assert math.isinf(got[("opsfix_var_days_until_full", (("host", "web2"), book))])
    assert ("opsfix_var_days_until_full", (("host", "web3"), book)) not in got
    assert got[("opsfix_host_ok", (("host", "web4"), book))] == 0.0


def test_counts_from_history_replace_this_runs_counts(tmp_path):
    out = tmp_path / "opsfix.prom"
    metrics.write_textfile(out, report(), totals={("web1", "nginx_reload", "rolled_back"): 7})
    got = samples(out)
    key = (("host", "web1"), ("playbook", "daily"), ("remediation", "nginx_reload"),
           ("result", "rolled_back"))  # fmt: skip
    assert got[("opsfix_remediation_total", key)] == 7.0
    assert not any(name == "opsfix_remediation_created" for name, _ in got)


def test_the_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    out = tmp_path / "opsfix.prom"
    out.write_text("old content that is not metrics\n")
    inode = out.stat().st_ino
    metrics.write_textfile(out, report())
    assert out.stat().st_ino != inode  # renamed over, never rewritten in place
    assert os.listdir(tmp_path) == ["opsfix.prom"]
    assert "old content" not in out.read_text()


def test_a_status_label_tells_failed_from_unreachable(tmp_path):
    out = tmp_path / "opsfix.prom"
    rep = report()
    rep.hosts[1].status = "failed"
    metrics.write_textfile(out, rep)
    got = samples(out)
    book = ("playbook", "daily")

    def status(host: str) -> set[str]:
        return {
            dict(labels)["status"]
            for (name, labels), value in got.items()
            if name == "opsfix_host_status" and dict(labels)["host"] == host and value == 1.0
        }

    assert status("web2") == {"failed"} and status("web4") == {"unreachable"}
    assert got[("opsfix_host_ok", (("host", "web2"), book))] == 0.0
    assert got[("opsfix_host_status", (("host", "web4"), book, ("status", "failed")))] == 0.0
    assert len([k for k in got if k[0] == "opsfix_host_status"]) == 4 * 6


def test_a_dry_run_counts_no_remediation_and_says_what_would_change(tmp_path):
    out = tmp_path / "opsfix.prom"
    rep = report()
    rep.mode = "dry-run"
    rep.hosts[0].steps[0].remediations = [
        RemediationOutcome("nginx_reload", "would_change"),
        RemediationOutcome("r2", "cannot_tell"),
    ]
    metrics.write_textfile(out, rep)
    got = samples(out)
    assert not [k for k in got if k[0] == "opsfix_remediation_total"]
    dry = {dict(k[1])["remediation"] for k, v in got.items() if k[0] == "opsfix_would_change"}
    assert dry == {"nginx_reload", "r2"}
    applied = report()  # an apply writes no would_change series
    metrics.write_textfile(out, applied)
    assert not [k for k in samples(out) if k[0] == "opsfix_would_change"]


def test_history_totals_leave_dry_runs_out(tmp_path):
    from opsfix.evidence import history
    from opsfix.evidence.state import open_store

    store = open_store(tmp_path / "opsfix.db")
    book = tmp_path / "book.yml"
    book.write_text("name: daily\n")
    for mode, status in (("apply", "applied"), ("dry-run", "would_change"), ("dry-run", "applied")):
        rep = report()
        rep.mode = mode  # type: ignore[assignment]
        rep.hosts[0].steps[0].remediations = [RemediationOutcome("nginx_reload", status)]
        rep.started += len(mode) + len(status)  # a run id of its own
        doc = history.bundle_doc(
            rep,
            run_id=history.new_run_id(rep.started),
            playbook_path=book,
            options={},
            exit_code=0,
            secrets=[],
        )
        history.record(store, doc)
    assert store.remediation_totals(str(book.resolve())) == {("web1", "nginx_reload", "applied"): 1}
