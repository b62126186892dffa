"""Run history: what is recorded, masked, found again, and what the store answers."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from opsfix.cli import _build_parser
from opsfix.commands.run import _recorded_options
from opsfix.errors import OptionsError
from opsfix.evidence import history, output, state
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
    VerifyOutcome,
)
from opsfix.evidence.state import GrowthSample, open_store

SECRET = 'hunter2"\\x'  # quotes and backslashes: JSON would escape them


def report(
    mode: str = "apply", started: float = 1000.0, statuses: tuple[str, ...] = ("applied",)
) -> RunReport:
    before = CheckOutcome("http", "failed", "got 500", {"body": f"token={SECRET}", "n": 3})
    after = CheckOutcome("http", "passed", "200")
    rems = [RemediationOutcome(f"fix{i}", s, f"did {s}") for i, s in enumerate(statuses)]
    step = StepReport("site serves", before, rems, after)
    config = CheckOutcome("nginx_config", "passed", "ok")
    return RunReport(
        "book",
        mode,  # type: ignore[arg-type]
        [
            HostReport(
                "web1",
                "repaired",
                steps=[StepReport("config", config, [], config), step],
                verify=[VerifyOutcome("test_a", "passed")],
                duration=1.5,
            ),
            HostReport("web2", "unreachable", reason="connection refused"),
        ],
        started=started,
        finished=started + 2.0,
    )


def save(store: state.Store, rep: RunReport, playbook: Path, code: int = 0) -> state.RunRecord:
    doc = history.bundle_doc(
        rep,
        run_id=history.new_run_id(rep.started),
        playbook_path=playbook,
        options={"reason": f"because {SECRET}", "limit": None},
        exit_code=code,
        secrets=[SECRET],
        user="alice@ctl",
    )
    return history.record(store, doc)


@pytest.fixture
def store(tmp_path: Path) -> state.Store:
    return open_store(tmp_path / "state" / "opsfix.db")


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.yml"
    path.write_text("name: book\n")
    return path


def test_a_run_is_recorded_with_its_evidence_and_listed(store, book):
    run = save(store, report(), book)
    [listed] = store.runs()
    assert listed.id == run.id and listed.user == "alice@ctl"
    assert listed.playbook == "book" and listed.playbook_path == str(book.resolve())
    assert listed.hosts == {"repaired": 1, "unreachable": 1}
    doc = json.loads(store.run_bundle(run.id) or "")
    step = doc["report"]["hosts"][0]["steps"][1]
    assert step["before"]["evidence"]["n"] == 3 and step["after"]["summary"] == "200"
    assert step["remediations"][0]["status"] == "applied"
    assert doc["report"]["hosts"][0]["verify"][0]["outcome"] == "passed"


def test_secrets_are_masked_before_storing_even_where_json_escapes_them(store, book, tmp_path):
    run = save(store, report(), book)
    assert SECRET not in run.bundle and json.dumps(SECRET)[1:-1] not in run.bundle
    assert "token=********" in run.bundle and "because ********" in run.bundle
    store.close()
    raw = (tmp_path / "state" / "opsfix.db").read_bytes()
    assert b"hunter2" not in raw


def test_mask_reaches_keys_numbers_and_nested_lists():
    masked = history.mask({"k-1234": [1234, "x 1234 y", {"a": True}]}, ["1234"])
    assert masked == {"k-********": ["********", "x ******** y", {"a": True}]}


def test_the_bundle_hash_is_the_sha256_of_the_stored_canonical_bytes(store, book):
    run = save(store, report(), book)
    stored = store.run_bundle(run.id) or ""
    assert run.bundle_sha256 == hashlib.sha256(stored.encode()).hexdigest()
    doc = json.loads(stored)
    assert history.canonical(doc) == stored  # canonical: re-serialising changes nothing
    assert stored.isascii() and "\n" not in stored


def test_runs_filter_by_host_and_playbook_newest_first(store, book, tmp_path):
    other = tmp_path / "other.yml"
    other.write_text("name: other\n")
    first = save(store, report(started=100.0), book)
    second = save(store, report(started=200.0), book)
    lone = report(started=300.0)
    lone.hosts, lone.playbook = lone.hosts[1:], "other"  # web2 only
    third = save(store, lone, other)
    assert [r.id for r in store.runs()] == [third.id, second.id, first.id]
    assert [r.id for r in store.runs(host="web1")] == [second.id, first.id]
    assert [r.id for r in store.runs(playbook="book")] == [second.id, first.id]
    assert [r.id for r in store.runs(playbook=str(other.resolve()))] == [third.id]
    assert [r.id for r in store.runs(limit=1)] == [third.id]
    assert store.runs(host="nope") == []


def test_run_ids_resolve_from_a_prefix_or_last(store, book):
    a = save(store, report(started=100.0), book)
    b = save(store, report(started=200.0), book)
    assert history.resolve(store, "last") == b.id
    assert history.resolve(store, a.id) == a.id
    assert history.resolve(store, a.id[:-2]) == a.id
    with pytest.raises(OptionsError, match="ambiguous"):
        history.resolve(store, "19")
    with pytest.raises(OptionsError, match="no recorded run 'zzz'"):
        history.resolve(store, "zzz")


def test_remediation_count_counts_acting_remediations_by_step_or_check(store, book):
    save(store, report(started=100.0, statuses=("rolled_back", "refused", "applied")), book)
    save(store, report(started=500.0, statuses=("partial",)), book)
    save(store, report(mode="dry-run", started=600.0, statuses=("would_change",)), book)
    assert store.remediation_count("web1", "site serves", since=0.0) == 3
    assert store.remediation_count("web1", "http", since=0.0) == 3  # by check plugin too
    # a run counts when it finished at or after `since`; run 1 finished at 102
    assert store.remediation_count("web1", "http", since=102.0) == 3
    assert store.remediation_count("web1", "http", since=102.5) == 1
    assert store.remediation_count("web1", "config", since=0.0) == 0
    assert store.remediation_count("web2", "http", since=0.0) == 0


def test_last_run_gives_hosts_and_statuses_of_the_newest_run_of_a_path(
    store, book, tmp_path, monkeypatch
):
    assert store.last_run(str(book)) is None
    save(store, report(started=100.0), book)
    newer = report(started=200.0)
    newer.hosts[0].status = "failed"
    save(store, newer, book)
    assert store.last_run(str(book)) == [("web1", "failed"), ("web2", "unreachable")]
    monkeypatch.chdir(tmp_path)
    assert store.last_run("book.yml") == [("web1", "failed"), ("web2", "unreachable")]
    assert store.last_run("elsewhere.yml") is None


def test_remediation_totals_add_up_every_run_of_the_playbook(store, book):
    save(store, report(started=100.0), book)
    save(store, report(started=200.0, statuses=("refused", "applied")), book)
    totals = store.remediation_totals(str(book.resolve()))
    assert totals == {("web1", "fix0", "applied"): 1, ("web1", "fix0", "refused"): 1,
                      ("web1", "fix1", "applied"): 1}  # fmt: skip


def test_a_report_comes_back_from_its_json_and_renders_the_same():
    for mode in ("apply", "check"):
        original = report(mode=mode)
        if mode == "check":
            for host in original.hosts:
                for step in host.steps:
                    step.after = step.before
        again = history.report_from_dict(json.loads(output.to_json(original)))
        assert output.to_text(again, 1) == output.to_text(original, 1)
        assert output.to_json(again) == output.to_json(original)


def test_unknown_fields_in_old_or_new_documents_are_tolerated():
    data = json.loads(output.to_json(report()))
    data["hosts"][0]["something_new"] = 1
    del data["hosts"][0]["duration"]
    again = history.report_from_dict(data)
    assert again.hosts[0].duration == 0.0


def test_a_version_1_database_gains_history_and_keeps_its_samples(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(state, "MIGRATIONS", state.MIGRATIONS[:1])
    monkeypatch.setattr(state, "SCHEMA_VERSION", 1)
    open_store(path).add_growth_sample(GrowthSample("h", "/var", 1.0, 1, 1, 1))
    monkeypatch.undo()
    upgraded = open_store(path)
    assert upgraded.version == state.SCHEMA_VERSION >= 2
    assert upgraded.growth_sample_count("h", "/var") == 1
    assert upgraded.runs() == [] and upgraded.growth_hosts("/var") == ["h"]
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"history_runs", "history_hosts", "history_steps", "history_remediations"} <= tables


def test_recorded_options_keep_extra_var_names_not_values(tmp_path):
    args = _build_parser().parse_args(
        ["apply", "pb.yml", "-e", "token=abc123 region=eu", "-e", "@vars.yml", "--limit", "web1"]
    )
    options = _recorded_options(args)
    assert options["extra_vars"] == ["region", "token", "@vars.yml"]
    assert options["limit"] == "web1" and options["command"] == "apply"
    assert "abc123" not in json.dumps(options)
