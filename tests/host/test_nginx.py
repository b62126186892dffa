"""Is nginx healthy on this host? The last step of `playbooks/nginx_recovery.yml`.

opsfix runs this suite with testinfra over its own verified connections (`opsfix.verify`),
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
from opsfix.transport.base import CommandResult

DEEP_LINK = "/app/settings"  # any route of the single-page app; the playbook's too


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
    return str(opsfix_vars.get("nginx_verify_url", "http://127.0.0.1")).rstrip("/")


@pytest.fixture(scope="module")
def pages(host: Any, base_url: str) -> list[tuple[int, str]]:
    """The front page and a deep link."""
    return [http_get(host, base_url + "/"), http_get(host, base_url + DEEP_LINK)]


@pytest.fixture(scope="module")
def front_page(pages: list[tuple[int, str]]) -> tuple[int, str]:
    return pages[0]


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


def test_port_80_is_served_by_nginx(host: Any) -> None:
    with host.sudo():  # only root sees other users' process names
        # every listener, filtered here: the same command as the port_listening check, so
        # on a host the run left alone the two share one answer
        listening = host.check_output("ss -ltnpH").splitlines()
    listeners = [line for line in listening if _local_port(line) == "80"]
    assert listeners, "nothing listens on TCP port 80"
    strangers = [line for line in listeners if '"nginx"' not in line]
    assert not strangers, f"port 80 is held by something else: {strangers}"


def _local_port(line: str) -> str:
    """The local port of an `ss -ltnH` line (State Recv-Q Send-Q Local Peer ...)."""
    fields = line.split()
    return fields[3].rpartition(":")[2] if len(fields) > 3 else ""


def test_front_page_answers_200(front_page: tuple[int, str]) -> None:
    status, _ = front_page
    assert status == 200


def test_front_page_has_the_expected_content(
    front_page: tuple[int, str], opsfix_vars: dict[str, Any]
) -> None:
    expected = opsfix_vars.get("expected_content")
    if not expected:
        pytest.skip("expected_content is not set for this host")
    assert str(expected) in front_page[1]


def test_deep_link_returns_the_app(
    pages: list[tuple[int, str]], front_page: tuple[int, str]
) -> None:
    """A single-page app serves its index for any route; a 404 here means try_files is broken."""
    status, body = pages[1]
    assert status == 200, f"{DEEP_LINK} answered {status}"
    assert body == front_page[1], f"{DEEP_LINK} did not return the app's index page"
