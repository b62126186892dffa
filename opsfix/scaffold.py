"""Skeletons of a new check or remediation and its test, for `opsfix new`.

Each skeleton is a working plugin (a path exists; a line is in a file) whose test passes
as written, so an author starts from green and changes both. They follow docs/plugins.md.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from opsfix.errors import OptionsError

CHECK = '''\
"""Healthy when $path_doc exists. (Say here what healthy means for $name.)"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class ${Class}Params(Params):
    path: str = Field(description="the path that must exist on the host")


class ${Class}(Check[${Class}Params]):
    def commands(self) -> list[str]:
        return [cmd("test", "-e", self.params.path)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        found = results[0]
        if found.exit_status == 0:
            return CheckResult.passed(f"{self.params.path} exists")
        if found.exit_status == 1:
            return CheckResult.failed(f"{self.params.path} is missing", path=self.params.path)
        return CheckResult.error("could not tell", stderr=found.stderr.strip())
'''

CHECK_TEST = '''\
"""$name against hand-written and captured outputs (opsfix.testing; no host needed)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from opsfix.testing import judge, load_plugin, result

$Class = load_plugin(Path(__file__).parents[1] / "checks" / "$name.py")


def test_an_existing_path_passes():
    assert judge($Class, [result(exit_status=0)], path="/etc/hostname").status == "passed"


def test_a_missing_path_fails_with_evidence():
    verdict = judge($Class, [result(exit_status=1)], path="/nope")
    assert verdict.status == "failed" and verdict.evidence == {"path": "/nope"}


def test_a_broken_command_is_could_not_tell():
    verdict = judge($Class, [result(exit_status=2, stderr="test: denied")], path="/x")
    assert verdict.status == "error"


def test_unknown_params_are_refused():
    with pytest.raises(ValidationError):
        judge($Class, [result()], path="/x", pathh="/y")
'''

REMEDIATION = '''\
"""Make sure a file holds a line, adding it when missing. (Say here what $name restores.)"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class ${Class}Params(Params):
    path: str = Field(description="the file on the host")
    line: str = Field(description="the line it must hold")


class ${Class}(Remediation[${Class}Params]):
    disruptive = False  # it only writes a file; nothing reloads or restarts

    def gather(self) -> list[str]:
        return [cmd("cat", "--", self.params.path)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p = self.params
        if not facts[0].ok:
            return Plan(f"{p.path} not changed", refuse=f"cannot read {p.path}")
        lines = facts[0].stdout.splitlines()
        if p.line in lines:
            return Plan(f"{p.path} already holds the line")
        content = "\\n".join([*lines, p.line]) + "\\n"
        return Plan(f"add a line to {p.path}", changes=(WriteFile(p.path, content.encode()),))
'''

REMEDIATION_TEST = '''\
"""$name's plans from canned gather output (opsfix.testing; no host needed)."""

from pathlib import Path

from opsfix.plugin import WriteFile
from opsfix.testing import load_plugin, plan, result

$Class = load_plugin(Path(__file__).parents[1] / "remediations" / "$name.py")


def test_a_missing_line_is_added_and_the_rest_kept():
    done = plan($Class, [result("a\\n")], path="/etc/x.conf", line="b")
    assert done.changes == (WriteFile("/etc/x.conf", b"a\\nb\\n"),)


def test_nothing_to_do_when_the_line_is_there():
    assert plan($Class, [result("a\\nb\\n")], path="/etc/x.conf", line="b").is_noop


def test_an_unreadable_file_is_refused_and_nothing_changes():
    done = plan($Class, [result(exit_status=1, stderr="denied")], path="/etc/x.conf", line="b")
    assert done.refuse and not done.changes
'''

SKELETONS = {
    "check": ("checks", CHECK, CHECK_TEST),
    "remediation": ("remediations", REMEDIATION, REMEDIATION_TEST),
}


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def check_name(name: str) -> None:
    """A plugin is named like a module: snake_case, not a Python keyword."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise OptionsError(
            f"plugin name {name!r}: use snake_case letters, digits and _ (e.g. 'file_mode')"
        )


def write(kind: str, name: str, root: Path) -> list[Path]:
    """Write the plugin and its test under `root`; refuse to overwrite anything."""
    check_name(name)
    folder, plugin, test = SKELETONS[kind]
    values = {"name": name, "Class": class_name(name), "path_doc": "a path"}
    files = {
        root / folder / f"{name}.py": plugin,
        root / "tests" / f"test_{name}.py": test,
    }
    taken = [str(path) for path in files if path.exists()]
    if taken:
        raise OptionsError(f"not overwriting {', '.join(taken)}")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values))
    return list(files)
