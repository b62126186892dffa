"""Healthy when the host's network interfaces are up with addresses: every interface in
`names` exists, is up (set up by an admin, and with a carrier) and holds an address of
`family`. Without `names`, every interface that is set up is judged that way (loopback and
ports of a bridge or bond aside), and at least one must be. Link-local addresses (fe80::)
do not count: no other network reaches the host on them. Judged from `ip -j addr show`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class InterfacesParams(Params):
    names: list[str] = Field([], description="interfaces that must be up; default: all set up")
    family: Literal["inet", "inet6", "any"] = Field(
        "inet", description="the address family each must hold: inet (IPv4), inet6 or any"
    )


class Interfaces(Check[InterfacesParams]):
    def commands(self) -> list[str]:
        return [cmd("ip", "-j", "addr", "show")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        ip = results[0]
        try:
            links = {link["ifname"]: link for link in json.loads(ip.stdout)} if ip.ok else None
        except (ValueError, TypeError, KeyError):
            links = None
        if links is None:
            why = ip.stderr.strip()[-300:] or "no JSON from ip -j"
            return CheckResult.error("cannot list interfaces (ip -j addr)", stderr=why)
        shown = {name: self._describe(link) for name, link in links.items()}
        judged = self.params.names or [n for n, link in links.items() if _is_set_up(link)]
        problems: dict[str, list[str]] = {}
        for name in judged:
            problem = self._problem(links.get(name))
            if problem:
                problems.setdefault(problem, []).append(name)
        facts = {"interfaces": list(shown.values())[:20]}
        if problems:
            summary = "; ".join(f"{', '.join(n)}: {self._say(key)}" for key, n in problems.items())
            return CheckResult.failed(summary, **facts, **problems)
        if not judged:
            return CheckResult.failed("no interface is up besides the loopback", **facts)
        return CheckResult.passed(f"up with addresses: {', '.join(judged)}", **facts)

    def _problem(self, link: dict[str, Any] | None) -> str | None:
        """None, or the evidence key: missing, down, no_carrier, no_address."""
        if link is None:
            return "missing"
        if "UP" not in link.get("flags", []):
            return "down"
        if "LOWER_UP" not in link.get("flags", []):
            return "no_carrier"
        return None if self._addresses(link) else "no_address"

    def _say(self, key: str) -> str:
        family = {"inet": "IPv4", "inet6": "IPv6", "any": "usable"}[self.params.family]
        return f"no {family} address" if key == "no_address" else key.replace("_", " ")

    def _addresses(self, link: dict[str, Any]) -> list[str]:
        family = self.params.family
        return [
            f"{a['local']}/{a['prefixlen']}"
            for a in link.get("addr_info", [])
            if a.get("scope") != "link" and family in ("any", a.get("family"))
        ]

    def _describe(self, link: dict[str, Any]) -> str:
        state = "up" if _is_set_up(link) or "LOOPBACK" in link.get("flags", []) else "down"
        carrier = "" if "LOWER_UP" in link.get("flags", []) or state == "down" else " no-carrier"
        return " ".join([link["ifname"], state + carrier, *self._addresses(link)])


def _is_set_up(link: dict[str, Any]) -> bool:
    """Set up by an admin, and neither the loopback nor a port of a bridge or bond."""
    flags = link.get("flags", [])
    return "UP" in flags and "LOOPBACK" not in flags and "master" not in link
