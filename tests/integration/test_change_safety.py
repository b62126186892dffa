"""Change safety on real lab hosts: canary batches stop a failing rollout, host locks keep
two runs from acting on one host at once, and serial batches go in order."""

from __future__ import annotations

import posixpath
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from opsfix.engine.lock import LOCK_PATH

from .helpers import DATA, run_playbook
from .helpers import opsfix as opsfix_cli

LOCK_DIR = posixpath.dirname(LOCK_PATH)

pytestmark = pytest.mark.integration

BOOK = DATA / "safety.yml"
PLUGINS = DATA / "safety"
HOSTS = ("web1", "web2", "web3", "web4")
MARKERS = "rm -f /tmp/opsfix-test-broken /tmp/opsfix-test-fixed /tmp/opsfix-test-acts"


@pytest.fixture
def hosts(clean_lab):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: clean_lab.exec(h, MARKERS), HOSTS))
    yield clean_lab
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda h: clean_lab.exec(h, MARKERS), HOSTS))


def exists(lab, host: str, path: str) -> bool:
    return lab.exec(host, f"test -e {path}", check=False).returncode == 0


def test_failing_canary_stops_the_rollout_before_other_hosts_are_touched(hosts):
    hosts.exec("web1", "touch /tmp/opsfix-test-broken")
    run = run_playbook(
        hosts,
        "apply",
        HOSTS,
        "--plugins",
        PLUGINS,
        "--serial",
        "1,100%",
        "--max-fail-percentage",
        "0",
        playbook=BOOK,
    )
    assert run.returncode == 2, run
    assert run.host("web1")["status"] == "failed"
    for name in HOSTS[1:]:
        host = run.host(name)
        assert host["status"] == "not_attempted", run
        assert "batch 1 had 1 of 1 host(s) failing" in host["reason"]
        assert not exists(hosts, name, "/tmp/opsfix-test-fixed")  # never touched
        assert not exists(hosts, name, "/var/lib/opsfix/tx")
    assert exists(hosts, "web1", "/tmp/opsfix-test-fixed")  # the canary itself was worked on


def test_batches_within_the_threshold_all_run(hosts):
    hosts.exec("web1", "touch /tmp/opsfix-test-broken")
    run = run_playbook(
        hosts,
        "apply",
        HOSTS,
        "--plugins",
        PLUGINS,
        "--serial",
        "2",
        "--max-fail-percentage",
        "50",
        playbook=BOOK,
    )
    assert run.returncode == 2, run  # web1 still fails its canary check
    statuses = {h["host"]: h["status"] for h in run.report["hosts"]}
    assert statuses == {
        "web1": "failed",
        "web2": "repaired",
        "web3": "repaired",
        "web4": "repaired",
    }


def test_two_runs_at_once_never_both_act_on_one_host(hosts):
    def apply():
        return run_playbook(hosts, "apply", ["web2"], "--plugins", PLUGINS, playbook=BOOK)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(apply)
        time.sleep(0.2)
        second = pool.submit(apply)
        runs = [first.result(), second.result()]
    acts = hosts.exec("web2", "cat /tmp/opsfix-test-acts").stdout.split("\n")
    starts = [line for line in acts if line.startswith("start")]
    assert len(starts) == 1, acts  # one run acted; the other waited, re-checked, left it
    assert sorted(r.host("web2")["status"] for r in runs) == ["healthy", "repaired"]
    assert all(r.returncode == 0 for r in runs), runs
    assert not exists(hosts, "web2", LOCK_PATH)  # released


def test_a_host_held_too_long_is_reported_locked_and_left_alone(hosts):
    # a lease held by a live run elsewhere: this run waits, gives up, never acts
    holder = f"other-run someone elsewhere 1 {int(time.time())}"
    hosts.exec("web3", f"mkdir -p {LOCK_DIR} && echo '{holder}' > {LOCK_PATH}")
    try:
        run = run_playbook(
            hosts, "apply", ["web3"], "--plugins", PLUGINS, "--lock-wait", "1", playbook=BOOK
        )
    finally:
        hosts.exec("web3", f"rm -f {LOCK_PATH}")
    assert run.returncode == 2, run
    assert "locked by run other-run by someone@elsewhere" in run.host("web3")["reason"]
    assert not exists(hosts, "web3", "/tmp/opsfix-test-fixed")


WINDOWS = DATA / "windows.yml"
GENTLE = "/tmp/opsfix-test-gentle"


