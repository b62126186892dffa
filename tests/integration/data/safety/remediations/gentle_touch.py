"""Test remediation: create a file; not disruptive (runs outside maintenance windows)."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.transport.base import CommandResult


class GentleTouchParams(Params):
    path: str = Field(description="file to create")


class GentleTouch(Remediation[GentleTouchParams]):
    disruptive = False

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        return Plan(
            f"create {self.params.path}", changes=(WriteFile(self.params.path, b"fixed\n"),)
        )
