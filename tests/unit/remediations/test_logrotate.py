"""logrotate: refusals from gather output captured on a lab host, and a real forced
rotation of a local config in dash where logrotate is installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from opsfix.remediations.logrotate import Logrotate
from opsfix.transport.base import CommandResult

from .conftest import DATA, run_sh


def captured() -> list[CommandResult]:
    record = json.loads((DATA / "logrotate_lab.json").read_text())
    return [CommandResult(**r) for r in record["results"]]


def rotated(context, **params) -> Logrotate:
    return Logrotate(Logrotate.Params(**params), context)


def test_missing_logrotate_is_refused(context):
    results = [CommandResult("x", 0, "missing\n"), *captured()[1:]]
    assert rotated(context).plan(results).refuse == "logrotate is not installed on this host"


def test_a_missing_config_is_refused(context):
    results = [CommandResult("x", 0, "/usr/sbin/logrotate\n"), CommandResult("x", 0, "missing\n")]
    plan = rotated(context, config="/etc/lr.conf").plan([*results, captured()[2]])
    assert plan.refuse == "cannot read the logrotate config /etc/lr.conf"


def test_the_plan_checks_the_config_then_forces_a_rotation(context):
    results = [CommandResult("x", 0, "/usr/sbin/logrotate\n"), CommandResult("x", 0, "ok\n")]
    plan = rotated(context, state_file="/var/lib/lr.status").plan([*results, captured()[2]])
    assert plan.validate == ("logrotate -d -s /var/lib/lr.status /etc/logrotate.conf",)
    assert plan.act == ("logrotate -f -s /var/lib/lr.status /etc/logrotate.conf",)
    assert plan.partial_ok and plan.changes == ()
    assert plan.summary.startswith("force a log rotation with /etc/logrotate.conf; /var/log is ")


@pytest.mark.parametrize("params", [{"config": "etc/x"}, {"state_file": "/a/../b"}, {"x": 1}])
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        Logrotate.Params(**params)


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate is not installed")
def test_a_real_rotation_in_dash(context, tmp_path: Path):
    log = tmp_path / "app.log"
    log.write_text("line\n" * 1000)
    config = tmp_path / "lr.conf"
    config.write_text(f"{log} {{\n  rotate 2\n  compress\n  missingok\n}}\n")
    config.chmod(0o644)
    remediation = rotated(
        context, config=str(config), state_file=str(tmp_path / "status"), path=str(tmp_path)
    )
    plan = remediation.plan([run_sh(c) for c in remediation.gather()])
    assert plan.refuse is None
    assert run_sh(plan.validate[0]).ok
    assert run_sh(plan.act[0]).ok
    assert (tmp_path / "app.log.1.gz").exists() and not log.exists()
    broken = tmp_path / "broken.conf"
    broken.write_text(f"{log} {{\n  rotate two\n}}\n")
    bad = rotated(context, config=str(broken), state_file=str(tmp_path / "s"))
    assert not run_sh(bad.plan([run_sh(c) for c in bad.gather()]).validate[0]).ok
