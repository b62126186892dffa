"""request_trace: real runs of the trace script (curl 7.88, wget 1.21) against a throwaway
nginx on 127.0.0.1:18090 that writes an access log: a page served, a 404, a log nginx does
not write to, a missing log, a closed port, and a host with no HTTP client."""

from __future__ import annotations

import pytest

from opsfix.checks.request_trace import RequestTrace
from opsfix.transport.base import CommandResult

from .helpers import assert_harmless, hostile, judge, make


@pytest.mark.parametrize("case", ["served", "wget"])
def test_request_found_in_the_access_log_passes(case):
    verdict = judge(RequestTrace, case)
    assert verdict.status == "passed"
    facts = verdict.evidence
    assert facts["marker"].startswith("opsfix-trace-") and facts["status"] == 200
    assert f'"GET /?opsfix_trace={facts["marker"]} HTTP/1.1" 200' in facts["line"]


def test_logged_status_must_be_the_expected_one():
    verdict = judge(RequestTrace, "not_found")
    assert verdict.status == "failed"
    assert verdict.summary.endswith("access.log shows 404, not 200")
    assert judge(RequestTrace, "not_found", status=404).status == "passed"


def test_answered_but_not_logged_fails():
    verdict = judge(RequestTrace, "not_logged")
    assert verdict.status == "failed"
    assert verdict.summary.startswith("request answered 200 but not in ")


def test_missing_log_fails():
    verdict = judge(RequestTrace, "log_missing")
    assert verdict.status == "failed"
    assert verdict.summary.endswith("gone.log does not exist")


def test_no_answer_fails_with_the_clients_error():
    verdict = judge(RequestTrace, "refused")
    assert verdict.status == "failed"
    assert "Couldn't connect" in verdict.evidence["error"]


def test_no_client_is_could_not_tell():
    verdict = judge(RequestTrace, "no_client")
    assert verdict.status == "error"
    assert verdict.summary == "no HTTP client on the host (curl or wget)"


def test_marker_joins_an_existing_query():
    check = make(RequestTrace, url="http://127.0.0.1/", path="/search?q=1")
    assert "'http://127.0.0.1/search?q=1&opsfix_trace='\"$m\"" in check.commands()[0]


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(RequestTrace, url=f"http://127.0.0.1/{values[0]}", access_log=values[1])
    assert_harmless(check, marker, values[1])


def test_a_request_traced_in_the_journal_says_where_it_was_found():
    check = make(RequestTrace, journal_process="web")
    assert "_COMM=web _TRANSPORT=syslog" in check.commands()[0]
    out = (
        "marker=opsfix-trace-1\nsource=journal\nclient=curl exit=0 status=200\n"
        'line=127.0.0.1 - - [04/Dec/2026:19:00:00 +0000] "GET /?opsfix_trace=x HTTP/1.1" 200 5\n'
    )
    verdict = check.evaluate([CommandResult("", 0, out, "")])
    assert verdict.ok and verdict.summary == "request traced in the journal (web) (200)"
