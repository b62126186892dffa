"""Healthy when the firewall lets in, from any client, every TCP port in `allow` (22 and 80
for a web host), judged for new IPv4 connections by walking the input chains' rules the
way the kernel would. No firewall at all (no chain on the input hook) is a state of its
own: it passes, and says that nothing filters, unless `required` is true.

The rules come from `nft -j list ruleset` (nftables, and iptables-nft's rules), else from
`iptables-save`. A port let in only for some clients (a source address, an interface) is
`restricted` and passes; a rule opsfix cannot read makes the port "could not tell".
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.transport.base import CommandResult

from . import _firewall_rules as rules
from ._iptables_rules import from_iptables
from ._nft_rules import from_nft

_NFT = "nft -j list ruleset"
_IPTABLES = "if command -v nft >/dev/null 2>&1; then :; else iptables-save; fi"


class FirewallParams(Params):
    allow: list[int] = Field([], description="TCP ports that must be let in, e.g. [22, 80]")
    required: bool = Field(False, description="true: a host with no firewall fails")


class Firewall(Check[FirewallParams]):
    def commands(self) -> list[str]:
        return [_NFT, _IPTABLES]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        nft, iptables = results
        source, ran = ("nftables", nft) if nft.exit_status != 127 else ("iptables", iptables)
        if ran.exit_status == 127:
            why = "neither nft nor iptables-save is on the host"
            return CheckResult.error(f"cannot tell what filters traffic: {why}", firewall="unknown")
        try:
            chains = (from_nft if ran is nft else from_iptables)(ran.stdout)
        except (ValueError, KeyError, TypeError, IndexError):
            chains = None
        if not ran.ok or chains is None:
            why = ran.stderr.strip()[-300:] or "output opsfix cannot read"
            hint = " (become?)" if "not permitted" in why or "ermission" in why else ""
            return CheckResult.error(f"cannot read the {source} rules{hint}", stderr=why)
        inputs = {name: chain.policy for name, chain in chains.items() if chain.policy}
        if not inputs:
            verdict = CheckResult.failed if self.params.required else CheckResult.passed
            return verdict("no firewall: nothing filters incoming traffic", firewall="none")
        verdicts = {port: rules.judge(port, chains) for port in self.params.allow}
        ports: dict[str, list[int]] = {}
        for port, (outcome, _) in verdicts.items():
            ports.setdefault(outcome, []).append(port)
        facts: dict[str, object] = {"firewall": source, "input_policy": inputs, **ports}
        decided = {str(port): where[:200] for port, (_, where) in verdicts.items()}
        if "blocked" in ports:
            summary = f"{source} blocks port {_listed(ports['blocked'])}"
            return CheckResult.failed(summary, **facts, rules=decided)
        if "unclear" in ports:
            summary = f"cannot tell if {source} lets in port {_listed(ports['unclear'])}"
            return CheckResult.error(summary, **facts, rules=decided)
        asked = _listed(self.params.allow) or "(no port asked)"
        return CheckResult.passed(f"{source} lets in {asked}", **facts)


def _listed(ports: list[int]) -> str:
    return ", ".join(map(str, ports))
