"""service_enabled: real `systemctl is-enabled` answers (it reads unit files without a
running systemd), including a unit masked in a private mount namespace. This machine runs
no systemd, so in the cases judged as a systemd host the probe's one line ("systemd") is
written by hand; the no_systemd cases are real throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.checks.service_enabled import ServiceEnabled

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_enabled_unit_passes():
    verdict = judge(ServiceEnabled, "enabled")
    assert verdict.status == "passed"
    assert verdict.evidence == {"unit_file_state": "enabled"}


@pytest.mark.parametrize(
    "case, why",
    [
        ("disabled", "it is disabled"),
        ("masked", "masked: it cannot be started at all"),
        ("not_found", "there is no such unit"),
    ],
)
def test_units_that_do_not_start_at_boot_fail(case, why):
    verdict = judge(ServiceEnabled, case)
    assert verdict.status == "failed"
    assert verdict.summary.endswith(why)


def test_static_unit_is_could_not_tell():
    verdict = judge(ServiceEnabled, "static")
    assert verdict.status == "error"
    assert "no [Install] section" in verdict.summary


def test_without_systemd_it_could_not_tell_and_says_what_runs_instead():
    verdict = judge(ServiceEnabled, "no_systemd")
    assert verdict.status == "error"
    assert verdict.summary.startswith("cannot tell if nginx starts at boot: PID 1 is ")
    assert verdict.evidence["init"] != "systemd"
    assert verdict.evidence["unit_file_state"] == "enabled"  # what systemd would do


def test_no_systemctl_without_systemd_is_could_not_tell():
    verdict = judge(ServiceEnabled, "no_systemctl")
    assert verdict.status == "error"
    assert verdict.evidence["unit_file_state"] == "unknown"


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    assert_harmless(make(ServiceEnabled, service=values[0]), marker, values[0])


def test_real_commands_in_dash():
    check = make(ServiceEnabled, service="nginx")
    verdict = check.evaluate(run_local(check.commands()))
    if Path("/run/systemd/system").is_dir():
        assert "init" not in verdict.evidence
    else:
        assert verdict.status == "error"
        assert "not systemd" in verdict.summary
