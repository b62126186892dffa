"""The fleet table that starts `opsfix check` text output."""

from __future__ import annotations

from opsfix.evidence.output import to_text
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
)

LABELS = ["nginx", "disk", "/var", "memory"]


def host(name: str, status: str, *cells: str, reason: str = "") -> HostReport:
    verdicts = {
        "ok": CheckOutcome("c", "passed", "fine"),
        "warn": CheckOutcome("c", "passed", "warning: 85%", {"warnings": ["/ 85% used"]}),
        "FAIL": CheckOutcome("c", "failed", f"{name} is broken", {"mount": "/var/log"}),
        "ERR": CheckOutcome("c", "error", "cannot tell", {"stderr": "denied"}),
    }
    steps = [
        StepReport(label, verdicts[c], after=verdicts[c])
        for label, c in zip(LABELS, cells, strict=False)
    ]
    return HostReport(name, status, reason=reason, steps=steps)  # type: ignore[arg-type]


def report(mode: str = "check") -> RunReport:
    return RunReport(
        "daily_health",
        mode,  # type: ignore[arg-type]
        [
            host("web1", "healthy", "ok", "ok", "ok", "ok"),
            host("web2", "failed", "ok", "FAIL", "ok", "ok", reason="still failing: disk"),
            host("web3", "unreachable", reason="connection refused"),
            host("web4", "failed", "FAIL", "FAIL", "ERR", "warn", reason="still failing: many"),
            host("web5", "healthy", "ok", "warn", "ok", "ok"),
        ],
        started=0.0,
        finished=1.5,
    )


def test_check_output_starts_with_one_table_worst_first():
    lines = to_text(report()).splitlines()
    assert lines[:8] == [
        "CHECK daily_health: 5 host(s)",
        "",
        "HOST  STATUS       nginx  disk  /var  memory",
        "web4  failed       FAIL   FAIL  ERR   warn",
        "web2  failed       ok     FAIL  ok    ok",
        "web3  unreachable  -      -     -     -",
        "web1  healthy      ok     ok    ok    ok",
        "web5  healthy      ok     warn  ok    ok",
    ]


def test_then_the_details_of_failures_only():
    text = to_text(report())
    details = text.split("\n\n", 2)[2]
    assert "web4  FAILED" in details and "web2  FAILED" in details
    assert "web3  UNREACHABLE  (0.0s)  connection refused" in details
    assert "  [FAILED] disk: web2 is broken" in details and "mount: /var/log" in details
    assert "web1" not in details and "web5" not in details
    assert text.splitlines()[-1].startswith("SUMMARY  failed=2  unreachable=1")


def test_verbose_shows_healthy_hosts_too():
    assert "web1  HEALTHY" in to_text(report(), verbose=1)


def test_no_table_for_apply_and_plain_text_always():
    assert "HOST  STATUS" not in to_text(report("apply"))
    assert "\x1b[" not in to_text(report())


def test_a_cleanups_file_list_is_indented_under_it():
    rem = RemediationOutcome(
        "clean_logs",
        "would_change",
        "remove 2 rotated log(s)\n  /var/log/a.1.gz (1.0 MiB, 9 days old)\n  /var/log/b.2",
        # as opsfix.engine.transaction.diff writes them: binary files summarised at the source
        diff="--- a/var/log/a.1.gz\n+++ /dev/null\n@@ -1 +0,0 @@\n"
        "-(4096 bytes, binary or too large to show)\n"
        "--- a/var/log/b.2\n+++ /dev/null\n@@ -1 +0,0 @@\n-text line\n",
    )
    bad = host("web2", "failed", "ok", "FAIL")
    bad.steps[1].remediations.append(rem)
    text = to_text(RunReport("disk_pressure", "dry-run", [bad]))
    assert "      -> clean_logs: would change: remove 2 rotated log(s)\n" in text
    assert "\n           /var/log/a.1.gz (1.0 MiB, 9 days old)\n" in text
    assert "-(4096 bytes, binary or too large to show)" in text
    assert "-text line" in text  # text files keep their diff


def test_no_hosts_no_table():
    assert "HOST" not in to_text(RunReport("x", "check", []))
