"""The plugins the drills needed: web_root_access (check), grant_read_access and free_port.

Verdicts and plans are judged on canned output in the real formats (`find -printf`,
`ss -ltnpH`); the shell that acts (chmod, the careful kill) is run for real on scratch
files and a scratch process.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

import pytest

from opsfix import hostfiles
from opsfix.checks.web_root_access import WebRootAccess, WebRootAccessParams
from opsfix.plugin import CheckResult, Plan, RemediationContext
from opsfix.remediations.free_port import FreePort, FreePortParams
from opsfix.remediations.grant_read_access import GrantReadAccess, GrantReadAccessParams
from opsfix.transport.base import CommandResult

WWW_DATA = "U 33\nG 33\n"  # id -u www-data; id -G www-data
PARENTS = "P 755 0 0 d 2 /var/www\nP 755 0 0 d 3 /var\nP 755 0 0 d 20 /\n"
HEALTHY = (
    "T 755 0 0 d 2 /var/www/html\nT 644 0 0 f 1 /var/www/html/index.html\n"
    "T 644 0 0 f 1 /var/www/html/app.js\nT 777 0 0 l 1 /var/www/html/latest\n"
)
UMASK_077 = (
    "T 700 0 0 d 2 /var/www/html\nT 600 0 0 f 1 /var/www/html/index.html\n"
    "T 640 0 33 f 1 /var/www/html/app.js\nT 600 33 33 f 1 /var/www/html/own file.css\n"
)


def result(stdout: str, status: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult("<canned>", 0, listed(stdout, status), stderr)


def listed(text: str, status: int = 0) -> str:
    """What `hostfiles.listing` sends for these records (one a line here)."""
    records = b"".join(line.encode() + b"\0" for line in text.splitlines())
    return base64.b64encode(records + b"\0" + str(status).encode()).decode()


def judge(stdout: str, status: int = 0) -> CheckResult:
    check = WebRootAccess(WebRootAccessParams(root="/var/www/html"))
    return check.evaluate([result(stdout, status)])


def context(tmp_path: Path) -> RemediationContext:
    return RemediationContext("web1", {}, tmp_path, lambda name, v: "")


# -- web_root_access ------------------------------------------------------------------------


def test_a_readable_web_root_passes() -> None:
    verdict = judge(WWW_DATA + PARENTS + HEALTHY)
    assert verdict.status == "passed", verdict


def test_a_umask_077_deploy_fails_naming_what_blocks_www_data() -> None:
    verdict = judge(WWW_DATA + PARENTS + UMASK_077)
    assert verdict.status == "failed"
    assert verdict.summary == "www-data cannot read 2 path(s) of /var/www/html"
    assert verdict.evidence["blocked"] == [
        "/var/www/html (0700 0:0)",
        "/var/www/html/index.html (0600 0:0)",
    ]  # app.js is readable by its group, the css by its owner


def test_a_parent_folder_www_data_cannot_enter_fails() -> None:
    parents = "P 750 0 0 d 2 /var/www\nP 755 0 0 d 2 /var\nP 755 0 0 d 2 /\n"
    verdict = judge(WWW_DATA + parents + HEALTHY)
    assert verdict.status == "failed"
    assert verdict.evidence["blocked"] == ["/var/www (0750 0:0)"]


def test_missing_root_fails_and_an_unknown_user_cannot_tell() -> None:
    assert judge(WWW_DATA + "missing\n").status == "failed"
    assert judge("", status=3).status == "error"
    cut = CommandResult("<canned>", -1, listed(WWW_DATA + HEALTHY)[:-8])
    assert WebRootAccess(WebRootAccessParams(root="/var/www/html")).evaluate([cut]).status == (
        "error"
    )


def test_entries_outside_the_root_or_forged_parents_are_not_judged() -> None:
    forged = "P 700 0 0 d 1 /root\nT 700 0 0 d 1 /root\nT 600 0 0 f 1 /var/www/html/../x\n"
    verdict = judge(WWW_DATA + PARENTS + HEALTHY + forged)
    assert verdict.status == "passed", verdict


def test_the_command_lists_what_the_check_judges_on_a_real_tree(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("x")
    (root / "index.html").chmod(0o600)
    (root / "two\nT 700 0 0 d 1 .").write_text("y")
    check = WebRootAccess(WebRootAccessParams(root=str(root), user="root"))
    done = subprocess.run(["sh", "-c", check.commands()[0]], capture_output=True, text=True)
    records = hostfiles.read_listing(CommandResult("", done.returncode, done.stdout)).records
    assert records[0] == "U 0" and f"T 600 0 0 f 1 {root}/index.html" in records
    assert f"T 644 0 0 f 1 {root}/two\nT 700 0 0 d 1 ." in records
    assert any(r.startswith("P ") and r.endswith(" /") for r in records)
    judged = check.evaluate([CommandResult("", done.returncode, done.stdout)])
    assert judged.status == "passed"


# -- grant_read_access ------------------------------------------------------------------


def plan_access(tmp_path: Path, stdout: str, status: int = 0) -> Plan:
    rem = GrantReadAccess(GrantReadAccessParams(root="/var/www/html"), context(tmp_path))
    return rem.plan([result(stdout, status)])


def test_only_the_blocking_paths_get_bits_added_and_rollback_sets_old_modes(tmp_path) -> None:
    plan = plan_access(tmp_path, WWW_DATA + PARENTS + UMASK_077)
    [act], [rollback] = plan.act, plan.rollback
    assert act.endswith("grant a+rx d /var/www/html && grant a+r f /var/www/html/index.html")
    assert rollback.endswith("grant 0700 d /var/www/html; grant 0600 f /var/www/html/index.html")
    assert not plan.changes and not plan.refuse


def test_nothing_to_do_and_refusals(tmp_path: Path) -> None:
    assert plan_access(tmp_path, WWW_DATA + PARENTS + HEALTHY).is_noop
    assert "missing" in plan_access(tmp_path, WWW_DATA + "missing\n").refuse
    assert "unknown user" in plan_access(tmp_path, "", 3).refuse
    twice = UMASK_077.replace("f 1 /var/www/html/i", "f 2 /var/www/html/i")
    linked = plan_access(tmp_path, WWW_DATA + PARENTS + twice)
    assert linked.refuse and "/var/www/html/index.html: other hard links" in linked.refuse


def test_a_parent_gets_only_the_enter_bit_and_odd_names_are_quoted(tmp_path: Path) -> None:
    stdout = WWW_DATA + "P 700 0 0 d 2 /srv/a b\nP 755 0 0 d 2 /srv\nP 755 0 0 d 2 /\n"
    stdout += "T 755 0 0 d 2 /srv/a b/www\nT 600 0 0 f 1 /srv/a b/www/it's.html\n"
    rem = GrantReadAccess(GrantReadAccessParams(root="/srv/a b/www"), context(tmp_path))
    plan = rem.plan([result(stdout)])
    assert plan.act[0].endswith(
        "above a+x '/srv/a b' && grant a+r f '/srv/a b/www/it'\"'\"'s.html'"
    )


def test_act_and_rollback_for_real(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir(mode=0o700)
    (root / "index.html").write_text("x")
    (root / "index.html").chmod(0o600)
    root.chmod(0o700)
    stdout = f"U 33\nG 33\nT 700 0 0 d 2 {root}\nT 600 0 0 f 1 {root}/index.html\n"
    rem = GrantReadAccess(GrantReadAccessParams(root=str(root)), context(tmp_path))
    plan = rem.plan([result(stdout)])
    subprocess.run(["sh", "-c", plan.act[0]], check=True)
    assert (root.stat().st_mode & 0o777, (root / "index.html").stat().st_mode & 0o777) == (
        0o755,
        0o644,
    )
    subprocess.run(["sh", "-c", plan.rollback[0]], check=True)
    assert (root.stat().st_mode & 0o777, (root / "index.html").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )


# -- free_port --------------------------------------------------------------------------

SS_PYTHON = (
    'LISTEN 0      5            0.0.0.0:80        0.0.0.0:*    users:(("python3",pid=331,fd=3))\n'
)
SS_NGINX = (
    "LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    "
    'users:(("nginx",pid=12,fd=6),("nginx",pid=11,fd=6))\n'
)


def plan_port(tmp_path: Path, listing: str, details: str = "", status: int = 0) -> Plan:
    rem = FreePort(FreePortParams(port=80, owner="nginx"), context(tmp_path))
    return rem.plan([CommandResult("<canned>", status, f"{listing}--\n{details}")])


def test_a_foreign_listener_is_named_and_stopped_carefully(tmp_path: Path) -> None:
    details = "331 81234 python3 -m http.server 80 --bind 0.0.0.0 \n"
    plan = plan_port(tmp_path, SS_PYTHON, details)
    assert "python3 pid 331: python3 -m http.server 80 --bind 0.0.0.0" in plan.summary
    [act] = plan.act
    assert " stop 331 81234 5 " in act
    assert plan.partial_ok and not plan.rollback


def test_the_owner_is_never_stopped_and_nothing_listening_is_nothing_to_do(tmp_path) -> None:
    assert plan_port(tmp_path, SS_NGINX, "11 5 nginx: master\n12 6 nginx: worker\n").is_noop
    assert plan_port(tmp_path, "").is_noop


@pytest.mark.parametrize(
    ("listing", "details", "reason"),
    [
        (SS_PYTHON.replace("python3", "sshd"), "331 9 sshd\n", "will not stop sshd (pid 331)"),
        (SS_PYTHON.replace("pid=331", "pid=1"), "1 9 init\n", "will not stop python3 (pid 1)"),
        (SS_PYTHON, "", "will not stop python3 (pid 331)"),  # gone, or its start time unknown
        ("LISTEN 0 5 0.0.0.0:80 0.0.0.0:*\n", "", "cannot see who listens"),
    ],
)
def test_refusals(tmp_path: Path, listing: str, details: str, reason: str) -> None:
    assert reason in plan_port(tmp_path, listing, details).refuse


def test_ss_failing_refuses(tmp_path: Path) -> None:
    rem = FreePort(FreePortParams(port=80, owner="nginx"), context(tmp_path))
    assert "ss failed" in rem.plan([CommandResult("<canned>", 2, "", "ss: not found")]).refuse


def start_time(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(") ", 1)[1].split()[19]


def test_the_stop_reaches_only_the_planned_process(tmp_path: Path) -> None:
    from opsfix.remediations.free_port import _STOP

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        wrong = subprocess.run(["sh", "-c", _STOP, "stop", str(sleeper.pid), "1", "1"])
        assert wrong.returncode == 0 and sleeper.poll() is None  # another start time: spared
        right = subprocess.run(
            ["sh", "-c", _STOP, "stop", str(sleeper.pid), start_time(sleeper.pid), "1"]
        )
        assert right.returncode == 0
        deadline = time.monotonic() + 5
        while sleeper.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeper.returncode is not None
    finally:
        if sleeper.poll() is None:
            os.kill(sleeper.pid, 9)
            sleeper.wait()
