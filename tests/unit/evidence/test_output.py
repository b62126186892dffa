import json

from opsfix.evidence.output import redact, to_json, to_text
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
)


def report() -> RunReport:
    before = CheckOutcome("http", "failed", "got 500", {"body": "token=hunter22 leaked"})
    after = CheckOutcome("http", "passed", "200")
    step = StepReport(
        "site", before, [RemediationOutcome("nginx_reload", "applied", "reloaded")], after
    )
    return RunReport(
        "book",
        "apply",
        [
            HostReport("web1", "repaired", steps=[step], duration=1.0),
            HostReport("web2", "unreachable", reason="connection refused"),
            HostReport("web3", "healthy"),
        ],
        started=0.0,
        finished=2.0,
    )


def test_text_lists_worst_first_with_evidence_and_summary():
    text = to_text(report())
    lines = text.splitlines()
    order = [ln.split()[0] for ln in lines if ln.startswith("web")]
    assert order == ["web2", "web1", "web3"]
    assert "[FAILED -> ok] site: 200" in text
    assert "-> nginx_reload: applied: reloaded" in text
    assert "web2  UNREACHABLE  (0.0s)  connection refused" in text
    assert lines[-1].startswith("SUMMARY  failed=0  unreachable=1  repaired=1  healthy=1")


def test_json_is_complete_and_parses():
    data = json.loads(to_json(report()))
    assert data["summary"] == {"failed": 0, "unreachable": 1, "repaired": 1, "healthy": 1}
    step = data["hosts"][0]["steps"][0]
    assert step["before"]["evidence"]["body"] == "token=hunter22 leaked"
    assert step["remediations"][0]["status"] == "applied"


def test_redact_masks_every_occurrence_longest_first():
    text = to_text(report(), verbose=1) + to_json(report())
    masked = redact(text, ["hunter22", "hunter2", "", "ab"])
    assert "hunter2" not in masked
    assert masked.count("********") == text.count("hunter22")
