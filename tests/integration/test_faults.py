"""The fault matrix on lab hosts: what opsfix does when hosts, networks and runs misbehave.

Each case runs the real CLI and judges it by what the operator sees (exit code and
message) and by the state of every host afterwards, read through `lab.exec` or, for a
host that died, straight from its overlay folder on the controller. Faults that end a
host (its sshd is the PID 1 of its PID namespace) or take its cable down run on a small
lab of their own, built and taken down by the test.

Covered elsewhere and not repeated here (see docs/reliability.md): a host unreachable
from the start, unknown and changed host keys, exit codes 4/5/99/250
(test_cli_integration.py); two runs at once and a host held by another run
(test_change_safety.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.engine.lock import LOCK_PATH
from opsfix.lab import Lab, down, up
from opsfix.lab.state import LabPaths, LabRecord

from .conftest import lab_unavailable, side_lab
from .helpers import (
    DATA,
    Run,
    break_host,
    config_ok,
    log_marks,
    log_since,
    reset_hosts,
    run_playbook,
    start,
    watched,
)

pytestmark = pytest.mark.integration

FAULTS = DATA / "faults"
SLOW_WRITE = FAULTS / "slow_write.yml"
PAUSE = FAULTS / "pause.yml"
FAULT_DIR = "/var/lib/opsfix-faults"
TARGET = f"{FAULT_DIR}/target.conf"
ACTS = f"{FAULT_DIR}/acts"
LOCK = LOCK_PATH
STATE = "/var/lib/opsfix/tx"
FORGET = f"rm -rf {FAULT_DIR} /var/lib/opsfix /var/backups/opsfix; rm -f {LOCK} {LOCK}.guard"
OLD, NEW = "old\n", "new\n"


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def hosts(clean_lab: Lab) -> Iterator[Lab]:
    """The session lab, pristine, each host with the fault target holding OLD."""
    for host in clean_lab.hosts:
        clean_lab.exec(
            host,
            f"{FORGET}; mkdir -p {FAULT_DIR} && printf old > {TARGET}.tmp "
            f"&& echo old > {TARGET} && rm {TARGET}.tmp",
        )
    yield clean_lab
    for host in clean_lab.hosts:
        clean_lab.exec(host, FORGET, check=False)
    reset_hosts(clean_lab)


@pytest.fixture
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A 2-host lab of this test's own, for faults that end a host or cut its cable."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    name, subnet = side_lab("flt", 9)
    state_dir = tmp_path_factory.getbasetemp().parent / f"opsfix-lab-{name}"
    down(state_dir)  # left behind by a crashed session
    lab = up(2, state_dir=state_dir, name=name, subnet=subnet)
    try:
        for host in lab.hosts:
            lab.exec(host, f"mkdir -p {FAULT_DIR} && echo old > {TARGET}")
        yield lab
    finally:
        down(state_dir)


def record(lab: Lab) -> LabRecord:
    return LabRecord.load(LabPaths(lab.state_dir))


def cat(lab: Lab, host: str, path: str) -> str | None:
    done = lab.exec(host, f"cat {path}", check=False)
    return done.stdout if done.returncode == 0 else None


def journal(lab: Lab, host: str) -> dict[str, str]:
    """Each transaction on the host and the last state its journal reached."""
    out = lab.exec(
        host,
        f'for d in {STATE}/*/; do [ -f "$d/state" ] && '
        'echo "$(basename "$d") $(cat "$d/state")"; done; true',
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def leftovers(lab: Lab, host: str) -> list[str]:
    """Temporary files of a swap or a restore left beside the target."""
    return lab.exec(host, f"ls -A {FAULT_DIR} | grep '^\\.opsfix-' || true").stdout.split()


def wait_for_act(lab: Lab, host: str, process: subprocess.Popen[str], timeout: float = 20) -> None:
    """Wait until the slow act has started on `host`."""
    deadline = time.monotonic() + timeout
    while "start" not in (cat(lab, host, ACTS) or ""):
        assert process.poll() is None, f"opsfix ended early: {process.communicate()}"
        assert time.monotonic() < deadline, f"the act never started on {host}"
        time.sleep(0.05)


def finish(process: subprocess.Popen[str], argv: list[str], began: float, timeout: float) -> Run:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Run(argv, process.returncode, stdout, stderr, time.monotonic() - began)


def slow_apply(
    lab: Lab, hosts: list[str], *extra: str, home: Path
) -> tuple[subprocess.Popen[str], list[str], float]:
    args = [
        "apply",
        str(SLOW_WRITE),
        "-i",
        str(lab.inventory_path),
        "--limit",
        ":".join(hosts),
        "--format",
        "json",
        *extra,
    ]
    return start(args, home=home), ["opsfix", *args], time.monotonic()


def inventory_with(lab: Lab, path: Path, extra_hosts: dict[str, dict[str, Any]]) -> Path:
    """The lab's inventory plus hosts (name -> host vars) that may point at lab addresses."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["all"]["children"]["web"]["hosts"].update(extra_hosts)
    path.write_text(yaml.safe_dump(inventory))
    return path


