from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsfix.plugin import Plan, RemediationContext
from opsfix.remediations.nginx_reload import NginxReload
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from .conftest import Run, canned_result, run_sh


def plan_for(context: RemediationContext, state: str | CommandResult, **params: Any) -> Plan:
    facts = [canned_result(state) if isinstance(state, str) else state]
    return NginxReload(NginxReload.Params(**params), context).plan(facts)


def test_a_running_nginx_is_reloaded_never_restarted(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_running")
    assert plan.summary == "reload nginx (nginx -s reload)"
    assert plan.validate == ("nginx -t",)
    assert "nginx -s reload" in plan.act[0] and "restart" not in plan.act[0]
    assert plan.rollback == () and plan.changes == ()


def test_under_systemd_it_reloads_the_unit(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_systemd_active")
    assert plan.summary == "reload nginx (systemctl reload)"
    assert "systemctl reload nginx" in plan.act[0]


def test_a_stopped_nginx_is_started_and_stopped_again_on_rollback(
    context: RemediationContext,
) -> None:
    plan = plan_for(context, "nginx_stopped")
    assert plan.summary == "start nginx (it is not running)"
    assert plan.act == ("nginx",)
    assert "nginx -s quit" in plan.rollback[0]


def test_under_systemd_a_stopped_nginx_is_started_by_systemd(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_systemd_stopped")
    assert plan.act == ("systemctl start nginx",)
    assert "systemctl stop nginx" in plan.rollback[0]


def test_workers_without_their_master_are_cleared_before_the_start(
    context: RemediationContext,
) -> None:
    plan = plan_for(context, "nginx_stray")
    assert "stray processes are stopped first" in plan.summary
    assert plan.act[0].startswith("pkill -x nginx;") and plan.act[0].endswith("; nginx")


def test_a_reload_is_never_a_no_op(context: RemediationContext) -> None:
    """Asked to reload, it always acts: no fact on the host says a reload is not needed."""
    for state in ("nginx_running", "nginx_stopped", "nginx_systemd_active"):
        assert not plan_for(context, state).is_noop


def test_a_missing_binary_is_refused(context: RemediationContext) -> None:
    plan = plan_for(context, "nginx_missing", binary="/opt/none/nginx")
    assert plan.refuse == "no '/opt/none/nginx' command on the host's PATH"
    assert plan.act == () and plan.validate == ()


@pytest.mark.parametrize(
    "result",
    [
        CommandResult("x", -1, "", "connection lost"),
        CommandResult("x", 0, "something else\n"),
    ],
)
def test_a_state_it_cannot_read_is_refused(
    context: RemediationContext, result: CommandResult
) -> None:
    plan = plan_for(context, result)
    assert plan.refuse is not None and plan.refuse.startswith("could not tell if nginx runs")


def test_the_gather_reads_a_stopped_and_a_running_nginx(
    context: RemediationContext, namespace_host: Run
) -> None:
    (gather,) = NginxReload(NginxReload.Params(), context).gather()
    assert namespace_host(gather).stdout == canned_result("nginx_stopped").stdout
    namespace_host("nginx")
    assert namespace_host(gather).stdout == canned_result("nginx_running").stdout


def test_start_reload_and_rollback_on_a_host_without_systemd(
    context: RemediationContext, namespace_host: Run
) -> None:
    remediation = NginxReload(NginxReload.Params(), context)
    gather = remediation.gather()

    start = remediation.plan([namespace_host(c) for c in gather])
    assert all(namespace_host(c).ok for c in (*start.validate, *start.act))
    reload = remediation.plan([namespace_host(c) for c in gather])
    assert reload.summary == "reload nginx (nginx -s reload)"
    result = namespace_host(reload.act[0])
    assert result.ok, result.stderr

    assert namespace_host(start.rollback[0]).ok
    namespace_host("sleep 0.3")
    assert remediation.plan([namespace_host(c) for c in gather]).act == ("nginx",)


def test_a_killed_master_is_recovered(context: RemediationContext, namespace_host: Run) -> None:
    remediation = NginxReload(NginxReload.Params(), context)
    namespace_host('nginx && sleep 0.2 && kill -9 "$(cat /run/nginx.pid)"')
    plan = remediation.plan([namespace_host(c) for c in remediation.gather()])
    assert "stray" in plan.summary
    result = namespace_host(plan.act[0])
    assert result.ok, result.stderr
    after = remediation.plan([namespace_host(c) for c in remediation.gather()])
    assert after.summary == "reload nginx (nginx -s reload)"


def test_hostile_values_stay_quoted(context: RemediationContext, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"x; touch {marker}"
    remediation = NginxReload(NginxReload.Params(binary=evil, service=evil), context)
    commands = remediation.gather()
    running = remediation.plan(
        [CommandResult("x", 0, "systemd=no running=pidfile initd=no path=yes")]
    )
    stopped = remediation.plan([CommandResult("x", 0, "systemd=no running=no initd=no path=yes")])
    for plan in (running, stopped):
        assert quote(evil) in plan.validate[0] and quote(evil) in plan.act[0]
        commands += [*plan.validate, *plan.act, *plan.rollback]
    for command in commands:
        run_sh(command)
    assert not marker.exists()
