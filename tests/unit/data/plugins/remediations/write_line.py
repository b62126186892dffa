"""Test plugin: rewrite a file to hold one line; validation greps the staged tree."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class WriteLineParams(Params):
    path: str = Field(description="file to write")
    line: str = Field(description="its new content")
    root: str | None = Field(default=None, description="tree to stage and validate")
    forbid: str = Field(default="FORBIDDEN", description="validation rejects this text")
    act: str | None = Field(default=None, description="command run after the swap")
    partial: bool = Field(default=False, description="keep the change if the check still fails")
    keep: str | None = Field(default=None, description="baseline: a copy of the healthy file")


class WriteLine(Remediation[WriteLineParams]):
    disruptive = False

    def gather(self) -> list[str]:
        return [cmd("cat", self.params.path)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        wanted = self.params.line + "\n"
        if facts[0].ok and facts[0].stdout == wanted:
            return Plan("already right")
        validate = ()
        if self.params.root:
            validate = ("! grep -rqF " + cmd(self.params.forbid) + ' "$OPSFIX_STAGE"',)
        return Plan(
            f"write {self.params.path}",
            changes=(WriteFile(self.params.path, wanted.encode()),),
            stage_root=self.params.root,
            validate=validate,
            act=(self.params.act,) if self.params.act else (),
            partial_ok=self.params.partial,
        )

    def baseline(self) -> list[str]:
        keep = self.params.keep
        return [cmd("cp", self.params.path, keep)] if keep else []

    def baseline_current(self) -> list[str]:
        keep = self.params.keep
        return [cmd("cmp", "-s", self.params.path, keep)] if keep else []
