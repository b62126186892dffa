"""clean_logs: plans from gather output captured on a lab host (rotated logs aged 10 and 2
days, one held open by a process, a live 8 MB log, a symlink to /etc/passwd and a folder
symlink to /etc), and the real gather and validation run in dash on a local folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opsfix.plugin import Plan, RemediationContext, Remove
from opsfix.remediations.clean_logs import CleanLogs
from opsfix.transport.base import CommandResult

from .conftest import DATA, Run, run_sh


def cleaner(context: RemediationContext, **params: Any) -> CleanLogs:
    return CleanLogs(CleanLogs.Params(**params), context)


def plan_for(context: RemediationContext, case: str, **overrides: Any) -> Plan:
    record = json.loads((DATA / f"clean_logs_{case}.json").read_text())
    results = [CommandResult(**r) for r in record["results"]]
    return cleaner(context, **{**record["params"], **overrides}).plan(results)


def test_old_rotated_logs_go_and_nothing_else(context):
    plan = plan_for(context, "filled")
    assert plan.changes == (
        Remove("/var/log/nginx/error.log.4.gz", "/var/log"),
        Remove("/var/log/nginx/access.log.2.gz", "/var/log"),
    )
    assert plan.backup is False and plan.partial_ok and plan.act == ()
    head, *rest = plan.summary.splitlines()
    assert head.startswith(
        "remove 2 rotated log(s) older than 7 days under /var/log, freeing 3.8 MiB; /var/log "
    )
    assert head.endswith("% used (target under 80%)")
    assert rest == [
        "  /var/log/nginx/error.log.4.gz (980.0 KiB, 10 days old)",
        "  /var/log/nginx/access.log.2.gz (2.9 MiB, 10 days old)",
        "  kept 1 held open: /var/log/nginx/access.log.3.gz",
    ]


def test_not_enough_still_removes_what_is_safe_and_says_what_would_help(context):
    plan = plan_for(context, "filled", target_percent=40)
    assert len(plan.changes) == 2 and plan.partial_ok
    assert ": NOT under 40% (needs " in plan.summary
    assert plan.summary.splitlines()[-1] == (
        "  what would help: 1 rotated log(s) newer than 7 days (4.0 KiB); the largest live file"
        " is /var/log/big.log (7.6 MiB): rotate it (logrotate) or truncate it"
    )


def test_a_younger_cutoff_takes_the_recent_rotation_too(context):
    plan = plan_for(context, "filled", older_than_days=1)
    assert Remove("/var/log/nginx/access.log.1", "/var/log") in plan.changes


def test_nothing_to_remove_is_a_no_op(context):
    plan = plan_for(context, "clean")
    assert plan.is_noop
    assert plan.summary == (
        "nothing to remove: no rotated log(s) older than 7 days under /var/log"
        " that no process holds"
    )


def test_a_folder_that_leads_outside_the_roots_is_refused(context):
    plan = plan_for(context, "outside")
    assert (
        plan.refuse == "/var/log/elsewhere resolves to /etc, outside the allowed roots (/var/log)"
    )


def test_a_missing_folder_is_refused(context):
    assert plan_for(context, "missing").refuse == "no such folder on the host: /var/log/none"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"folders": ["/etc"]}, "folder '/etc' is outside the allowed roots (/var/log)"),
        ({"folders": ["/var/log/../../etc"]}, "not an absolute, normalized folder"),
        ({"folders": ["/var/logs"]}, "outside the allowed roots"),
        ({"allowed_roots": ["/"]}, "other than /"),
        ({"patterns": ["*"]}, "would match live logs such as ['access.log']"),
        ({"patterns": ["*.log"]}, "would match live logs"),
        ({"patterns": ["../*.gz"]}, "would match live logs"),
        ({"older_than_days": -1}, "greater than or equal to 0"),
        ({"target_percent": 120}, "less than or equal to 100"),
    ],
)
def test_bad_params_are_refused(params, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        CleanLogs.Params(**params)


def test_wider_roots_are_the_users_choice():
    params = CleanLogs.Params(folders=["/srv/app/logs"], allowed_roots=["/var/log", "/srv/app"])
    assert params.folders == ["/srv/app/logs"]


def _old(path: Path, data: bytes = b"x" * 5000) -> Path:
    path.write_bytes(data)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /proc/*/fd of every process needs root")
def test_real_gather_and_validation_in_dash(context, tmp_path: Path, sh: Run):
    logs = tmp_path / "logs"
    (logs / "app").mkdir(parents=True)
    old = _old(logs / "app/app.log.1.gz")
    held = _old(logs / "app/app.log.2.gz")
    live = _old(logs / "app/app.log")
    (logs / "link.1").symlink_to("/etc/hostname")
    hard = _old(logs / "twice.1")
    os.link(hard, tmp_path / "other-name")
    holder = subprocess.Popen(["sleep", "60"], stdin=held.open("rb"))
    try:
        remediation = cleaner(context, folders=[str(logs)], allowed_roots=[str(tmp_path)])
        plan = remediation.plan([sh(c) for c in remediation.gather()])
        assert plan.refuse is None
        assert plan.changes == (Remove(str(old), str(logs)),), plan.summary
        assert "kept 1 held open" in plan.summary and "kept 1 with other hard links" in plan.summary
        assert run_sh(plan.validate[0]).ok
        os.utime(old, None)  # written to since the plan
        check = run_sh(plan.validate[0])
        assert check.exit_status == 1 and f"{old}: changed since the plan" in check.stdout
        _old(old)
        with old.open("rb") as reader:
            opened = subprocess.Popen(["sleep", "60"], stdin=reader)
        try:
            assert f"{old}: now held open" in run_sh(plan.validate[0]).stdout
        finally:
            opened.kill()
            opened.wait()
    finally:
        holder.kill()
        holder.wait()
    assert live.exists() and held.exists()


def test_hostile_folder_names_stay_quoted(context, tmp_path: Path):
    marker = tmp_path / "pwned"
    folder = f"/var/log/x; touch {marker}"
    remediation = cleaner(context, folders=[folder])
    for command in remediation.gather():
        run_sh(command)
    assert not marker.exists()
