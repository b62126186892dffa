"""`opsfix schedule --install` on a real systemd host: the timer is listed, fires at the
window's start, and the run lands in that controller's history; a firing while a run
holds the lock is skipped. The cron variant fires the same way, from the host's cron.

The controllers are systemd lab hosts that see this checkout and its virtualenv read-only
(`binds`), so the opsfix they run is this one. Each applies a small playbook to itself over
SSH, as a controller would to any host. The window opens at the next full minute (cron's
and OnCalendar's granularity), the same for both, so the tests wait for one real firing:
up to about 80 s.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsfix.lab import Lab, down, up

from .conftest import lab_unavailable, side_lab
from .helpers import REPO

pytestmark = pytest.mark.integration

CTL = "/etc/opsfix-ctl"  # the controller's inventory, key, known_hosts and playbook
OPSFIX = str(Path(sys.executable).with_name("opsfix"))
HISTORY = f"{OPSFIX} history --format json --limit 0"


@pytest.fixture(scope="module")
def controllers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two systemd hosts that can run this opsfix: web1 (timer), web2 (cron)."""
    reason = lab_unavailable("systemd")
    if reason:
        pytest.skip(reason)
    name, subnet = side_lab("ctl", 4)
    state_dir = tmp_path_factory.getbasetemp().parent / f"opsfix-lab-{name}"
    down(state_dir)
    folders = {REPO, Path(sys.prefix), Path(sys.base_prefix)}
    binds = sorted(f for f in folders if f != Path("/usr") and not _inside(f, folders - {f}))
    built = up(2, state_dir=state_dir, name=name, subnet=subnet, kind="systemd", binds=binds)
    try:
        yield built
    finally:
        down(state_dir)


@pytest.fixture(scope="module")
def installed(controllers: Lab) -> dict[str, object]:
    """`opsfix schedule --install`: a timer on web1, a cron.d file on web2, one window."""
    window = next_window()
    for host in ("web1", "web2"):
        make_controller(controllers, host, window)
    timer = schedule(controllers, "web1", "--install")
    cron = schedule(controllers, "web2", "--kind", "cron", "--install")
    return {"window": window, "web1": timer, "web2": cron}


def _inside(folder: Path, others: set[Path]) -> bool:
    return any(folder.is_relative_to(other) for other in others)


def make_controller(lab: Lab, host: str, window: datetime) -> None:
    """The host's own inventory (itself, over SSH), key and a playbook with a window."""
    address = lab.hosts[host]
    files = {
        "id_ed25519": lab.private_key_path.read_text(),
        "known_hosts": lab.known_hosts_path.read_text(),
        "inventory.yml": (
            f"web:\n  hosts:\n    {host}:\n      ansible_host: {address}\n"
            f"      ansible_user: root\n      ansible_ssh_private_key_file: {CTL}/id_ed25519\n"
            f"      opsfix_known_hosts_file: {CTL}/known_hosts\n"
        ),
        "site.yml": json.dumps(
            {
                "name": "site",
                "hosts": "web",
                "windows": [
                    {
                        "name": "test",
                        "cron": f"{window.minute} {window.hour} * * *",
                        "duration": "10m",
                        "timezone": "UTC",
                    }
                ],
                "checks": [
                    {"name": "site up", "check": "http", "with": {"url": "http://127.0.0.1/"}}
                ],
            }
        ),
    }
    lab.exec(host, f"install -d -m 0700 {CTL}")
    for name, text in files.items():
        lab.exec(host, f"umask 077 && cat > {CTL}/{name}", input=text)


def next_window(margin: float = 20.0) -> datetime:
    """The next full minute at least `margin` seconds away (time to install first)."""
    now = datetime.now(UTC)
    start = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return start if (start - now).total_seconds() >= margin else start + timedelta(minutes=1)


def history(lab: Lab, host: str) -> list[dict[str, object]]:
    return list(json.loads(lab.exec(host, f"cd {CTL} && {HISTORY}").stdout))


