"""journal_vacuum: refusals on a lab host (journalctl, no journald), plans on hand-written
`journalctl --disk-usage` answers of a host where journald runs."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from opsfix.remediations.journal_vacuum import JournalVacuum
from opsfix.transport.base import CommandResult

from .conftest import DATA

USAGE = "Archived and active journals take up {} in the file system.\n"


def captured() -> list[CommandResult]:
    record = json.loads((DATA / "journal_vacuum_lab.json").read_text())
    return [CommandResult(**r) for r in record["results"]]


def journald(usage: str) -> list[CommandResult]:
    lab = captured()
    return [
        lab[0],
        CommandResult("x", 0, "yes\n"),
        CommandResult("x", 0, USAGE.format(usage)),
        lab[3],
    ]


def vacuum(context, **params) -> JournalVacuum:
    return JournalVacuum(JournalVacuum.Params(**params), context)


def test_where_journald_does_not_run_it_refuses(context):
    assert vacuum(context).plan(captured()).refuse == "journald does not run on this host"
    results = [CommandResult("x", 0, "missing\n"), *captured()[1:]]
    assert vacuum(context).plan(results).refuse == "journalctl is not installed on this host"


def test_a_big_journal_is_rotated_then_vacuumed(context):
    plan = vacuum(context, max_size="200M", max_age="2weeks").plan(journald("1.5G"))
    assert plan.act == (
        "journalctl --rotate",
        "journalctl --vacuum-size=200M --vacuum-time=2weeks",
    )
    assert plan.summary.startswith(
        "vacuum the journal (1.5 GiB) to 200M and 2weeks, freeing about 1.3 GiB"
    )
    assert plan.partial_ok


def test_a_small_journal_is_left_alone(context):
    plan = vacuum(context).plan(journald("48.0M"))
    assert plan.is_noop and plan.summary == "the journal takes 48.0 MiB, within 200M"


@pytest.mark.parametrize(
    "params",
    [{"max_size": "2X"}, {"max_size": "0"}, {"max_age": "soon"}, {"max_size": "1G; rm -rf /"}],
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        JournalVacuum.Params(**params)
