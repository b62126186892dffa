"""service_running: systemd where it manages the unit, else the pid file and pgrep.

The systemd_* cases are hand-written (this machine runs no systemd); all others are real.
"""

from __future__ import annotations

import shlex

from opsfix.checks.service_running import ServiceRunning

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_live_pid_file_passes():
    verdict = judge(ServiceRunning, "pid_file_live")
    assert verdict.status == "passed"
    assert verdict.evidence["judged_by"] == "pid_file"
    assert verdict.evidence["pids"]  # real pgrep output


def test_missing_pid_file_fails_even_while_nginx_runs():
    verdict = judge(ServiceRunning, "pid_file_missing")
    assert verdict.status == "failed"
    assert "nginx.pid.gone is missing" in verdict.summary
    assert verdict.evidence["pids"] and verdict.evidence["active"] == "inactive"


def test_stale_pid_file_fails():
    verdict = judge(ServiceRunning, "pid_file_stale")
    assert verdict.status == "failed"
    assert verdict.summary.endswith("stale.pid names 999999, not a live nginx")


def test_pid_file_naming_a_zombie_fails():
    verdict = judge(ServiceRunning, "pid_file_zombie")
    assert verdict.status == "failed"
    assert "not a live sleep" in verdict.summary


def test_without_pid_file_a_process_by_name_is_enough():
    verdict = judge(ServiceRunning, "process_live")
    assert verdict.status == "passed"
    assert verdict.evidence["judged_by"] == "process"


def test_no_process_fails():
    verdict = judge(ServiceRunning, "process_absent")
    assert verdict.status == "failed"
    assert verdict.evidence == {"judged_by": "process", "active": "inactive", "pids": []}


def test_no_pgrep_is_could_not_tell():
    verdict = judge(ServiceRunning, "no_pgrep")
    assert verdict.status == "error"
    assert "pgrep: not found" in verdict.evidence["stderr"]


def test_systemd_active_unit_passes():
    verdict = judge(ServiceRunning, "systemd_active")
    assert verdict.status == "passed"
    assert verdict.evidence == {
        "judged_by": "systemd",
        "active": "active",
        "pids": [812, 813, 814],
        "enabled": "enabled",
        "main_pid": 812,
    }


def test_systemd_failed_unit_fails():
    verdict = judge(ServiceRunning, "systemd_failed")
    assert verdict.status == "failed"
    assert verdict.summary == "nginx is not running: unit is failed"


def test_systemd_judges_even_when_someone_started_nginx_by_hand():
    verdict = judge(ServiceRunning, "systemd_started_by_hand")
    assert verdict.status == "failed"
    assert verdict.evidence["pids"] == [2301, 2302]
    assert verdict.evidence["enabled"] == "disabled"


def test_unknown_unit_falls_back_to_processes():
    verdict = judge(ServiceRunning, "systemd_no_unit")
    assert verdict.status == "passed"
    assert verdict.evidence["judged_by"] == "process"


def test_systemctl_failing_is_could_not_tell():
    assert judge(ServiceRunning, "systemd_no_bus").status == "error"


def test_pid_file_defaults_for_nginx_only_and_can_be_turned_off():
    assert make(ServiceRunning, service="nginx").pid_file == "/run/nginx.pid"
    assert make(ServiceRunning, service="nginx", pid_file="").pid_file is None
    assert len(make(ServiceRunning, service="sshd").commands()) == 2


def test_hostile_values_stay_quoted(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(ServiceRunning, service=values[0], pid_file=values[1])  # process = service
    assert_harmless(check, marker, values[0], values[1])
    assert "pgrep -a -x -- " + shlex.quote(values[0]) in check.commands()


def test_real_commands_in_dash(live_nginx):
    check = make(ServiceRunning, service="nginx", pid_file=str(live_nginx.pid_file))
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status == "passed"
    # the pid file's master, not whatever else of that name runs on this machine
    assert verdict.evidence["pid"] == str(live_nginx.master_pid())
    stopped = make(ServiceRunning, service="opsfix-none", pid_file=str(live_nginx.base / "x.pid"))
    assert stopped.evaluate(run_local(stopped.commands())).status == "failed"
