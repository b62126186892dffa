"""docs/schema/run.schema.json describes what `--format json` prints (and a bundle's report)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from opsfix.evidence.output import to_json
from opsfix.evidence.results import (
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


def _schemas() -> jsonschema.Draft202012Validator:
    """show.schema.json, with run.schema.json resolvable by its relative name."""
    from referencing import Registry, Resource

    folder = Path(__file__).parents[2] / "docs" / "schema"
    show = json.loads((folder / "show.schema.json").read_text())
    registry = Registry().with_resource("run.schema.json", Resource.from_contents(SCHEMA))
    jsonschema.Draft202012Validator.check_schema(show)
    return jsonschema.Draft202012Validator(show, registry=registry)


def test_show_json_is_described_by_its_schema(tmp_path, monkeypatch, capsys):
    """A run recorded as the CLI records it, printed by `opsfix show --format json`."""
    from opsfix.cli import main
    from opsfix.evidence import history
    from opsfix.evidence.state import FILE_NAME, open_store

    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path))
    book = tmp_path / "book.yml"
    book.write_text("name: book\n")
    doc = history.bundle_doc(
        every_status(),
        run_id=history.new_run_id(1.0),
        playbook_path=book,
        options={"limit": "web1"},
        exit_code=2,
        secrets=[],
        user="alice@ctl",
    )
    history.record(open_store(tmp_path / FILE_NAME), doc)
    assert main(["show", "last", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    _schemas().validate(shown)
    for breakage in (
        lambda d: d.pop("user"),
        lambda d: d["report"].update(mode="fix"),
        lambda d: d.update(exit_code="2"),
    ):
        broken = json.loads(json.dumps(shown))
        breakage(broken)
        with pytest.raises(jsonschema.ValidationError):
            _schemas().validate(broken)


def test_timestamps_come_as_iso_8601_beside_epoch():
    data = json.loads(to_json(every_status()))
    assert (data["started"], data["started_at"]) == (1.0, "1970-01-01T00:00:01.000Z")
    assert data["finished_at"] == "1970-01-01T00:00:02.000Z"
    validator().validate(data)
    for wrong in ("yesterday", "1970-01-01 00:00:01", "1970-01-01T00:00:01+02:00"):
        with pytest.raises(jsonschema.ValidationError):
            validator().validate({**data, "started_at": wrong})
