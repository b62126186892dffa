"""JUnit XML: host x check step as test cases, verify tests after them, counts that add up."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from opsfix.evidence import history
from opsfix.evidence.junit import to_junit
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
    VerifyOutcome,
)


def report() -> RunReport:
    ok = CheckOutcome("nginx_config", "passed", "ok")
    bad = CheckOutcome("http", "failed", "got 500 <b>&", {"body": "token=s3cret-value"})
    unknown = CheckOutcome("disk_usage", "error", "df failed")
    fixed = StepReport("site", bad, [RemediationOutcome("nginx_reload", "applied", "reloaded")], ok)
    web1 = HostReport(
        "web1",
        "repaired",
        steps=[fixed, StepReport("config", ok, [], ok)],
        verify=[VerifyOutcome("test_a", "passed"), VerifyOutcome("test_b", "skipped", "no")],
        duration=1.25,
    )
    web2 = HostReport(
        "web2",
        "failed",
        reason="still failing: site",
        steps=[
            StepReport("site", bad, [RemediationOutcome("nginx_reload", "rolled_back", "x")], bad),
            StepReport("disk", unknown, [], unknown),
        ],
        verify=[VerifyOutcome("test_a", "failed", "AssertionError: 500\nmore")],
    )
    return RunReport(
        "book",
        "apply",
        [
            web1,
            web2,
            HostReport("web3", "unreachable", reason="connection refused"),
            HostReport("web4", "not_attempted", reason="rollout stopped"),
        ],
        started=10.0,
        finished=13.5,
    )


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def test_counts_add_up_per_host_and_in_total():
    root = parse(to_junit(report()))
    assert root.tag == "testsuites" and root.get("name") == "book"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["web1", "web2", "web3", "web4"]
    counts = {n: tuple(int(s.get(k, -1)) for k in ("tests", "failures", "errors", "skipped"))
              for n, s in suites.items()}  # fmt: skip
    assert counts == {
        "web1": (4, 0, 0, 1),
        "web2": (3, 2, 1, 0),
        "web3": (1, 0, 1, 0),
        "web4": (1, 0, 0, 1),
    }
    totals = tuple(int(root.get(k, -1)) for k in ("tests", "failures", "errors", "skipped"))
    assert totals == (9, 2, 2, 2)
    assert root.get("time") == "3.500"


def test_cases_name_the_step_and_carry_the_evidence():
    root = parse(to_junit(report()))
    web2 = root.find("testsuite[@name='web2']")
    assert web2 is not None
    site = web2.find("testcase[@name='site']")
    assert site is not None and site.get("classname") == "opsfix.book.web2"
    failure = site.find("failure")
    assert failure is not None and failure.get("message") == "got 500 <b>&"
    assert "body: token=s3cret-value" in (failure.text or "")
    assert "remediation nginx_reload: rolled_back" in (failure.text or "")
    assert web2.find("testcase[@name='disk']/error") is not None
    verify = web2.find("testcase[@name='verify: test_a']/failure")
    assert verify is not None and verify.get("message") == "AssertionError: 500"
    fixed = root.find("testsuite[@name='web1']/testcase[@name='site']/system-out")
    assert fixed is not None and "before: failed: got 500" in (fixed.text or "")
    assert "after: passed: ok" in (fixed.text or "")


def test_a_masked_report_leaves_no_secret_in_the_xml():
    text = to_junit(history.masked(report(), ["s3cret-value"]))
    assert "s3cret-value" not in text and "token=********" in text


def test_an_empty_run_is_valid_junit():
    root = parse(to_junit(RunReport("book", "check")))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


def test_cases_carry_the_time_each_step_and_verify_test_took():
    step = StepReport("site", CheckOutcome("http", "passed", "200"), [], None, duration=0.4567)
    host = HostReport(
        "web1", "healthy", steps=[step], verify=[VerifyOutcome("t", "passed", "", 1.5)]
    )
    root = ET.fromstring(to_junit(RunReport("book", "check", [host], 0.0, 3.0)))
    times = {c.get("name"): c.get("time") for c in root.iter("testcase")}
    assert times == {"site": "0.457", "verify: t": "1.500"}


def test_a_real_run_gives_every_case_a_time(tmp_path):
    """Steps judged and repaired in a local shell (the engine tests' plugins) take time."""
    from ..engine.test_fleet import book, run

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "f").write_text("bad\n")
    host = run(tmp_path, "apply", book())
    [step] = host.steps
    assert 0 < step.duration <= host.duration
    root = ET.fromstring(to_junit(RunReport("book", "apply", [host], 0.0, 1.0)))
    assert [float(c.get("time") or 0) > 0 for c in root.iter("testcase")] == [True]


def test_what_a_host_printed_stays_readable_xml_with_its_controls_shown():
    """A control character raw in the file is XML no CI system parses (and an escape
    sequence for whoever reads it in a terminal): each is written as a visible escape."""
    said = "\x1b[2J\x00 all clear \x07\r\ud800"
    bad = CheckOutcome("http", "failed", f"got {said}", {"body": said})
    host = HostReport("web\x1b[31m1", "failed", steps=[StepReport("site", bad, [], bad)])
    run = RunReport(playbook="p", mode="check", started=0.0, finished=1.0, hosts=[host])
    run.hosts.append(HostReport("web2", "unreachable", reason=f"banner: {said}"))
    xml = to_junit(run)
    root = ET.fromstring(xml)  # well-formed
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "got \\x1b[2J\\x00 all clear \\x07\\r\\ud800"
    assert "body: \\x1b[2J\\x00" in (failure.text or "")
    assert root.find("testsuite").get("name") == "web\\x1b[31m1"
    error = root.find("testsuite[@name='web2']/testcase/error")
    assert (
        error is not None
        and error.get("message") == "banner: \\x1b[2J\\x00 all clear \\x07\\r\\ud800"
    )
    assert not any(c in xml for c in "\x1b\x00\x07\r")
