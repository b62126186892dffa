"""iptables' rules (`iptables-save`) read into `_firewall_rules`' shape: the filter
table's chains by name; only INPUT is a base chain. Options this reader does not know
(`-m recent`, `!` negations, ...) make a rule's conditions unknown.
"""

from __future__ import annotations

import shlex
from typing import Any

from ._firewall_rules import Chain, Rule, known


def from_iptables(text: str) -> dict[str, Chain]:
    """The filter table's chains by name, from `iptables-save`."""
    table = ""
    policies: dict[str, str | None] = {}
    rules: dict[str, list[Rule]] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "filter" and line.startswith(":"):
            name, policy = line[1:].split()[:2]
            policies[name], rules[name] = (policy.lower() if name == "INPUT" else None), []
        elif table == "filter" and line.startswith("-A "):
            words = shlex.split(line)
            rules.setdefault(words[1], []).append(_iptables_rule(line, words[2:]))
    return {name: Chain(policies.get(name), tuple(found)) for name, found in rules.items()}


def _iptables_rule(line: str, words: list[str]) -> Rule:
    facts: dict[str, Any] = {"verdict": None, "conditions": "none", "applies": True}
    while words:
        word, value = words[0], (words[1:2] or [""])[0]
        words = words[2:]
        if word in ("-j", "-g"):  # the target and its own options come last
            verdict = value.lower()
            if verdict not in ("accept", "drop", "reject", "return", "log"):
                verdict = f"{'jump' if word == '-j' else 'goto'} {value}"
            facts["verdict"] = {"reject": "drop", "log": None}.get(verdict, verdict)
            break
        if word == "-p":
            facts["applies"] &= value in ("tcp", "6", "all")
        elif word in ("--dport", "--dports", "--destination-port", "--destination-ports"):
            facts["ports"] = tuple(_span(v) for v in value.split(","))
        elif word in ("-i", "--in-interface"):
            facts["applies"] &= value != "lo"
            known(facts)
        elif word in ("-s", "-d", "--source", "--destination", "--limit", "--limit-burst"):
            known(facts)
        elif word in ("--ctstate", "--state"):
            facts["applies"] &= "NEW" in value.split(",")
        elif word == "--syn":
            words.insert(0, value)  # a flag: no value of its own
        elif not (
            word == "-m" and value in ("tcp", "multiport", "conntrack", "state", "limit", "comment")
        ):
            facts["conditions"] = "unknown" if word != "--comment" else facts["conditions"]
    return Rule(line, facts["verdict"], facts.get("ports"), facts["applies"], facts["conditions"])


def _span(value: str) -> tuple[int, int]:
    low, _, high = value.partition(":")
    return int(low), int(high or low)
