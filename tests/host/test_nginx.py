"""Is nginx healthy on this host? The last step of `playbooks/nginx_recovery.yml`.

Any nginx host: every address its config listens on is served by nginx and answers, and
every web root holds its index. The practice app's expectations (a page's text, a deep
link) are asserted only where the host's vars ask for them (`expected_content`,
`spa_deep_link`), as the playbook's own steps are.

opsfix runs this suite with testinfra over its own verified connections (`opsfix.verify.suite`),
one parametrized run per host; `opsfix_vars` holds the host's inventory vars. Lab hosts
have no systemd, so "running" means an nginx master process exists (systemd's view is
used only where systemd runs). Commands that need root use `host.sudo()`.

It runs on every host of every repairing run, so it asks with plain commands: testinfra's
`host.file` and `host.process` first probe the system (`uname`, os-release, `realpath` of
ps) and `host.process` then lists every process: eight processes on the host, where
`test` (a shell builtin) and `pgrep` make one. Where a check of the playbook asks the same
(`nginx -t`, `ss -ltnpH`, `pgrep`, a page), the suite asks with the check's exact command,
so on a host the run left alone the two share one answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from opsfix.checks.http import Http, HttpParams
from opsfix.checks.nginx_sites import NginxSites, NginxSitesParams
from opsfix.transport.base import CommandResult


def http_get(host: Any, url: str) -> tuple[int, str]:
    """Status and body of a GET made on the host itself (so no firewall is in the way).

    It asks with the http check's own command: on a host the run left alone, the check's
    answer is shared, and the host starts no second curl (each one costs it ~11 ms of CPU).
    The check's parser reads the answer; the assertions on it are this suite's own.
    """
    check = Http(HttpParams(url=url))
    command = check.commands()[0]
    ran = host.run(command)
    verdict = check.evaluate([CommandResult(command, ran.rc, ran.stdout, ran.stderr)])
    assert "status" in verdict.evidence, f"GET {url}: {verdict.summary}"
    return int(verdict.evidence["status"]), ran.stdout


@pytest.fixture(scope="module")
def base_url(opsfix_vars: dict[str, Any]) -> str:
    url = opsfix_vars.get("nginx_verify_url") or opsfix_vars.get("site_url") or "http://127.0.0.1"
    return str(url).rstrip("/")


@pytest.fixture(scope="module")
def front_page(host: Any, base_url: str, opsfix_vars: dict[str, Any]) -> tuple[int, str]:
    if not opsfix_vars.get("expected_content"):
        pytest.skip("expected_content is not set for this host")
    return http_get(host, base_url + "/")


def test_nginx_is_installed(host: Any) -> None:
    assert host.exists("nginx") or host.file("/usr/sbin/nginx").is_file, "no nginx binary"


def test_nginx_is_running(host: Any) -> None:
    if host.run("test -d /run/systemd/system").rc == 0:
        assert host.service("nginx").is_running, "systemd says nginx is not running"
    listed = host.run("pgrep -a -x -- nginx")  # as service_running asks: they share it
    assert listed.rc in (0, 1), f"pgrep failed: {listed.stderr.strip()}"
    masters = [line for line in listed.stdout.splitlines() if "master process" in line]
    assert masters, "no nginx master process"


def test_nginx_config_is_valid(host: Any) -> None:
    with host.sudo():
        result = host.run("nginx -t")
    assert result.rc == 0, result.stderr


def test_every_site_answers(host: Any) -> None:
    """Every listen address is held by nginx and answers below 500; every root has its
    index. Asked with the nginx_sites check's own commands (shared with the check)."""
    check = NginxSites(NginxSitesParams())
    results = []
    with host.sudo():  # nginx -T and the sockets' owners need root
        for command in check.commands():
            ran = host.run(command)
            results.append(CommandResult(command, ran.rc, ran.stdout, ran.stderr))
    verdict = check.evaluate(results)
    assert verdict.ok, f"{verdict.summary} {verdict.evidence}"


def test_front_page_answers_200(front_page: tuple[int, str]) -> None:
    status, _ = front_page
    assert status == 200


def test_front_page_has_the_expected_content(
    front_page: tuple[int, str], opsfix_vars: dict[str, Any]
) -> None:
    assert str(opsfix_vars["expected_content"]) in front_page[1]


def test_deep_link_returns_the_app(
    host: Any, base_url: str, front_page: tuple[int, str], opsfix_vars: dict[str, Any]
) -> None:
    """A single-page app serves its index for any route; a 404 here means try_files is broken."""
    deep_link = opsfix_vars.get("spa_deep_link")
    if not deep_link:
        pytest.skip("spa_deep_link is not set for this host")
    status, body = http_get(host, base_url + str(deep_link))
    assert status == 200, f"{deep_link} answered {status}"
    assert body == front_page[1], f"{deep_link} did not return the app's index page"