# -- a host's sshd dies in the middle of a change ----------------------------------------


def test_a_host_whose_sshd_dies_mid_change_is_reported_and_left_whole(
    small_lab: Lab, tmp_path: Path
) -> None:
    lab = small_lab
    process, argv, began = slow_apply(lab, ["web1", "web2"], "-e", "act_seconds=3", home=tmp_path)
    wait_for_act(lab, "web1", process)
    os.kill(record(lab).pids["web1"], signal.SIGKILL)  # the host's PID 1: the whole host goes
    run = finish(process, argv, began, timeout=30)

    assert run.returncode == 3, str(run)
    gone = run.host("web1")
    assert gone["status"] == "unreachable", str(run)
    assert "connection lost" in gone["reason"]
    assert run.host("web2")["status"] == "repaired"
    assert run.seconds < 15, str(run)
    assert cat(lab, "web2", TARGET) == NEW
    assert not lab.status()[0].sshd_answering
    # the dead host's /var survives in its overlay on the controller: a whole file, old or
    # new, its backup, and a journal that the next apply would restore from
    var = LabPaths(lab.state_dir).host("web1") / "var-upper"
    assert (var / TARGET.removeprefix("/var/")).read_text() in (OLD, NEW)
    [tx] = (var / "lib/opsfix/tx").iterdir()
    assert (tx / "state").read_text().strip() in ("swapping", "acting")
    backup = var / "backups/opsfix" / tx.name / TARGET.lstrip("/")
    assert backup.read_text() == OLD
    assert not [p for p in (var / "lib/opsfix-faults").iterdir() if p.name.startswith(".opsfix")]


# -- the network is cut in the middle of a change ----------------------------------------


def test_a_cut_network_mid_change_fails_the_host_and_the_next_run_recovers(
    small_lab: Lab, tmp_path: Path
) -> None:
    lab = small_lab
    cable = record(lab).plan.hosts[0].veth  # web1's end in the root namespace
    timeout = ["--command-timeout", "4", "--timeout", "2"]
    process, argv, began = slow_apply(
        lab, ["web1", "web2"], "-e", "act_seconds=2", *timeout, home=tmp_path
    )
    wait_for_act(lab, "web1", process)
    subprocess.run(["ip", "link", "set", cable, "down"], check=True)
    try:
        run = finish(process, argv, began, timeout=40)
    finally:
        subprocess.run(["ip", "link", "set", cable, "up"], check=True)

    assert run.returncode in (2, 3), str(run)
    cut = run.host("web1")
    assert cut["status"] in ("failed", "unreachable"), str(run)
    assert "timed out" in cut["reason"] or "connection lost" in cut["reason"], cut
    other = run.host("web2")
    assert other["status"] == "repaired" and other["duration"] < 4, str(run)
    # the host finished the swap and the act on its own: whole, and still unconfirmed
    assert cat(lab, "web1", TARGET) in (OLD, NEW)
    assert leftovers(lab, "web1") == []
    assert set(journal(lab, "web1").values()) <= {"acting", "applied"}

    again = run_playbook(lab, "apply", ["web1"], "--timeout", "5", playbook=SLOW_WRITE)

    assert again.returncode == 0, str(again)
    host = again.host("web1")
    assert host["status"] == "repaired", str(again)
    assert any("restored 1 path(s) of unfinished transaction" in n for n in host["notes"])
    assert cat(lab, "web1", TARGET) == NEW
    assert sorted(journal(lab, "web1").values()) == ["committed", "recovered"]
    assert cat(lab, "web1", ACTS) == "start\nend\nrollback\nstart\nend\n"
    assert cat(lab, "web1", LOCK) is None


