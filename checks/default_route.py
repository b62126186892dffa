"""Healthy when the host has a default route (via `gateway` and `dev`, when given) whose
link is up, so it can reach networks beyond its own. A host that must reach nothing but
its own networks (an isolated practice lab) sets `required: false`: then having no default
route passes, and the summary says so. Judged from `ip -j route show` (the main table).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


class DefaultRouteParams(Params):
    family: Literal["inet", "inet6"] = Field("inet", description="inet (IPv4) or inet6 routes")
    gateway: str | None = Field(None, description="the next hop it must go through, if any")
    dev: str | None = Field(None, description="the interface it must leave by, e.g. eth0")
    required: bool = Field(True, description="false: no default route at all is healthy too")


class DefaultRoute(Check[DefaultRouteParams]):
    def commands(self) -> list[str]:
        flag = "-4" if self.params.family == "inet" else "-6"
        return [cmd("ip", "-j", flag, "route", "show")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        ip, p = results[0], self.params
        routes = _routes(ip)
        if routes is None:
            why = ip.stderr.strip()[-300:] or "no JSON from ip -j"
            return CheckResult.error("cannot list routes (ip -j route)", stderr=why)
        defaults = [r for r in routes if r.get("dst") == "default"]
        connected = sorted({r["dst"] for r in routes if r.get("dst") not in (None, "default")})
        facts: dict[str, Any] = {"connected": connected[:20]}
        if not defaults:
            reach = f"only {', '.join(connected)} can be reached" if connected else "no routes"
            if p.required:
                return CheckResult.failed(f"no default route: {reach}", **facts)
            return CheckResult.passed(f"no default route, none required: {reach}", **facts)
        facts["default"] = [_describe(r) for r in defaults][:10]
        wanted = [r for r in defaults if _matches(r, p.gateway, p.dev)]
        if not wanted:
            want = " ".join(f"{k} {v}" for k, v in (("via", p.gateway), ("dev", p.dev)) if v)
            return CheckResult.failed(f"no default route {want}", **facts)
        usable = [r for r in wanted if r.get("type", "unicast") == "unicast"]
        up = [r for r in usable if "linkdown" not in r.get("flags", [])]
        if not up:
            why = "its link is down" if usable else f"it is {wanted[0].get('type')}"
            return CheckResult.failed(f"default route {_describe(wanted[0])}: {why}", **facts)
        return CheckResult.passed(f"default route {_describe(up[0])}", **facts)


def _routes(ip: CommandResult) -> list[dict[str, Any]] | None:
    try:
        routes = json.loads(ip.stdout or "[]") if ip.ok else None
    except ValueError:
        return None
    return routes if isinstance(routes, list) else None


def _matches(route: dict[str, Any], gateway: str | None, dev: str | None) -> bool:
    return gateway in (None, route.get("gateway")) and dev in (None, route.get("dev"))


def _describe(route: dict[str, Any]) -> str:
    """As `ip route` prints it: `via 192.0.2.1 dev eth0`, `unreachable`, `dev wg0 linkdown`."""
    words = [] if route.get("type", "unicast") == "unicast" else [route["type"]]
    words += [
        f"{k} {route[key]}" for k, key in (("via", "gateway"), ("dev", "dev")) if key in route
    ]
    return " ".join(words + [f for f in route.get("flags", []) if f == "linkdown"])