def wait_for_run(lab: Lab, host: str, until: datetime, known: int) -> list[dict[str, object]]:
    deadline = (until - datetime.now(UTC)).total_seconds() + 60
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        runs = history(lab, host)
        if len(runs) > known:
            return runs
        time.sleep(1)
    what = "systemctl list-timers --all --no-pager; systemctl status --no-pager opsfix-site"
    seen = lab.exec(host, f"{what}; journalctl -n 40 --no-pager", check=False).stdout
    raise AssertionError(f"{host}: no run recorded by {until:%H:%M:%S} + 60 s:\n{seen}")


def schedule(lab: Lab, host: str, *args: str) -> str:
    argv = [OPSFIX, "schedule", f"{CTL}/site.yml", "-i", f"{CTL}/inventory.yml", *args]
    return lab.exec(host, f"cd {CTL} && {shlex.join(argv)}").stdout


def test_a_timer_installed_by_schedule_fires_and_records_a_run(
    controllers: Lab, installed: dict[str, Any]
) -> None:
    lab, window, out = controllers, installed["window"], installed["web1"]
    assert "enabled and started opsfix-site.timer" in out, out
    timer = lab.exec("web1", "systemctl cat opsfix-site.timer").stdout
    assert f"OnCalendar=*-*-* {window:%H:%M}:00 UTC" in timer, timer
    listed = lab.exec("web1", "systemctl list-timers opsfix-site.timer --no-pager").stdout
    assert f"{window:%Y-%m-%d %H:%M}:00 UTC" in listed, listed

    runs = wait_for_run(lab, "web1", window, known=0)

    [run] = runs
    assert run["playbook"] == "site" and run["mode"] == "apply", run
    assert run["exit_code"] == 0 and run["hosts"] == {"healthy": 1}, run
    assert float(run["started"]) >= window.timestamp()  # type: ignore[arg-type]
    service = "systemctl show opsfix-site.service --property=Result,ExecMainStatus"
    assert lab.exec("web1", service).stdout.split() == ["Result=success", "ExecMainStatus=0"]


def test_a_firing_while_a_run_holds_the_lock_is_skipped(
    controllers: Lab, installed: dict[str, Any]
) -> None:
    """The lock the service takes is held (as by a run still under way): the service
    ends at once with flock's 75, counted a success, and no run is recorded."""
    lab = controllers
    known = len(history(lab, "web1"))
    hold = "setsid flock -o /run/lock/opsfix-site.lock sleep 30 >/dev/null 2>&1 </dev/null &"
    lab.exec("web1", f"{hold} sleep 0.3")
    try:
        lab.exec("web1", "systemctl start opsfix-site.service")
        state = lab.exec("web1", "systemctl show opsfix-site.service -p ExecMainStatus,Result")
        assert state.stdout.split() == ["Result=success", "ExecMainStatus=75"], state.stdout
        assert len(history(lab, "web1")) == known
    finally:
        lab.exec("web1", "pkill -f 'flock -o /run/lock/opsfix-site.lock'", check=False)
    lab.exec("web1", "systemctl start opsfix-site.service")  # free again: it runs
    assert len(history(lab, "web1")) == known + 1


def test_a_cron_file_installed_by_schedule_fires_and_records_a_run(
    controllers: Lab, installed: dict[str, Any]
) -> None:
    lab, window, out = controllers, installed["window"], installed["web2"]
    assert lab.exec("web2", "systemctl is-active cron").stdout.strip() == "active"
    assert "wrote /etc/cron.d/opsfix-site" in out, out
    line = lab.exec("web2", "grep -v '^#' /etc/cron.d/opsfix-site | grep flock").stdout
    assert line.startswith(f"{window.minute} {window.hour} * * * root "), line

    runs = wait_for_run(lab, "web2", window, known=0)

    [run] = runs
    assert run["playbook"] == "site" and run["exit_code"] == 0, run
    assert float(run["started"]) >= window.timestamp()  # type: ignore[arg-type]
    cron_log = lab.exec("web2", "journalctl -u cron --no-pager -o cat").stdout
    assert "opsfix-site.lock" in cron_log, cron_log
