"""`opsfix check playbooks/daily_health.yml` over four lab hosts, three of them sick in
different ways: one table for the fleet, worst host first, then the failures' details;
nothing on any host changes, and each run records a /var sample per host."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.evidence.state import open_store
from opsfix.lab import Lab

from .helpers import REPO, break_host, watched
from .test_disk_pressure import run

pytestmark = pytest.mark.integration

PLAYBOOK = REPO / "playbooks" / "daily_health.yml"
CALM = ["-e", "max_load_per_core=1000"]  # the test machine's own load is not under test


@pytest.fixture
def sick(clean_lab: Lab):
    lab = clean_lab
    break_host(lab, "web2", ["nginx_stopped"])
    lab.exec("web3", "head -c 15500000 /dev/zero > /var/log/fill.bin")
    lab.exec(
        "web4", "setsid python3 -m http.server -b 0.0.0.0 8080 >/dev/null 2>&1 </dev/null & sleep 1"
    )
    try:
        yield lab
    finally:
        lab.exec("web4", "pkill -f 'http[.]server -b'", check=False)
        for host in ("web2", "web3", "web4"):
            lab.reset(host)


def test_one_table_for_the_fleet_worst_first(sick: Lab, tmp_path: Path) -> None:
    before = {h: watched(sick, h) for h in sick.hosts}
    done = run("check", PLAYBOOK, "-i", sick.inventory_path, *CALM, state=tmp_path)
    assert done.returncode == 2, str(done)
    lines = done.stdout.splitlines()
    assert lines[0] == "CHECK daily_health: 4 host(s)"
    header, *rows = lines[2:7]
    assert header.split() == [
        "HOST",
        "STATUS",
        "config",
        "nginx",
        "http",
        "ports",
        "disk",
        "/var",
        "memory",
        "load",
        "errors",
    ]
    table = {row.split()[0]: row.split()[1:] for row in rows}
    assert [row.split()[0] for row in rows] == ["web2", "web3", "web4", "web1"]
    assert table["web2"][:4] == ["failed", "ok", "FAIL", "FAIL"]  # nginx down: service, http
    assert table["web3"][5] == "FAIL" and table["web3"][0] == "failed"  # /var/log full
    assert table["web4"][4] == "FAIL"  # a stray server on 0.0.0.0:8080
    assert table["web1"] == ["healthy", *["ok"] * 9] or "warn" in table["web1"]
    details = done.stdout.split("\n\n", 2)[2]
    assert "web2  FAILED" in details and "nginx is not running" in details
    assert "/var/log 9" in details and "unexpected ports open: 8080/tcp" in details
    assert "web1  HEALTHY" not in details
    assert "\x1b[" not in done.stdout
    assert {h: watched(sick, h) for h in sick.hosts} == before, "a check changed a host"
    store = open_store(tmp_path / "opsfix.db")
    assert all(store.growth_sample_count(h, "/var") == 1 for h in sick.hosts)


def test_json_has_every_check_of_every_host(sick: Lab, tmp_path: Path) -> None:
    done = run(
        "check", PLAYBOOK, "-i", sick.inventory_path, "--format", "json", *CALM, state=tmp_path
    )
    report = done.report
    assert report["summary"]["failed"] == 3 and report["summary"]["healthy"] == 1
    for host in report["hosts"]:
        assert [s["name"] for s in host["steps"]][-2:] == ["load", "errors"]
        assert host["steps"][5]["before"]["summary"].startswith("baseline recorded: /var ")
