"""Fault tests: write a file, then act slowly, logging each act and rollback on the host.

The log tells a test when the act runs, so it can cut the network, kill opsfix or press
Ctrl-C in the middle of it, and afterwards whether a restore happened before a new act.
"""

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult


class SlowWriteParams(Params):
    path: str = Field(description="file to write")
    content: str = Field(description="what it must hold")
    log: str = Field(description="file that records each act and rollback")
    seconds: float = Field(ge=0, description="how long the act takes")


class SlowWrite(Remediation[SlowWriteParams]):
    disruptive = False

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        log = quote(self.params.log)
        act = f"echo start >> {log}; {cmd('sleep', f'{self.params.seconds:g}')}; echo end >> {log}"
        return Plan(
            f"write {self.params.path} slowly",
            changes=(WriteFile(self.params.path, self.params.content.encode()),),
            act=(act,),
            rollback=(f"echo rollback >> {log}",),
        )