def test_disruptive_repair_outside_a_window_is_deferred_gentle_one_runs(hosts):
    hosts.exec("web1", f"rm -f {GENTLE}")
    run = run_playbook(hosts, "apply", ["web1"], "--plugins", PLUGINS, playbook=WINDOWS)
    assert run.returncode == 2, run
    host = run.host("web1")
    assert host["status"] == "deferred", run
    [deferred] = host["steps"][0]["remediations"]
    assert deferred["status"] == "deferred"
    assert "outside every maintenance window" in deferred["reason"]
    assert "next allowed" in deferred["reason"] and "01-01 00:00 UTC" in deferred["reason"]
    assert not exists(hosts, "web1", "/tmp/opsfix-test-fixed")  # deferred: not touched
    assert exists(hosts, "web1", GENTLE)  # not disruptive: done anyway
    hosts.exec("web1", f"rm -f {GENTLE}")


def test_defer_ok_accepts_a_host_whose_only_problem_waits_for_its_window(hosts):
    run = run_playbook(
        hosts, "apply", ["web1"], "--plugins", PLUGINS, "--defer-ok", playbook=WINDOWS
    )
    assert run.returncode == 0, run
    assert run.host("web1")["status"] == "deferred"
    hosts.exec("web1", f"rm -f {GENTLE}")


def test_override_window_runs_it_and_records_why(hosts):
    run = run_playbook(
        hosts,
        "apply",
        ["web1"],
        "--plugins",
        PLUGINS,
        "--override-window",
        "--reason",
        "INC-42 site down",
        playbook=WINDOWS,
    )
    assert run.returncode == 0, run
    host = run.host("web1")
    assert host["status"] == "repaired"
    [applied] = host["steps"][0]["remediations"]
    assert applied["status"] == "applied"
    assert "overridden: INC-42 site down" in applied["reason"]
    assert exists(hosts, "web1", "/tmp/opsfix-test-fixed")
    hosts.exec("web1", f"rm -f {GENTLE}")
    missing = opsfix_cli("apply", WINDOWS, "-i", hosts.inventory_path, "--override-window")
    assert missing.returncode == 5 and "--reason" in missing.stderr


FLAP = DATA / "flap.yml"


def test_flap_guard_stops_repairing_a_step_that_keeps_breaking(hosts, tmp_path):
    def broken_then_apply(*extra):
        hosts.exec("web1", f"rm -f {GENTLE}")
        return run_playbook(
            hosts, "apply", ["web1"], "--plugins", PLUGINS, *extra, playbook=FLAP, home=tmp_path
        )

    for _ in range(2):
        run = broken_then_apply()
        assert run.returncode == 0 and run.host("web1")["status"] == "repaired", run
    third = broken_then_apply()
    assert third.returncode == 2, third
    [refused] = third.host("web1")["steps"][1]["remediations"]
    assert refused["status"] == "refused"
    assert "flap guard: 'gentle fix needed' was repaired 2 time(s) on web1" in refused["reason"]
    assert "escalate to a person" in refused["reason"]
    assert not exists(hosts, "web1", GENTLE)
    assert not exists(hosts, "web1", LOCK_PATH)  # a refusal gives the host back
    override = run_playbook(
        hosts,
        "apply",
        ["web1"],
        "--plugins",
        PLUGINS,
        "--no-flap-guard",
        playbook=FLAP,
        home=tmp_path,
    )
    assert override.returncode == 0 and exists(hosts, "web1", GENTLE), override
    hosts.exec("web1", f"rm -f {GENTLE}")


def test_retry_failed_targets_exactly_the_previous_failures(hosts, tmp_path):
    for name in ("web1", "web2", "web3"):
        hosts.exec(name, f"touch {GENTLE}")
    hosts.exec("web2", "touch /tmp/opsfix-test-broken")
    fresh = run_playbook(
        hosts,
        "apply",
        ["web1", "web2", "web3"],
        "--plugins",
        PLUGINS,
        "--retry-failed",
        playbook=FLAP,
        home=tmp_path,
    )
    assert fresh.returncode == 5 and "no recorded run" in fresh.stderr, fresh
    first = run_playbook(
        hosts,
        "apply",
        ["web1", "web2", "web3"],
        "--plugins",
        PLUGINS,
        playbook=FLAP,
        home=tmp_path,
    )
    assert first.returncode == 2
    assert {h["host"]: h["status"] for h in first.report["hosts"]}["web2"] == "failed"
    hosts.exec("web2", "rm -f /tmp/opsfix-test-broken")
    retry = run_playbook(
        hosts,
        "apply",
        ["web1", "web2", "web3"],
        "--plugins",
        PLUGINS,
        "--retry-failed",
        playbook=FLAP,
        home=tmp_path,
    )
    assert retry.returncode == 0, retry
    assert [h["host"] for h in retry.report["hosts"]] == ["web2"]
    for name in ("web1", "web2", "web3"):
        hosts.exec(name, f"rm -f {GENTLE}")
