"""The last resort for a stopped nginx: move aside the one extra include nginx -t blames."""

from __future__ import annotations

import pytest

from opsfix.plugin import Plan, RemediationContext, Remove
from opsfix.remediations import _nginx
from opsfix.remediations.nginx_disable_include import NginxDisableInclude
from opsfix.transport.base import CommandResult

STOPPED = "systemd=no running=no initd=yes path=yes"
RUNNING = "systemd=no running=pidfile initd=yes path=yes"


def facts(state: str, test_output: str, test_exit: int = 1) -> list[CommandResult]:
    out = f"{state}\n{test_output}opsfix-nginx-t exit={test_exit}\n"
    return [CommandResult("state and test", 0, out, "")]


def plan(context: RemediationContext, state: str, test_output: str) -> Plan:
    remediation = NginxDisableInclude(NginxDisableInclude.Params(), context)
    return remediation.plan(facts(state, test_output))


def blamed(path: str, line: int = 3) -> str:
    return f'nginx: [emerg] unknown directive "rooot" in {path}:{line}\n'


@pytest.mark.parametrize("path", ["/etc/nginx/sites-enabled/shop", "/etc/nginx/conf.d/shop.conf"])
def test_a_stopped_nginx_gets_the_blamed_include_moved_aside(
    context: RemediationContext, path: str
) -> None:
    result = plan(context, STOPPED, blamed(path))
    assert result.refuse is None
    assert result.changes == (Remove(path, "/etc/nginx"),)  # kept in the backup
    assert result.stage_root == "/etc/nginx"
    assert result.validate == (_nginx.staged_test("nginx"),)
    assert result.attention and result.attention.startswith(f"{path} disabled")
    assert f"in {path}:3" in result.summary


def test_a_dangling_site_link_is_what_gets_moved_aside(context: RemediationContext) -> None:
    dangling = (
        'nginx: [emerg] open() "/etc/nginx/sites-enabled/new" failed (2: No such file or '
        "directory) in /etc/nginx/nginx.conf:60\n"
    )
    result = plan(context, STOPPED, dangling)
    assert result.changes == (Remove("/etc/nginx/sites-enabled/new", "/etc/nginx"),)


def test_a_running_nginx_is_never_touched_and_the_reason_names_file_and_line(
    context: RemediationContext,
) -> None:
    result = plan(context, RUNNING, blamed("/etc/nginx/sites-enabled/shop"))
    assert result.refuse and not result.changes
    assert "in /etc/nginx/sites-enabled/shop:3" in result.refuse
    assert "nginx is running" in result.refuse
    stray = plan(context, STOPPED.replace("running=no", "running=stray"), blamed("/x"))
    assert stray.refuse and "nginx is running" in stray.refuse


@pytest.mark.parametrize(
    "path",
    ["/etc/nginx/nginx.conf", "/etc/nginx/snippets/headers.conf", "/etc/nginx/conf.d/README"],
)
def test_a_file_that_is_no_extra_include_is_refused(context: RemediationContext, path: str) -> None:
    result = plan(context, STOPPED, blamed(path))
    assert result.refuse and "not an extra include" in result.refuse and not result.changes


def test_state_and_test_run_one_after_the_other(context: RemediationContext) -> None:
    """Side by side, `nginx -t`'s own process would look like a running nginx."""
    [command] = NginxDisableInclude(NginxDisableInclude.Params(), context).gather()
    state, _, test = command.rpartition("\nnginx -t")
    assert 'echo "systemd=' in state and test.startswith(" -c /etc/nginx/nginx.conf 2>&1")


def test_nothing_blamed_or_state_unknown_is_refused(context: RemediationContext) -> None:
    assert plan(context, STOPPED, "nginx: configuration file test is successful\n").refuse
    assert plan(context, "garbage", blamed("/etc/nginx/conf.d/a.conf")).refuse
