"""nftables' rules (`nft -j list ruleset`) read into `_firewall_rules`' shape: chains by
`family table chain`; only ip and inet base chains on the input hook see IPv4 traffic.
Expressions this reader does not know (vmap, xt matches that iptables-nft made, queue)
make a rule's conditions unknown.
"""

from __future__ import annotations

import json
from typing import Any

from ._firewall_rules import Chain, Ports, Rule, known

_KNOWN_META = {"iif", "iifname", "saddr", "daddr"}
_SILENT = {"counter", "log", "comment", "notrack"}  # statements that neither match nor decide
_NAMED = {"ssh": 22, "http": 80, "https": 443}
_OUR_FAMILIES = ("ip", "inet")  # IPv4: ip6-only tables do not see it


def from_nft(text: str) -> dict[str, Chain]:
    """Chains by `family table chain`, from nft's JSON."""
    items = json.loads(text)["nftables"]
    heads = {_key(c, c["name"]): c for c in (i["chain"] for i in items if "chain" in i)}
    rules: dict[str, list[Rule]] = {key: [] for key in heads}
    for rule in (i["rule"] for i in items if "rule" in i):
        rules.setdefault(_key(rule, rule["chain"]), []).append(_nft_rule(rule))
    return {key: _nft_chain(heads.get(key, {}), found) for key, found in rules.items()}


def _key(item: dict[str, Any], chain: str) -> str:
    return f"{item['family']} {item['table']} {chain}"


def _nft_chain(head: dict[str, Any], rules: list[Rule]) -> Chain:
    hooked = head.get("hook") == "input" and head.get("family") in _OUR_FAMILIES
    priority = head.get("prio", 0)
    policy = head.get("policy", "accept") if hooked else None
    return Chain(policy, tuple(rules), priority if isinstance(priority, int) else 0)


def _nft_rule(rule: dict[str, Any]) -> Rule:
    facts: dict[str, Any] = {"verdict": None, "conditions": "none", "applies": True}
    for expr in rule["expr"]:
        ((kind, body),) = expr.items()
        if kind in ("accept", "drop", "reject", "return"):
            facts["verdict"] = "drop" if kind == "reject" else kind
        elif kind in ("jump", "goto"):
            facts["verdict"] = f"{kind} {_key(rule, body['target'])}"
        elif kind == "match":
            _nft_match(body, facts)
        elif kind == "limit":
            known(facts)
        elif kind not in _SILENT:  # vmap, xt (rules iptables-nft made), queue, sets, ...
            facts.update(conditions="unknown", verdict=facts["verdict"] or "unclear")
    where = f"{_key(rule, rule['chain'])} #{rule.get('handle')}"
    return Rule(where, facts["verdict"], facts.get("ports"), facts["applies"], facts["conditions"])


def _nft_match(body: dict[str, Any], facts: dict[str, Any]) -> None:
    left, right = body["left"], body["right"]
    payload, meta, ct = left.get("payload", {}), left.get("meta", {}), left.get("ct", {})
    if body["op"] not in ("==", "in"):
        facts["conditions"] = "unknown"
    elif payload.get("field") == "dport" and payload.get("protocol") in ("tcp", "th"):
        facts["ports"] = _ranges(right)
    elif meta.get("key") in ("iif", "iifname") and right == "lo":
        facts["applies"] = False
    elif payload.get("protocol") in ("ip", "ip6") or meta.get("key") in _KNOWN_META:
        facts["applies"] &= payload.get("protocol") != "ip6"
        known(facts)
    elif meta.get("key") in ("l4proto", "protocol", "nfproto"):
        facts["applies"] &= right in ("tcp", "ip", "ipv4")
    elif ct.get("key") == "state":
        facts["applies"] &= "new" in (right if isinstance(right, list) else [right])
    elif payload:  # another protocol's header (udp, icmp): never a TCP connection
        facts["applies"] = False
    else:
        facts["conditions"] = "unknown"


def _ranges(right: Any) -> Ports:
    values = right["set"] if isinstance(right, dict) and "set" in right else [right]
    found: list[tuple[int, int]] = []
    for value in values:
        if isinstance(value, dict) and "range" in value:
            found.append((int(value["range"][0]), int(value["range"][1])))
        elif isinstance(value, int) or value in _NAMED:
            found.append((_NAMED.get(value, value),) * 2)
    return tuple(found)
