"""Canned outputs from data/ (recorded by capture.py) and the hostile-value assertions."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from opsfix.plugin import Check, CheckResult
from opsfix.transport.base import CommandResult

from .throwaway import run_local

DATA = Path(__file__).parent / "data"


def load(check: str, case: str) -> tuple[dict[str, Any], list[CommandResult]]:
    """The params a case was captured with, and its command results."""
    record = json.loads((DATA / check / f"{case}.json").read_text())
    return record["params"], [CommandResult(**result) for result in record["results"]]


def make(cls: type[Check[Any]], **params: Any) -> Check[Any]:
    """A check built as the engine builds it: relative controller paths start at data/."""
    return cls(cls.Params.model_validate(params, context={"base_dir": DATA}))


def judge(cls: type[Check[Any]], case: str, **overrides: Any) -> CheckResult:
    """The verdict on a canned case, with the params it was captured with (or overrides)."""
    params, results = load(cls.name, case)
    check = make(cls, **{**params, **overrides})
    assert len(results) == len(check.commands()), "the check's commands changed: recapture"
    return check.evaluate(results)


def hostile(tmp_path: Path) -> tuple[Path, list[str]]:
    """A marker file, and values that would create it if they ever reached the shell bare."""
    marker = tmp_path / "pwned"
    return marker, [f"x; touch {marker}", f"$(touch {marker})", f"`touch {marker}`"]


def assert_harmless(check: Check[Any], marker: Path, *values: str) -> None:
    """Each value survives shell word splitting whole, and running the commands creates nothing."""
    commands = check.commands()
    tokens = [token for command in commands for token in shlex.split(command)]
    for value in values:
        assert any(value in token for token in tokens), f"{value!r} was split: not quoted"
    run_local(commands)
    assert not marker.exists()
