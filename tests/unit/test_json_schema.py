"""docs/schema/run.schema.json describes what `--format json` prints (and a bundle's report)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from opsfix.output import to_json
from opsfix.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
    VerifyOutcome,
)

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "schema" / "run.schema.json").read_text())


def validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


def every_status() -> RunReport:
    check = CheckOutcome("http", "failed", "500", {"list": [1, "a"], "nested": {"x": None}})
    fixed = CheckOutcome("http", "passed", "200")
    statuses = ["applied", "rolled_back", "partial", "refused", "not_needed", "no_change",
                "would_change", "cannot_tell", "deferred", "error"]  # fmt: skip
    rems = [
        RemediationOutcome(r, s, "why", "--- a\n+++ b\n", "ok", ["true"], fixed, "/var/backups/x")
        for r, s in zip(statuses, statuses, strict=True)
    ]
    rems.append(RemediationOutcome("plain", "applied"))
    hosts = [
        HostReport(f"h{i}", status, "r", [StepReport("s", check, rems, fixed)], duration=0.5)
        for i, status in enumerate(
            ["healthy", "repaired", "failed", "unreachable", "deferred", "not_attempted"]
        )
    ]
    hosts[0].steps.append(StepReport("never judged", check, [], None))
    hosts[1].verify = [VerifyOutcome("t", o, "m") for o in ("passed", "failed", "error", "skipped")]
    return RunReport("book", "apply", hosts, started=1.0, finished=2.0)


def test_the_schema_is_valid_and_accepts_every_status():
    data = json.loads(to_json(every_status()))
    validator().validate(data)
    validator().validate({**data, "run_id": "20250101T000000Z-abcdef"})
    validator().validate({**data, "run_id": None})


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("hosts"),
        lambda d: d.update(mode="fix"),
        lambda d: d["hosts"][0].update(status="fine"),
        lambda d: d["hosts"][1]["steps"][0]["remediations"][0].update(status="done"),
        lambda d: d["hosts"][1]["steps"][0]["before"].pop("evidence"),
        lambda d: d["summary"].update(broken=1),
    ],
)
def test_the_schema_rejects_what_opsfix_never_prints(breakage):
    data = json.loads(to_json(every_status()))
    breakage(data)
    assert list(validator().iter_errors(data))
