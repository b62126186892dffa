"""Firewall rules in one shape, for the `firewall` check, and the question asked of them:
would a new IPv4 TCP connection from another host to port P get in? Per rule, only what
decides that is kept: the ports it matches, whether it can match such a connection at all
(established-only and loopback rules cannot), whether its other conditions are understood
(addresses, interfaces, limits: some clients only) or not, and its verdict. `_nft_rules`
and `_iptables_rules` read them. What cannot be read makes the answer "unclear".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Ports = tuple[tuple[int, int], ...] | None  # inclusive ranges; None: any port


@dataclass(frozen=True)
class Rule:
    where: str  # for evidence: the iptables-save line, or nft's `family table chain #handle`
    verdict: str | None  # accept, drop, return, jump CHAIN, goto CHAIN, unclear; None: none
    ports: Ports = None
    applies: bool = True  # False: cannot match a new TCP connection from another host
    conditions: str = "none"  # none, known (addresses, interfaces, limits), unknown

    def covers(self, port: int) -> bool:
        return self.applies and (self.ports is None or any(a <= port <= b for a, b in self.ports))


@dataclass(frozen=True)
class Chain:
    policy: str | None  # accept or drop for a base chain on the input hook; None otherwise
    rules: tuple[Rule, ...]
    priority: int = 0


def known(facts: dict[str, Any]) -> None:
    """Mark a rule being read as having conditions we understand (unless worse already)."""
    if facts["conditions"] == "none":
        facts["conditions"] = "known"


def judge(port: int, chains: dict[str, Chain]) -> tuple[str, str]:
    """allowed, restricted (for some clients only), blocked or unclear; and what decided."""
    outcomes = []
    base = sorted((c for c in chains.items() if c[1].policy), key=lambda c: c[1].priority)
    for name, chain in base:
        outcome, seen, where = _walk(port, chain, chains, 0)
        if outcome is None:
            outcome, where = _final(chain.policy or "accept", seen), f"{name} policy {chain.policy}"
        outcomes.append((outcome, where))
    for wanted in ("blocked", "unclear", "restricted", "allowed"):
        found = [where for outcome, where in outcomes if outcome == wanted]
        if found:
            return wanted, found[0]
    return "allowed", "no input chain"


def _walk(
    port: int, chain: Chain, chains: dict[str, Chain], depth: int
) -> tuple[str | None, set[str], str]:
    """The outcome for `port` in one chain (None: it falls through or returns)."""
    seen: set[str] = set()  # maybe_accept, maybe_drop, restricted: from conditional rules
    for rule in (r for r in chain.rules if r.verdict and r.covers(port)):
        verdict, where = rule.verdict or "", rule.where
        if verdict.startswith(("jump ", "goto ")):
            target = chains.get(verdict.partition(" ")[2])
            inner, inner_seen, inner_where = (
                ("unclear", set(), where)
                if target is None or depth > 10
                else _walk(port, target, chains, depth + 1)
            )
            seen |= inner_seen
            if inner is None and verdict.startswith("jump"):
                continue
            verdict, where = inner or "return", inner_where
        if rule.conditions != "none":
            seen |= _maybe(verdict, rule.conditions)
        elif verdict == "return":
            return None, seen, where
        else:
            return _final(verdict, seen), seen, where
    return None, seen, ""


def _maybe(verdict: str, conditions: str) -> set[str]:
    """What a rule that matches only some connections adds to what we know."""
    if verdict in ("accept", "allowed", "restricted"):
        return {"restricted"} if conditions == "known" else {"maybe_accept"}
    if verdict in ("drop", "blocked"):
        return set() if conditions == "known" else {"maybe_drop"}
    return {"maybe_accept", "maybe_drop"}  # unclear, or a return that skips the rest


def _final(verdict: str, seen: set[str]) -> str:
    if verdict in ("accept", "allowed"):
        return "unclear" if "maybe_drop" in seen else "allowed"
    if verdict in ("drop", "blocked"):
        if "maybe_accept" in seen:
            return "unclear"
        return "restricted" if "restricted" in seen else "blocked"
    return verdict
