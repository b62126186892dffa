"""The `opsfix` command on lab hosts: exit codes, reports, and what it never does.

Every case runs the installed console script as a subprocess and judges it by its exit
code, its output, and the hosts themselves: their files (hashed), their sshd log (one
line per connection, so "no host was contacted" is a fact, not a guess) and nginx.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import (
    DATA,
    EXPECTED,
    PLAYBOOK,
    PLUGINS,
    break_host,
    config_ok,
    host_key_fingerprint,
    host_public_key,
    http_body,
    inventory_copy,
    kill_processes,
    log_marks,
    log_since,
    opsfix,
    reset_hosts,
    run_playbook,
    start,
    unused_address,
    watched,
)

pytestmark = pytest.mark.integration

LOGIN = "Accepted publickey"


@pytest.fixture
def hosts(lab: Lab) -> Iterator[Lab]:
    """The lab, pristine and without any opsfix state; put back the same way afterwards."""
    reset_hosts(lab)
    yield lab
    reset_hosts(lab)


def assert_no_host_contacted(lab: Lab, marks: dict[str, int]) -> None:
    for host in lab.hosts:
        assert log_since(lab, host, marks) == "", f"{host} was contacted"
        assert lab.exec(host, "test -e /var/lib/opsfix", check=False).returncode != 0


def test_healthy_hosts_check_clean_with_exit_0_in_json_and_text(hosts: Lab) -> None:
    before = {h: watched(hosts, h) for h in hosts.hosts}
    run = run_playbook(hosts, "check", hosts.hosts)
    assert run.returncode == 0, str(run)
    report = run.report
    assert (report["playbook"], report["mode"]) == ("nginx_recovery", "check")
    assert report["summary"] == {"failed": 0, "unreachable": 0, "repaired": 0, "healthy": 4}
    assert sorted(h["host"] for h in report["hosts"]) == sorted(hosts.hosts)
    for host in report["hosts"]:
        assert host["status"] == "healthy" and host["verify"] == []
        assert len(host["steps"]) == 6
        assert all(s["before"]["status"] == "passed" == s["after"]["status"] for s in host["steps"])

    text = opsfix("check", PLAYBOOK, "-i", hosts.inventory_path)
    assert text.returncode == 0, str(text)
    assert "SUMMARY  failed=0  unreachable=0  repaired=0  healthy=4" in text.stdout
    assert {h: watched(hosts, h) for h in hosts.hosts} == before, "check changed a host"


def test_an_unreachable_host_does_not_stop_the_repair_of_another_exit_3(
    hosts: Lab, tmp_path: Path
) -> None:
    ghost = unused_address(hosts)
    inventory = inventory_copy(hosts, tmp_path / "inventory.yml", hosts={"ghost": ghost})
    break_host(hosts, "web3", ["conf_d_syntax", "index_emptied"])

    run = run_playbook(hosts, "apply", ["web3", "ghost"], "--timeout", "2", inventory=inventory)

    assert run.returncode == 3, str(run)
    assert run.report["summary"] == {"failed": 0, "unreachable": 1, "repaired": 1, "healthy": 0}
    lost = run.host("ghost")
    assert lost["status"] == "unreachable" and lost["steps"] == [] and lost["verify"] == []
    assert ghost in lost["reason"]
    # nothing answers: the connect times out, or the kernel gives up on ARP first
    assert any(why in lost["reason"] for why in ("timed out", "No route to host")), lost
    fixed = run.host("web3")
    assert fixed["status"] == "repaired"
    assert fixed["verify"] and {v["outcome"] for v in fixed["verify"]} == {"passed"}
    assert config_ok(hosts, "web3")[0]
    assert EXPECTED in http_body(hosts, "web3")


def test_an_unknown_host_key_is_refused_until_trusted_then_recorded(
    hosts: Lab, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    home = tmp_path / "home"
    home.mkdir()
    inventory = inventory_copy(
        hosts, tmp_path / "inventory.yml", opsfix_known_hosts_file=str(known_hosts)
    )
    address, fingerprint = hosts.hosts["web4"], host_key_fingerprint(hosts, "web4")
    break_host(hosts, "web4", ["index_deleted"])
    before = watched(hosts, "web4")
    marks = log_marks(hosts)

    refused = run_playbook(hosts, "apply", ["web4"], inventory=inventory, home=home)

    assert refused.returncode == 3, str(refused)
    reason = refused.host("web4")["reason"]
    assert refused.host("web4")["status"] == "unreachable"
    assert f"unknown host key for {address}: ssh-ed25519 {fingerprint}" in reason
    assert str(known_hosts) in reason
    assert LOGIN not in log_since(hosts, "web4", marks), "logged in despite the unknown key"
    assert watched(hosts, "web4") == before
    assert known_hosts.read_text() == "" and not (home / ".ssh").exists()

    trusted = run_playbook(
        hosts, "apply", ["web4"], "--trust-new-host-keys", inventory=inventory, home=home
    )

    assert trusted.returncode == 0, str(trusted)
    assert trusted.host("web4")["status"] == "repaired"
    assert EXPECTED in http_body(hosts, "web4")
    found = subprocess.run(
        ["ssh-keygen", "-F", address, "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, f"{address} not recorded in {known_hosts}"
    host_key = host_public_key(hosts, "web4").split()
    assert found.stdout.split()[-2:] == host_key[:2]
    assert len(known_hosts.read_text().splitlines()) == 1

    again = run_playbook(hosts, "check", ["web4"], inventory=inventory, home=home)
    assert again.returncode == 0, str(again)
    assert len(known_hosts.read_text().splitlines()) == 1


def test_a_changed_host_key_is_refused_even_with_trust_on_first_use(
    hosts: Lab, tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    address = hosts.hosts["web2"]
    known_hosts = tmp_path / "known_hosts"
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    known_hosts.write_text(f"{address} {wrong}\n")
    inventory = inventory_copy(
        hosts, tmp_path / "inventory.yml", opsfix_known_hosts_file=str(known_hosts)
    )
    break_host(hosts, "web2", ["index_deleted"])
    before = watched(hosts, "web2")
    marks = log_marks(hosts)

    run = run_playbook(hosts, "apply", ["web2"], "--trust-new-host-keys", inventory=inventory)

    assert run.returncode == 3, str(run)
    reason = run.host("web2")["reason"]
    assert f"host key for {address} has CHANGED" in reason
    assert host_key_fingerprint(hosts, "web2") in reason
    assert LOGIN not in log_since(hosts, "web2", marks)
    assert watched(hosts, "web2") == before
    assert known_hosts.read_text() == f"{address} {wrong}\n"


def test_a_playbook_error_exits_4_and_contacts_no_host(hosts: Lab) -> None:
    playbook = DATA / "unknown_check.yml"
    marks = log_marks(hosts)

    run = opsfix("apply", playbook, "-i", hosts.inventory_path, "--format", "json")

    assert run.returncode == 4, str(run)
    assert run.stdout == ""
    assert (
        f"ERROR: {playbook}:8:12: checks[1].check: unknown check 'nginx_cfg' "
        "(did you mean 'nginx_config'?)"
    ) in run.stderr
    assert "Nothing was run." in run.stderr
    assert_no_host_contacted(hosts, marks)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apply", PLAYBOOK, "--forks", "0"], "--forks must be at least 1"),
        (["apply", PLAYBOOK, "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["check", PLAYBOOK, "--format", "yaml"], "invalid choice: 'yaml'"),
        (["apply"], "the following arguments are required: playbook"),
    ],
    ids=["forks 0", "unknown option", "unknown format", "no playbook"],
)
def test_bad_options_exit_5_and_contact_no_host(lab: Lab, args: list[str], message: str) -> None:
    marks = log_marks(lab)
    run = opsfix(*args, "-i", lab.inventory_path)
    assert run.returncode == 5, str(run)
    assert message in run.stderr
    assert_no_host_contacted(lab, marks)


def test_ctrl_c_stops_a_run_blocked_on_a_host_with_exit_99(hosts: Lab, tmp_path: Path) -> None:
    sleeper = "sleep 29.5"  # what the slow check runs on the host (data/slow.yml)
    args = ["check", DATA / "slow.yml", "--plugins", PLUGINS, "-i", hosts.inventory_path]
    process = start([*args, "--limit", "web2", "--format", "json"], home=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not hosts.exec("web2", f"pgrep -x -f '{sleeper}'", check=False).stdout:
            assert process.poll() is None, f"opsfix ended early: {process.communicate()}"
            assert time.monotonic() < deadline, "the slow check never started on web2"
            time.sleep(0.05)
        time.sleep(1)  # well inside the check
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        kill_processes(hosts, "web2", sleeper)

    assert process.returncode == 99, stderr
    assert took < 3, f"opsfix took {took:.1f}s to stop"
    assert "Interrupted." in stderr


def test_a_plugin_that_crashes_while_loading_exits_250(hosts: Lab) -> None:
    marks = log_marks(hosts)
    run = opsfix("check", DATA / "explode.yml", "--plugins", PLUGINS, "-i", hosts.inventory_path)
    assert run.returncode == 250, str(run)
    assert "ERROR: unexpected RuntimeError: explode: a plugin bug in __init__" in run.stderr
    assert "OPSFIX_DEBUG=1" in run.stderr
    assert_no_host_contacted(hosts, marks)
