"""Test plugin: write a file with the line its peers hold (each peer answers `cat`)."""

from collections.abc import Mapping, Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, WriteFile
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class PeerLineParams(Params):
    path: str = Field(description="file to write")
    peer_path: str = Field(description="the file to read on each peer")
    attention: str | None = Field(default=None, description="what a person must still do")


class PeerLine(Remediation[PeerLineParams]):
    Params = PeerLineParams
    disruptive = False

    def peer_gather(self, facts: Sequence[CommandResult]) -> list[str]:
        return [cmd("cat", self.params.peer_path)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        return Plan("no peers", refuse="needs peers")

    def plan_from_peers(
        self, facts: Sequence[CommandResult], peers: Mapping[str, Sequence[CommandResult]]
    ) -> Plan:
        answers = {name: r[0].stdout for name, r in peers.items() if r and r[0].ok}
        if not answers:
            return Plan("no peer answered", refuse=f"asked {sorted(peers)}: no answer")
        name, text = sorted(answers.items())[0]
        return Plan(
            f"write {self.params.path} from {name}",
            changes=(WriteFile(self.params.path, text.encode()),),
            attention=self.params.attention,
        )
