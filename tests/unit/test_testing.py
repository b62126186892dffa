"""opsfix.testing: the helpers plugin authors test with, on built-in plugins."""

import pytest

from opsfix.checks.memory import Memory
from opsfix.checks.service_running import ServiceRunning
from opsfix.plugin import WriteFile
from opsfix.remediations.logrotate import Logrotate
from opsfix.testing import capture, judge, judge_case, load_case, make_remediation, plan, result


def test_a_captured_case_round_trips_and_judges_as_captured(tmp_path):
    case = tmp_path / "cases" / "memory" / "here.json"
    verdict = capture(Memory, case, min_available_percent=1)
    params, results = load_case(case)
    assert params == {"min_available_percent": 1}
    assert results[0].command == "cat /proc/meminfo" and "MemTotal:" in results[0].stdout
    assert judge_case(Memory, case) == verdict
    assert judge_case(Memory, case, min_available_percent=99, warn_available_percent=99).status == (
        "failed"
    )


def test_judge_refuses_a_case_that_no_longer_fits_the_commands():
    with pytest.raises(AssertionError, match=r"runs 1 command.* but the case has 2 result"):
        judge(Memory, [result("MemTotal: 1 kB\n"), result()])


def test_hand_written_results_judge_like_real_ones():
    meminfo = "MemTotal: 1000 kB\nMemAvailable: 50 kB\n"
    assert judge(Memory, [result(meminfo)]).status == "failed"
    assert judge(Memory, [result(exit_status=1, stderr="denied")]).status == "error"
    assert ServiceRunning.name == "service_running"


def test_plan_reads_the_gather_results():
    facts = [result("/usr/sbin/logrotate\n"), result("ok\n"), result("")]
    done = plan(Logrotate, facts)
    assert done.validate == ("logrotate -d /etc/logrotate.conf",)
    refused = plan(Logrotate, [result("missing\n"), result("ok\n"), result("")])
    assert refused.refuse == "logrotate is not installed on this host"


def test_make_remediation_renders_given_templates(tmp_path):
    rem = make_remediation(Logrotate, vars={"x": 1}, templates={"t.j2": "x={x}"})
    assert rem.context.render_template("t.j2", rem.context.vars) == "x=1"
    with pytest.raises(KeyError, match="no template 'other'"):
        rem.context.render_template("other", {})
    assert WriteFile("/a", b"b").mode == 0o644
