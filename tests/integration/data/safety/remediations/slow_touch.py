"""Test remediation: create a file, slowly, logging when it acts (to catch overlaps)."""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult


class SlowTouchParams(Params):
    path: str = Field(description="file to create")
    log: str = Field(description="file that records each act")
    seconds: float = Field(default=2.0, description="how long the act takes")


class SlowTouch(Remediation[SlowTouchParams]):
    disruptive = True

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        log = quote(self.params.log)
        act = f"echo start $$ >> {log}; {cmd('sleep', self.params.seconds)}; echo end $$ >> {log}"
        return Plan(
            f"create {self.params.path}",
            changes=(WriteFile(self.params.path, b"fixed\n"),),
            act=(act,),
        )
