"""log_errors: the check's real commands on a lab host whose nginx logs held lines stamped
200, 30 and 0 minutes ago (access) and 300, 20, 10 and 1 minutes ago (error), by its clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from opsfix.checks.log_errors import LogErrors
from opsfix.transport.base import CommandResult

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_quiet_logs_pass():
    verdict = judge(LogErrors, "quiet")
    assert verdict.ok and verdict.summary == "last 60 min: 0 requests, 0 5xx, 0 error-log lines"


def test_the_5xx_share_and_error_lines_of_the_window_only():
    verdict = judge(LogErrors, "busy")
    assert verdict.status == "failed"
    assert verdict.summary == "last 60 min: 9.52% of 42 requests failed (5xx)"
    assert verdict.evidence["requests"] == 42 and verdict.evidence["errors_5xx"] == 4
    # 20 errors 300 min ago and 4 warnings are not counted; the newest lines are shown
    assert verdict.evidence["error_lines"] == 4
    assert verdict.evidence["last_errors"][-1].endswith(
        '[crit] 31#31: *0 open() "/var/www/html/x0" failed'
    )


def test_error_lines_over_the_limit_fail():
    verdict = judge(LogErrors, "busy", max_5xx_percent=50, max_error_lines=3)
    assert verdict.status == "failed" and verdict.summary == "last 60 min: 4 error-log lines"


def test_too_few_requests_are_not_judged():
    verdict = judge(LogErrors, "busy_10min")
    assert verdict.ok and verdict.evidence["percent_5xx"] == 50.0
    assert judge(LogErrors, "busy_10min", min_requests=2).status == "failed"


def test_a_missing_log_is_could_not_tell():
    verdict = judge(LogErrors, "missing_log")
    assert verdict.status == "error" and "none.log: cannot read" in verdict.evidence["stderr"]


def test_one_log_can_be_left_out():
    check = make(LogErrors, error_log=None)
    assert len(check.commands()) == 1
    with pytest.raises(ValidationError, match="nothing to judge"):
        make(LogErrors, error_log=None, access_log=None)


@pytest.mark.parametrize(
    "params", [{"minutes": 0}, {"minutes": 1441}, {"max_5xx_percent": 101}, {"levels": ["bad"]}]
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        make(LogErrors, **params)


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(LogErrors, access_log=values[0], error_log=values[1])
    assert_harmless(check, marker, values[0], values[1])


def test_real_commands_in_dash(tmp_path):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    access.write_text('1.2.3.4 - - [01/Jan/2001:00:00:00 +0000] "GET / HTTP/1.1" 500 1 "-" "-"\n')
    error.write_text("2001/01/01 00:00:00 [error] 1#1: old\n")
    verdict = make(LogErrors, access_log=str(access), error_log=str(error)).evaluate(
        run_local(make(LogErrors, access_log=str(access), error_log=str(error)).commands())
    )
    assert verdict.ok and verdict.evidence["requests"] == 0 and verdict.evidence["error_lines"] == 0


def test_the_journal_is_read_where_the_server_logs_there():
    """No log file, journald runs: the counts come from the journal and say so."""
    check = make(LogErrors)
    access, errors = check.commands()
    assert "_COMM=nginx _TRANSPORT=syslog PRIORITY=6 " in access
    assert "PRIORITY=0 PRIORITY=1 PRIORITY=2 PRIORITY=3 " in errors
    assert "--since=-60min" in errors
    verdict = check.evaluate(
        [
            CommandResult("", 0, "requests 40 4\nsource=journal\n", ""),
            CommandResult(
                "", 0, "lines 2\n*1 open() failed\n*2 open() failed\nsource=journal\n", ""
            ),
        ]
    )
    assert (
        verdict.status == "failed"
        and verdict.summary == "last 60 min: 10% of 40 requests failed (5xx)"
    )
    assert verdict.evidence["source"] == "journal (nginx)"
    assert verdict.evidence["last_errors"] == ["*1 open() failed", "*2 open() failed"]
