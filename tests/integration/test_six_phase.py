"""The six-phase production drill (playbooks/drill/) run with the real `opsfix` command
against lab hosts, and each host's real state read back with `lab.exec`.

A healthy lab host passes every phase, except for what a namespace host cannot show: it
runs no systemd (so nothing says what starts at boot) and, unless the machine has nft or
iptables, has no tool to read firewall rules. Those two must be "could not tell" with the
reason, never a pass and never a failure. (Its load is the whole machine's: a busy test
machine may fail `load`, and only with the numbers to show it.) The phases that only
observe change nothing; the safe restart (phase 2) validates before it acts; the incident
phase (6) repairs a broken host and proves it.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from opsfix.lab import Lab

from .helpers import (
    ETC_NGINX,
    EXPECTED,
    REPO,
    WEB_ROOT,
    Run,
    break_host,
    config_ok,
    http_body,
    nginx_processes,
    run_playbook,
    tree,
    watched,
)

pytestmark = pytest.mark.integration

DRILL = REPO / "playbooks" / "drill"
PHASES = ["1-networking", "2-service-health", "3-logs-trace", "4-resources", "5-integrity"]
NO_GATEWAY = ("-e", "default_route_required=false")  # lab hosts sit on an isolated bridge
# (check, why it cannot pass on a namespace host): must be an error that says so
CANNOT_TELL = {
    "service_enabled": "not systemd",
    "firewall": "neither nft nor iptables-save is on the host",
}


def phase(lab: Lab, command: str, name: str, hosts: list[str], *extra: str) -> Run:
    return run_playbook(lab, command, hosts, *extra, playbook=DRILL / f"{name}.yml")


def verdicts(run: Run, host: str, when: str = "before") -> dict[str, dict[str, Any]]:
    """Each step's verdict by step name."""
    return {step["name"]: step[when] for step in run.host(host)["steps"]}


def test_a_healthy_host_passes_every_observing_phase(clean_lab: Lab) -> None:
    before = watched(clean_lab, "web1")
    for name in PHASES:
        run = phase(clean_lab, "check", name, ["web1"], *NO_GATEWAY)
        for step, verdict in verdicts(run, "web1").items():
            if verdict["status"] == "passed" or _busy_machine(verdict):
                continue
            why = CANNOT_TELL.get(verdict["check"])
            assert why and verdict["status"] == "error", f"{name}: {step}: {verdict}\n{run}"
            assert why in verdict["summary"], f"{name}: {step}: {verdict}"
        assert run.returncode in (0, 2), run
    assert watched(clean_lab, "web1") == before  # checks never change a host


def _busy_machine(verdict: dict[str, Any]) -> bool:
    """Load is the whole machine's (namespaces do not split it): a busy test machine may
    fail `load` truthfully, and then its evidence shows the load over the limit."""
    return verdict["check"] == "load" and verdict["evidence"].get("per_core", 0) >= 2.0


def test_no_gateway_is_reported_not_passed_silently(lab: Lab) -> None:
    run = phase(lab, "check", "1-networking", ["web2"])
    route = verdicts(run, "web2")["default route"]
    assert route["status"] == "failed"
    subnet = lab.hosts["web2"].rpartition(".")[0] + ".0/24"  # the lab's own subnet
    assert route["summary"] == f"no default route: only {subnet} can be reached"
    relaxed = phase(lab, "check", "1-networking", ["web2"], *NO_GATEWAY)
    route = verdicts(relaxed, "web2")["default route"]
    assert route["status"] == "passed" and "none required" in route["summary"]


def test_traced_requests_are_in_the_hosts_access_log(clean_lab: Lab) -> None:
    run = phase(clean_lab, "check", "3-logs-trace", ["web3"])
    traces = [v for v in verdicts(run, "web3").values() if v["check"] == "request_trace"]
    assert [t["status"] for t in traces] == ["passed", "passed"], run
    log = clean_lab.exec("web3", "cat /var/log/nginx/access.log").stdout
    for trace in traces:
        lines = [line for line in log.splitlines() if trace["evidence"]["marker"] in line]
        assert lines == [trace["evidence"]["line"]]
    assert '"GET /app/settings?opsfix_trace=' in traces[1]["evidence"]["line"]


def test_safe_restart_starts_nginx_only_on_a_valid_config(clean_lab: Lab) -> None:
    break_host(clean_lab, "web2", ["nginx_stopped"])
    break_host(clean_lab, "web3", ["nginx_stopped", "conf_d_syntax"])
    broken_config = tree(clean_lab, "web3", ETC_NGINX, WEB_ROOT)
    run = phase(clean_lab, "apply", "2-service-health", ["web2", "web3"])
    # repaired; whether nginx starts at boot can be told only where systemd runs
    systemd = clean_lab.exec("web2", "[ -d /run/systemd/system ]", check=False).returncode == 0
    assert run.host("web2")["status"] == ("repaired" if systemd else "failed"), run
    assert verdicts(run, "web2", "after")["nginx running"]["status"] == "passed", run
    assert nginx_processes(clean_lab, "web2").master is not None
    assert EXPECTED in http_body(clean_lab, "web2")
    tried = [r for s in run.host("web3")["steps"] for r in s["remediations"]]
    assert tried and {r["status"] for r in tried} == {"refused"}, run
    assert "nginx -t" in tried[0]["reason"] or "typo.conf" in tried[0]["validate_output"]
    assert nginx_processes(clean_lab, "web3").every == frozenset()  # nothing started
    assert tree(clean_lab, "web3", ETC_NGINX, WEB_ROOT) == broken_config


def test_integrity_phase_sees_a_broken_release_and_changes_nothing(clean_lab: Lab) -> None:
    clean_lab.exec("web4", "rm /var/www/html/app.js && : > /var/www/html/index.html")
    broken = watched(clean_lab, "web4")
    run = phase(clean_lab, "check", "5-integrity", ["web4"])
    found = verdicts(run, "web4")
    files = found["release checksums"]
    assert files["status"] == "failed"
    assert files["evidence"]["missing"] == ["app.js"]
    assert files["evidence"]["mismatched"] == ["index.html"]
    assert found["SPA deep link"]["status"] == "failed"
    assert run.returncode == 2 and watched(clean_lab, "web4") == broken


def test_incident_phase_breaks_detects_repairs_and_proves_it(clean_lab: Lab) -> None:
    break_host(clean_lab, "web1", ["nginx_stopped", "site_syntax", "index_deleted"])
    broken = phase(clean_lab, "check", "6-incident", ["web1"])
    failing = {name for name, v in verdicts(broken, "web1").items() if v["status"] != "passed"}
    assert {"nginx config is valid", "nginx is running", "web root is complete"} <= failing
    repair = phase(clean_lab, "apply", "6-incident", ["web1"])
    assert repair.host("web1")["status"] == "repaired", repair
    assert config_ok(clean_lab, "web1")[0]
    assert EXPECTED in http_body(clean_lab, "web1", "/app/settings")
    again = phase(clean_lab, "check", "6-incident", ["web1"])
    assert again.returncode == 0 and again.host("web1")["status"] == "healthy", again
    index = clean_lab.exec("web1", shlex.join(["test", "-s", "/var/www/html/index.html"]))
    assert index.returncode == 0
