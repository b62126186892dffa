from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsfix.plugin import Plan, RemediationContext
from opsfix.remediations.service_start import ServiceStart
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from .conftest import Run, canned_result, run_sh


def plan_for(context: RemediationContext, state: str | CommandResult, **params: Any) -> Plan:
    facts = [canned_result(state) if isinstance(state, str) else state]
    return ServiceStart(ServiceStart.Params(**params), context).plan(facts)


def state(
    running: str = "no", *, systemd: str = "no", initd: str = "no", path: str = "no"
) -> CommandResult:
    line = f"systemd={systemd} running={running} initd={initd} path={path}\n"
    return CommandResult("state", 0, line)


def test_nothing_to_do_when_it_runs(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_running", service="nginx", validate="nginx -t")
    assert plan.is_noop
    assert plan.summary == "nginx is already running (found by pidfile)"


def test_a_stopped_service_is_validated_then_started_by_its_init_script(
    context: RemediationContext,
) -> None:
    plan = plan_for(context, "nginx_stopped", service="nginx", validate="nginx -t")
    assert plan.validate == ("nginx -t",)  # the playbook's own command, as given
    assert plan.act == ("/etc/init.d/nginx start",)
    assert "/etc/init.d/nginx stop" in plan.rollback[0]
    assert plan.summary == "start nginx (it is not running)"


def test_systemd_starts_it_where_systemd_runs(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_systemd_stopped", service="nginx", start_command="nginx")
    assert plan.act == ("systemctl start nginx",)
    assert "systemctl stop nginx" in plan.rollback[0]
    assert plan.validate == ()


def test_start_command_comes_before_the_init_script(context: RemediationContext) -> None:
    plan = plan_for(
        context, "nginx_stopped", service="nginx", start_command="nginx -g 'daemon on;'"
    )
    assert plan.act == ("nginx -g 'daemon on;'",)
    assert "pkill -x nginx" in plan.rollback[0]


def test_a_command_named_like_the_service_is_the_last_resort(context: RemediationContext) -> None:
    plan = plan_for(context, state(path="yes"), service="crond", process="cron")
    assert plan.act == ("crond",)
    assert "pkill -x cron" in plan.rollback[0]


def test_no_way_to_start_it_is_refused_with_what_to_do(context: RemediationContext) -> None:
    plan = plan_for(context, "unknown_stopped", service="opsfix-none")
    assert plan.refuse is not None and "give start_command" in plan.refuse
    assert plan.act == ()


def test_an_unreadable_state_is_refused(context: RemediationContext) -> None:
    plan = plan_for(context, CommandResult("x", 127, "", "sh: 1: pgrep: not found"), service="x")
    assert plan.refuse == "could not tell if it runs: sh: 1: pgrep: not found"


def test_stray_processes_are_stopped_before_the_start(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_stray", service="nginx")
    assert plan.act[0].startswith("pkill -x nginx;")
    assert plan.act[0].endswith("; /etc/init.d/nginx start")


def test_nginx_uses_its_pid_file_as_the_service_running_check_does(
    context: RemediationContext,
) -> None:
    nginx = ServiceStart(ServiceStart.Params(service="nginx"), context)
    other = ServiceStart(ServiceStart.Params(service="cron"), context)
    assert "/run/nginx.pid" in nginx.gather()[0]
    assert "pid" not in other.gather()[0].replace("_pid", "")


def test_nginx_starts_by_its_init_script_on_a_host_without_systemd(
    context: RemediationContext, namespace_host: Run
) -> None:
    remediation = ServiceStart(ServiceStart.Params(service="nginx", validate="nginx -t"), context)
    plan = remediation.plan([namespace_host(c) for c in remediation.gather()])
    for command in (*plan.validate, *plan.act):
        result = namespace_host(command)
        assert result.ok, result.stdout + result.stderr
    assert remediation.plan([namespace_host(c) for c in remediation.gather()]).is_noop
    assert namespace_host(plan.rollback[0]).ok
    assert not remediation.plan([namespace_host(c) for c in remediation.gather()]).is_noop


def test_the_state_gather_runs_in_dash(context: RemediationContext, sh: Run) -> None:
    gather = ServiceStart(ServiceStart.Params(service="opsfix-none"), context).gather()
    assert sh(gather[0]).stdout == canned_result("unknown_stopped").stdout


def test_hostile_values_stay_quoted(context: RemediationContext, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"x; touch {marker}"
    remediation = ServiceStart(ServiceStart.Params(service=evil, process=evil), context)
    commands = remediation.gather()
    for facts in (state(path="yes"), state(initd="yes"), state("stray", systemd="yes")):
        plan = remediation.plan([facts])
        assert quote(evil) in plan.act[0] or quote(f"/etc/init.d/{evil}") in plan.act[0]
        commands += [*plan.act, *plan.rollback]
    for command in commands:
        if "systemctl" not in command:  # systemctl would really run on a systemd host
            run_sh(command)
    assert not marker.exists()


@pytest.mark.parametrize("params", [{}, {"service": "x", "restart": True}])
def test_bad_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServiceStart.Params(**params)


def test_a_unit_systemd_does_not_know_is_started_by_the_playbooks_command(
    context: RemediationContext,
) -> None:
    """On a systemd host, a daemon without a unit is started as the playbook says."""
    known = CommandResult("state", 0, "systemd=yes running=no initd=no path=no unit=yes\n")
    unknown = CommandResult("state", 0, "systemd=yes running=no initd=no path=no unit=no\n")
    params = {"service": "appd", "start_command": ["/opt/appd/start"]}
    assert plan_for(context, known, **params).act[0] == "systemctl start appd"
    assert plan_for(context, unknown, **params).act[0] == "/opt/appd/start"