# -- authentication refused ----------------------------------------------------------------


def test_a_refused_key_makes_the_host_unreachable_and_the_others_are_repaired(
    hosts: Lab, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    inventory = inventory_with(
        hosts,
        tmp_path / "inventory.yml",
        {
            "web1-wrong-key": {
                "ansible_host": hosts.hosts["web1"],
                "ansible_ssh_private_key_file": str(wrong),
            },
        },
    )
    break_host(hosts, "web1", ["index_deleted"])
    break_host(hosts, "web2", ["index_deleted"])
    before = watched(hosts, "web1")
    marks = log_marks(hosts)

    run = run_playbook(hosts, "apply", ["web1-wrong-key", "web2"], inventory=inventory)

    assert run.returncode == 3, str(run)
    refused = run.host("web1-wrong-key")
    assert refused["status"] == "unreachable" and refused["steps"] == []
    assert refused["reason"] == "authentication failed for user root"
    assert run.host("web2")["status"] == "repaired"
    assert "Accepted publickey" not in log_since(hosts, "web1", marks)
    assert watched(hosts, "web1") == before


# -- a command that hangs -------------------------------------------------------------------


def test_a_hung_command_fails_its_host_alone_within_its_timeout(hosts: Lab, tmp_path: Path) -> None:
    inventory = inventory_with(
        hosts,
        tmp_path / "inventory.yml",
        {
            "web1": {"ansible_host": hosts.hosts["web1"], "pause_seconds": 300},
            **{
                h: {"ansible_host": a, "pause_seconds": 0.5}
                for h, a in hosts.hosts.items()
                if h != "web1"
            },
        },
    )
    limit = 3

    run = run_playbook(
        hosts,
        "check",
        hosts.hosts,
        "--command-timeout",
        str(limit),
        playbook=PAUSE,
        inventory=inventory,
    )

    assert run.returncode == 2, str(run)
    hung = run.host("web1")
    assert hung["status"] == "failed"
    assert hung["reason"] == f"web1: command timed out after {limit}s"
    for host in ("web2", "web3", "web4"):
        fine = run.host(host)
        assert fine["status"] == "healthy", str(run)
        assert fine["duration"] < limit, f"{host} was held up by web1: {fine['duration']:.1f}s"
    assert hung["duration"] < limit + 1.5, str(run)
    assert run.seconds < limit + 5, str(run)  # the run waits for nothing but web1's limit
    # the host stops the command itself (closing a channel would not)
    deadline = time.monotonic() + 5
    while hosts.exec("web1", "pgrep -x -f 'sleep 300'", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the hung command still runs on web1"
        time.sleep(0.2)


# -- sudo with a wrong password -------------------------------------------------------------

SUDO_USER = "opsfault"
ADD_USER = f"""
useradd -M -d /tmp/{SUDO_USER} -s /bin/sh {SUDO_USER}
echo '{SUDO_USER}:right-password-17' | chpasswd
echo '{SUDO_USER} ALL=(ALL) ALL' > /etc/sudoers.d/{SUDO_USER}
chmod 0440 /etc/sudoers.d/{SUDO_USER}
install -d -o {SUDO_USER} -m 0700 /tmp/{SUDO_USER} /tmp/{SUDO_USER}/.ssh
install -o {SUDO_USER} -m 0600 /root/.ssh/authorized_keys /tmp/{SUDO_USER}/.ssh/
"""
REMOVE_USER = f"userdel {SUDO_USER}; rm -rf /etc/sudoers.d/{SUDO_USER} /tmp/{SUDO_USER}"


@pytest.fixture
def sudo_user(hosts: Lab) -> Iterator[str]:
    """A user on web3 (its /etc is its own overlay) who may sudo with a password."""
    hosts.exec("web3", REMOVE_USER, check=False)
    hosts.exec("web3", ADD_USER)
    yield SUDO_USER
    hosts.exec("web3", REMOVE_USER, check=False)


def test_sudo_with_a_wrong_password_fails_the_host_with_a_plain_reason(
    hosts: Lab, sudo_user: str, tmp_path: Path
) -> None:
    password = "wrong-password-93"
    inventory = inventory_with(
        hosts,
        tmp_path / "inventory.yml",
        {
            "web3-sudo": {
                "ansible_host": hosts.hosts["web3"],
                "ansible_user": sudo_user,
                "ansible_become": True,
                "ansible_become_password": password,
            },
        },
    )
    break_host(hosts, "web3", ["index_deleted"])
    break_host(hosts, "web4", ["index_deleted"])
    before = watched(hosts, "web3")

    run = run_playbook(hosts, "apply", ["web3-sudo", "web4"], inventory=inventory)

    assert run.returncode == 2, str(run)
    refused = run.host("web3-sudo")
    assert refused["status"] == "failed"
    assert refused["reason"] == "sudo: incorrect password", str(run)
    assert refused["verify"] == []  # nothing to verify on a host it could not even check
    assert run.seconds < 20, str(run)
    assert run.host("web4")["status"] == "repaired"
    assert watched(hosts, "web3") == before
    assert password not in run.stdout + run.stderr


# -- a host without nginx -------------------------------------------------------------------

HIDE_NGINX = """
nginx -s quit; n=0
while pgrep -x nginx >/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done
mkdir -p /tmp/hide/up /tmp/hide/work && mknod /tmp/hide/up/nginx c 0 0
mount -t overlay hide -o lowerdir=/usr/sbin,upperdir=/tmp/hide/up,workdir=/tmp/hide/work /usr/sbin
! test -e /usr/sbin/nginx
"""
SHOW_NGINX = "umount /usr/sbin; rm -rf /tmp/hide"


def test_a_host_without_nginx_is_refused_with_reasons_and_left_alone(hosts: Lab) -> None:
    # /usr is the machine's own: nginx is hidden by a whiteout in web2's mount namespace only
    hosts.exec("web2", HIDE_NGINX)
    try:
        before = watched(hosts, "web2")
        run = run_playbook(hosts, "apply", ["web2", "web1"])
        after = watched(hosts, "web2")
    finally:
        hosts.exec("web2", SHOW_NGINX, check=False)

    assert run.returncode == 2, str(run)
    host = run.host("web2")
    assert host["status"] == "failed"
    steps = {s["name"]: s for s in host["steps"]}
    assert "cannot run nginx" in steps["nginx config is valid"]["before"]["summary"]
    outcomes = [r for s in host["steps"] for r in s["remediations"]]
    assert outcomes and {r["status"] for r in outcomes} <= {"refused", "no_change"}, outcomes
    assert any("no 'nginx' command" in r["reason"] for r in outcomes)
    assert run.host("web1")["status"] == "healthy"
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert all(p.startswith(("/var/lib/opsfix", "/var/backups", LOCK)) for p in changed), changed


# -- a full or read-only /tmp, a read-only state folder -----------------------------------

FILL_TMP = "mount -t tmpfs -o size=64k full /tmp && (dd if=/dev/zero of=/tmp/fill bs=4k || true)"
READ_ONLY_TMP = "mount -t tmpfs -o ro,size=64k ro /tmp"
READ_ONLY_STATE = (
    "mkdir -p /var/lib/opsfix && mount --bind /var/lib/opsfix /var/lib/opsfix && "
    "mount -o remount,bind,ro /var/lib/opsfix"
)


@pytest.mark.parametrize(
    ("fault", "unmount"),
    [(FILL_TMP, "/tmp"), (READ_ONLY_TMP, "/tmp"), (READ_ONLY_STATE, "/var/lib/opsfix")],
    ids=["tmp full", "tmp read-only", "state dir read-only"],
)
def test_staging_that_cannot_be_written_changes_nothing(
    hosts: Lab, fault: str, unmount: str
) -> None:
    break_host(hosts, "web4", ["conf_d_syntax", "index_emptied"])
    hosts.exec("web4", fault, check=False)
    try:
        before = watched(hosts, "web4")
        run = run_playbook(hosts, "apply", ["web4"])
        after = watched(hosts, "web4")
    finally:
        hosts.exec("web4", f"umount {unmount}", check=False)

    assert run.returncode == 2, str(run)
    host = run.host("web4")
    assert host["status"] == "failed", str(run)
    outcomes = [r for s in host["steps"] for r in s["remediations"]]
    assert outcomes and not [r for r in outcomes if r["status"] in ("applied", "rolled_back")]
    for key in [k for k in before if k.startswith(("/etc/nginx", "/var/www"))]:
        assert after.get(key) == before[key], key
    assert not config_ok(hosts, "web4")[0]  # still broken: nothing was swapped in


# -- opsfix killed in the middle of a change ------------------------------------------------


def test_a_killed_run_is_recovered_by_the_next_before_anything_else(
    hosts: Lab, tmp_path: Path
) -> None:
    process, _, _ = slow_apply(hosts, ["web2"], "-e", "act_seconds=3", home=tmp_path)
    wait_for_act(hosts, "web2", process)
    process.kill()  # SIGKILL: no finally, no lock release, no journal update
    process.communicate()
    [first] = journal(hosts, "web2")
    assert journal(hosts, "web2")[first] == "acting"

    # at once, while the dead run's act may still be running on the host
    again = run_playbook(hosts, "apply", ["web2"], playbook=SLOW_WRITE)

    assert again.returncode == 0, str(again)
    host = again.host("web2")
    assert host["status"] == "repaired"
    assert host["notes"][0].startswith(
        f"restored 1 path(s) of unfinished transaction {first} (a previous run stopped while "
    ), host["notes"]
    # the dead run's act ended before the restore, and the restore before the new act
    assert cat(hosts, "web2", ACTS) == "start\nend\nrollback\nstart\nend\n"
    assert cat(hosts, "web2", TARGET) == NEW
    states = journal(hosts, "web2")
    assert states.pop(first) == "recovered" and list(states.values()) == ["committed"]
    for txid in (first, *states):  # every backup kept, each the file as it was before
        assert cat(hosts, "web2", f"/var/backups/opsfix/{txid}{TARGET}") == OLD
    assert leftovers(hosts, "web2") == []
    assert cat(hosts, "web2", LOCK) is None


# -- Ctrl-C while a change is under way ------------------------------------------------------


def test_ctrl_c_during_a_change_lets_it_finish_releases_the_lock_and_exits_99(
    hosts: Lab, tmp_path: Path
) -> None:
    process, argv, began = slow_apply(hosts, ["web3"], "-e", "act_seconds=2", home=tmp_path)
    wait_for_act(hosts, "web3", process)
    assert cat(hosts, "web3", LOCK) is not None
    process.send_signal(signal.SIGINT)
    run = finish(process, argv, began, timeout=20)

    assert run.returncode == 99, str(run)
    assert "Interrupted." in run.stderr
    assert "Traceback" not in run.stderr
    assert cat(hosts, "web3", TARGET) == NEW
    assert cat(hosts, "web3", ACTS) == "start\nend\n"
    assert list(journal(hosts, "web3").values()) == ["committed"]
    assert cat(hosts, "web3", LOCK) is None
    assert leftovers(hosts, "web3") == []


def test_ctrl_c_during_verify_stops_its_tests_and_exits_99(hosts: Lab, tmp_path: Path) -> None:
    """pytest runs beside the engine; Ctrl-C stops it after the test under way, and the
    interruption is still reported (pytest holds sys.stdout and sys.stderr while it runs)."""
    mark = tmp_path / "marks"
    mark.mkdir()
    args = ["apply", str(DATA / "slow_verify.yml"), "-i", str(hosts.inventory_path)]
    args += ["--limit", "web1:web2", "-e", f"verify_mark={mark}"]
    process, began = start(args, home=tmp_path), time.monotonic()
    deadline = began + 30
    while not any(mark.iterdir()):
        assert time.monotonic() < deadline and process.poll() is None, "verify never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    run = finish(process, ["opsfix", *args], began, timeout=20)

    assert run.returncode == 99, str(run)
    assert "Interrupted." in run.stderr, str(run)
    assert "Traceback" not in run.stderr and "lost sys.stderr" not in run.stderr, str(run)
    assert len(list(mark.iterdir())) == 1  # the other host's tests never started
