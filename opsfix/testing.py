"""Test a check or a remediation with no host: feed it captured command output.

A check's `evaluate` and a remediation's `plan` are pure functions of command results,
so a plugin's tests need no SSH. Capture what the commands print on a real host once
(`capture`, or `opsfix exec`/ssh by hand), keep it as a JSON case beside the tests, and
judge it in every run:

    from opsfix.testing import judge_case, make_remediation, result

    def test_a_world_writable_file_fails():
        verdict = judge_case(FileMode, "tests/cases/file_mode/world_writable.json")
        assert verdict.status == "failed"

A case file is `{"params": {...}, "results": [{"command", "exit_status", "stdout",
"stderr"}, ...]}`, one result per command, in the order `commands()` returns them:
the format the project's own check tests use. The plugin class, the results and the
case file are positional-only, so a plugin parameter may be called `path` too.
docs/plugins.md has the whole guide.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from opsfix.plugin import Check, CheckContext, CheckResult, Plan, Remediation, RemediationContext
from opsfix.transport.base import CommandResult

__all__ = [
    "CommandResult",
    "capture",
    "judge",
    "judge_case",
    "load_case",
    "load_plugin",
    "make_check",
    "make_remediation",
    "plan",
    "result",
    "save_case",
]

C = TypeVar("C", bound=Check[Any])
R = TypeVar("R", bound=Remediation[Any])


def result(
    stdout: str = "", exit_status: int = 0, stderr: str = "", command: str = ""
) -> CommandResult:
    """One command's result, written by hand (`result("active\\n")`)."""
    return CommandResult(command, exit_status, stdout, stderr)


def load_plugin(path: str | Path) -> Any:
    """The check or remediation class in a plugin file (`checks/x.py` or
    `remediations/x.py`), loaded and validated as a run loads it."""
    from opsfix.registry import load_plugin_file

    return load_plugin_file(Path(path))


def make_check(
    cls: type[C], /, *, base_dir: Path | None = None, host: str = "test", **params: Any
) -> C:
    """The check built as the engine builds it: params validated (a bad one raises
    pydantic's ValidationError), relative controller paths starting at `base_dir`."""
    model = cls.Params.model_validate(params, context={"base_dir": base_dir})
    return cls(model, CheckContext(host=host))


def judge(cls: type[Check[Any]], results: Sequence[CommandResult], /, **params: Any) -> CheckResult:
    """The verdict of `cls` with `params` on these results, one per command."""
    check = make_check(cls, **params)
    _same_count(check.commands(), results, cls.name)
    return check.evaluate(results)


def load_case(path: str | Path) -> tuple[dict[str, Any], list[CommandResult]]:
    """The params a case was captured with, and its results."""
    record = json.loads(Path(path).read_text())
    return record.get("params", {}), [CommandResult(**r) for r in record["results"]]


def save_case(
    case: str | Path, params: Mapping[str, Any], results: Sequence[CommandResult]
) -> None:
    """Keep captured results as a case file (creating its folder)."""
    path = Path(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"params": dict(params), "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def judge_case(cls: type[Check[Any]], case: str | Path, /, **overrides: Any) -> CheckResult:
    """The verdict on a case file, with its params (or some overridden)."""
    params, results = load_case(case)
    return judge(cls, results, **{**params, **overrides})


def capture(
    cls: type[Check[Any]],
    case: str | Path,
    /,
    *,
    shell: Sequence[str] = ("sh", "-c"),
    **params: Any,
) -> CheckResult:
    """Run the check's commands through `shell` (default: this machine's sh; for a host,
    e.g. `("ssh", "web1")`), save them as a case file, and return the verdict."""
    commands = make_check(cls, **params).commands()
    results = []
    for command in commands:
        done = subprocess.run([*shell, command], capture_output=True, text=True, timeout=120)
        results.append(CommandResult(command, done.returncode, done.stdout, done.stderr))
    save_case(case, params, results)
    return judge(cls, results, **params)


def make_remediation(
    cls: type[R],
    /,
    *,
    vars: Mapping[str, Any] | None = None,
    base_dir: Path | None = None,
    templates: Mapping[str, str] | None = None,
    host: str = "test",
    **params: Any,
) -> R:
    """The remediation built as the engine builds it. `templates` maps a template name to
    its text, rendered with Python's str.format_map over the variables (a stand-in for
    the Jinja2 the engine uses; a test asserts what the plan does with the text)."""
    base = base_dir or Path.cwd()
    model = cls.Params.model_validate(params, context={"base_dir": base})

    def render(name: str, variables: Mapping[str, Any]) -> str:
        if templates is None or name not in templates:
            raise KeyError(f"no template {name!r} given to make_remediation")
        return templates[name].format_map(dict(variables))

    return cls(model, RemediationContext(host, dict(vars or {}), base, render))


def plan(cls: type[Remediation[Any]], facts: Sequence[CommandResult], /, **params: Any) -> Plan:
    """The plan of `cls` with `params`, given the results of its `gather()` commands."""
    remediation = make_remediation(cls, **params)
    _same_count(remediation.gather(), facts, cls.name)
    return remediation.plan(facts)


def _same_count(commands: Sequence[str], results: Sequence[CommandResult], name: str) -> None:
    if len(commands) != len(results):
        raise AssertionError(
            f"{name} runs {len(commands)} command(s) but the case has {len(results)} "
            "result(s): the plugin's commands changed, capture the case again"
        )
