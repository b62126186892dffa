"""`opsfix apply playbooks/disk_pressure.yml` on lab hosts whose 16 MiB tmpfs /var/log is
filled with real files: old and recent rotations, a live log, one rotation held open by a
process, a symlink out of /var/log. Afterwards exactly the old, unheld rotations are gone,
byte for byte everything else is as it was, and the held file and its process survive.
Growth: two real runs with a folder grown in between see the rate.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from opsfix.evidence.state import open_store
from opsfix.lab import Lab

from .helpers import REPO, opsfix_with_state, tree

pytestmark = pytest.mark.integration

PLAYBOOK = REPO / "playbooks" / "disk_pressure.yml"
MIB = 1024 * 1024

FILL = """
set -e
mkdir -p /var/log/app
cd /var/log/nginx
head -c 3000000 /dev/urandom > access.log.2.gz
head -c 2000000 /dev/urandom > access.log.3.gz
head -c 1500000 /dev/urandom > error.log.4.gz
head -c 200000 /dev/urandom > access.log.1
head -c 1000000 /dev/zero > /var/log/app/app.log.1
head -c 7800000 /dev/zero > /var/log/app/app.log
ln -s /etc/passwd /var/log/app/passwd.1
touch -d '10 days ago' *.gz /var/log/app/app.log.1 /var/log/app/app.log
touch -h -d '10 days ago' /var/log/app/passwd.1
touch -d '2 days ago' access.log.1
"""
HOLD = (
    "setsid sh -c 'exec 3</var/log/nginx/access.log.3.gz; exec sleep 600' "
    ">/dev/null 2>&1 </dev/null & sleep 0.3; pgrep -x -n sleep"
)


run = opsfix_with_state


def logs(lab: Lab, host: str, *roots: str) -> dict[str, str]:
    """`tree` of the roots, without journald's files: it writes them as it logs, whatever
    a run does (systemd hosts keep their journal in /var/log/journal)."""
    return {p: v for p, v in tree(lab, host, *roots).items() if "/var/log/journal/" not in p}


def used_percent(lab: Lab, host: str) -> float:
    fields = lab.exec(host, "df -Pk /var/log | tail -n 1").stdout.split()
    return 100 * int(fields[2]) / (int(fields[2]) + int(fields[3]))


@pytest.fixture
def filled(clean_lab: Lab):
    """web1..web3 with full /var/log and a held-open rotation; restored afterwards."""
    hosts = ["web1", "web2", "web3"]
    holders = {}
    for host in hosts:
        clean_lab.exec(host, FILL)
        holders[host] = clean_lab.exec(host, HOLD).stdout.split()[0]
    try:
        yield clean_lab, holders
    finally:
        for host, pid in holders.items():
            clean_lab.exec(host, f"kill {pid}", check=False)
            clean_lab.reset(host)


def test_cleanup_removes_exactly_the_old_rotations_nobody_holds(filled, tmp_path):
    lab, holders = filled
    before = logs(lab, "web1", "/var/log", "/etc/passwd")
    assert used_percent(lab, "web1") > 90

    done = run(
        "apply",
        PLAYBOOK,
        "-i",
        lab.inventory_path,
        "--limit",
        "web1",
        "--format",
        "json",
        state=tmp_path,
    )

    assert done.returncode == 0, str(done)
    [host] = done.report["hosts"]
    assert host["status"] == "repaired"
    [clean] = host["steps"][0]["remediations"]
    assert clean["remediation"] == "clean_logs" and clean["status"] == "applied"
    gone = {
        "/var/log/nginx/access.log.2.gz",
        "/var/log/nginx/error.log.4.gz",
        "/var/log/app/app.log.1",
    }
    after = logs(lab, "web1", "/var/log", "/etc/passwd")
    assert set(before) - set(after) == gone
    assert {p: v for p, v in before.items() if p not in gone} == after  # byte for byte
    assert lab.exec("web1", f"kill -0 {holders['web1']}", check=False).returncode == 0
    # the numbers: 5.5 MB (5.3 MiB) of rotations freed, from over 90% to under the 80% target
    summary = clean["reason"].splitlines()
    assert summary[0].startswith(
        "remove 3 rotated log(s) older than 7 days under /var/log, freeing 5.3 MiB; "
    )
    assert "% used (target under 80%)" in summary[0]
    assert sorted(line.split()[0] for line in summary[1:4]) == sorted(gone)
    assert summary[4] == "  kept 1 held open: /var/log/nginx/access.log.3.gz"
    assert used_percent(lab, "web1") < 80
    assert host["steps"][0]["after"]["status"] == "passed"


def test_the_dry_run_lists_every_file_and_changes_nothing(filled, tmp_path):
    lab, _ = filled
    before = logs(lab, "web2", "/var/log")
    done = run(
        "apply", "--check", PLAYBOOK, "-i", lab.inventory_path, "--limit", "web2", state=tmp_path
    )
    assert done.returncode == 2, str(done)
    out = done.stdout
    assert "-> clean_logs: would change: remove 3 rotated log(s)" in out
    for path in (
        "/var/log/nginx/access.log.2.gz",
        "/var/log/nginx/error.log.4.gz",
        "/var/log/app/app.log.1",
    ):
        assert f"           {path} (" in out
        # compressed logs are summarised by size, never pulled over SSH to be diffed
        assert path.endswith(".1") or "bytes, binary or too large to show)" in out
    assert "kept 1 held open: /var/log/nginx/access.log.3.gz" in out
    assert logs(lab, "web2", "/var/log") == before


def test_not_enough_to_free_keeps_what_is_safe_and_says_what_would_help(filled, tmp_path):
    lab, _ = filled
    book = tmp_path / "tight.yml"
    book.write_text(
        "hosts: web3\nchecks:\n  - name: disk\n    check: disk_usage\n"
        "    with: {warn_percent: 40, critical_percent: 50}\n    remediate:\n"
        "      - remediation: clean_logs\n        with: {target_percent: 40}\n"
    )
    done = run("apply", book, "-i", lab.inventory_path, "--format", "json", state=tmp_path)
    assert done.returncode == 2, str(done)
    [host] = done.report["hosts"]
    [clean] = host["steps"][0]["remediations"]
    assert host["status"] == "failed" and clean["status"] == "partial"
    assert ": NOT under 40% (needs " in clean["reason"]
    assert "the largest live file is /var/log/app/app.log (7.4 MiB)" in clean["reason"]
    assert "re-check still fails" in clean["reason"]
    listing = lab.exec("web3", "ls /var/log/nginx /var/log/app").stdout.split()
    assert (
        "access.log.2.gz" not in listing and "app.log" in listing and "access.log.3.gz" in listing
    )


@pytest.mark.parametrize(
    "with_, message",
    [
        ("{folders: [/etc]}", "folder '/etc' is outside the allowed roots (/var/log)"),
        ("{patterns: ['*.log']}", "would match live logs"),
        ("{target_percent: 150}", "less than or equal to 100"),
    ],
)
def test_bad_input_is_refused_before_any_host_is_contacted(lab, tmp_path, with_, message):
    book = tmp_path / "bad.yml"
    book.write_text(
        "hosts: web1\nchecks:\n  - check: disk_usage\n    remediate:\n"
        f"      - remediation: clean_logs\n        with: {with_}\n"
    )
    done = run("apply", book, "-i", lab.inventory_path, state=tmp_path)
    assert done.returncode == 4, str(done)
    assert message in done.stderr and "bad.yml:6:" in done.stderr


def test_thresholds_out_of_range_exit_4(lab, tmp_path):
    book = tmp_path / "bad.yml"
    book.write_text(
        "hosts: web1\nchecks:\n  - check: disk_usage\n    with: {critical_percent: 150}\n"
    )
    done = run("check", book, "-i", lab.inventory_path, state=tmp_path)
    assert done.returncode == 4 and "critical_percent" in done.stderr, str(done)


def test_growth_between_two_real_runs_is_seen(clean_lab, tmp_path):
    lab = clean_lab
    book = tmp_path / "growth.yml"
    book.write_text(
        "hosts: web4\nchecks:\n  - name: growth\n    check: var_growth\n"
        "    with: {path: /var/log, min_span_hours: 0, depth: 1}\n"
    )
    first = run("check", book, "-i", lab.inventory_path, "--format", "json", state=tmp_path)
    assert first.returncode == 0, str(first)
    assert first.report["hosts"][0]["steps"][0]["before"]["summary"].startswith("baseline recorded")
    try:
        lab.exec(
            "web4", "mkdir -p /var/log/growing && head -c 4000000 /dev/zero > /var/log/growing/x"
        )
        time.sleep(1.0)
        second = run("check", book, "-i", lab.inventory_path, "--format", "json", state=tmp_path)
    finally:
        lab.exec("web4", "rm -rf /var/log/growing")
    assert second.returncode == 2, str(second)
    verdict = second.report["hosts"][0]["steps"][0]["before"]
    assert verdict["status"] == "failed"
    assert verdict["summary"].startswith("/var/log fills its filesystem in 0.")
    assert verdict["evidence"]["fastest_growing"][0].startswith("/var/log/growing +")
    assert verdict["evidence"]["samples"] == 2
    store = open_store(tmp_path / "opsfix.db")
    samples = store.growth_samples("web4", "/var/log")
    assert len(samples) == 2 and samples[1].total - samples[0].total >= 4_000_000
    assert 0.5 < samples[1].taken_at - samples[0].taken_at < 60
    assert oct(os.stat(tmp_path / "opsfix.db").st_mode & 0o777) == "0o600"
    assert json.loads(second.stdout)["mode"] == "check"
