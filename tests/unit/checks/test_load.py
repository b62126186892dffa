"""load: /proc/loadavg and nproc from a lab host (2 CPUs)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from opsfix.checks.load import Load
from opsfix.transport.base import CommandResult

from .helpers import judge, make
from .throwaway import run_local


def outputs(loadavg: str, cores: str = "2\n") -> list[CommandResult]:
    return [CommandResult("cat", 0, loadavg), CommandResult("nproc", 0, cores)]


def test_captured_load_is_judged_per_cpu():
    verdict = judge(Load, "lab", warn_per_core=100, max_per_core=100)
    assert verdict.ok and verdict.evidence["cores"] == 2
    assert verdict.evidence["per_core"] == round(float(verdict.evidence["load"].split()[1]) / 2, 2)


@pytest.mark.parametrize(
    "loadavg, which, status, summary",
    [
        ("0.50 1.00 9.00 1/200 7\n", "5", "passed", "5-min load 1 on 2 CPU(s): 0.5 per CPU"),
        ("0.50 2.10 9.00 1/200 7\n", "5", "passed", "warning: 5-min load 2.1 on 2 CPU(s)"),
        ("0.50 4.00 1.00 1/200 7\n", "5", "failed", "5-min load 4 on 2 CPU(s): 2 per CPU"),
        ("9.00 1.00 1.00 1/200 7\n", "1", "failed", "1-min load 9 on 2 CPU(s)"),
        ("0.50 1.00 9.00 1/200 7\n", "15", "failed", "15-min load 9"),
    ],
)
def test_thresholds(loadavg, which, status, summary):
    verdict = make(Load, which=which).evaluate(outputs(loadavg))
    assert verdict.status == status and verdict.summary.startswith(summary)


def test_garbage_is_could_not_tell():
    assert make(Load).evaluate(outputs("", "")).status == "error"
    assert make(Load).evaluate(outputs("1 2 3\n", "0\n")).status == "error"


@pytest.mark.parametrize(
    "params", [{"max_per_core": 0}, {"warn_per_core": 3}, {"which": "10"}, {"max": 1}]
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        make(Load, **params)


def test_real_commands_here():
    verdict = make(Load, max_per_core=1000, warn_per_core=1000).evaluate(
        run_local(make(Load).commands())
    )
    assert verdict.ok and verdict.evidence["cores"] >= 1
