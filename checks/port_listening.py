"""Healthy when something listens on the TCP port (on `address`, when given) and, when
`process` is given, that process owns the socket.

Judged from `ss -ltnpH`. A failure says who holds the port instead (a stray process on
port 80 is a classic), or that nothing listens. ss shows a socket's owner only to root
or to the owner itself: an owner we cannot see is "could not tell", not a wrong owner.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_USER = re.compile(r'\("(?P<name>[^"]*)",pid=(?P<pid>\d+)')
_WILDCARDS = {"*": (4, 6), "0.0.0.0": (4,), "::": (6,)}


class PortListeningParams(Params):
    port: int = Field(ge=1, le=65535, description="TCP port number")
    process: str | None = Field(None, description="process expected to own it, e.g. nginx")
    address: str | None = Field(None, description='local address as ss shows it: "0.0.0.0", "*"')
    protocol: Literal["tcp"] = Field("tcp", description="only tcp for now")


class Listener(NamedTuple):
    address: str
    port: int
    owners: tuple[tuple[str, str], ...]  # (name, pid); empty when ss may not show them


class PortListening(Check[PortListeningParams]):
    def commands(self) -> list[str]:
        return [cmd("ss", "-ltnpH")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        ss, p = results[0], self.params
        if not ss.ok:
            return CheckResult.error("ss failed", exit=ss.exit_status, stderr=ss.stderr.strip())
        on_port = [x for x in map(_parse, ss.stdout.splitlines()) if x and x.port == p.port]
        mine = [x for x in on_port if p.address is None or _covers(x.address, p.address)]
        facts = {"port": p.port, "addresses": sorted({x.address for x in on_port})}
        if not mine:
            where = f" on {p.address}" if p.address and on_port else ""
            return CheckResult.failed(f"nothing listens on port {p.port}{where}", **facts)
        pairs = sorted({o for x in mine for o in x.owners})
        facts["owners"] = [f"{name}(pid={pid})" for name, pid in pairs][:10]
        names = ", ".join(sorted({name for name, _ in pairs})) or "owner not shown"
        if p.process is None or p.process in {name for name, _ in pairs}:
            return CheckResult.passed(f"port {p.port} is listening ({names})", **facts)
        if not all(x.owners for x in mine):
            return CheckResult.error(f"cannot see who owns port {p.port} (become?)", **facts)
        return CheckResult.failed(f"port {p.port} is held by {names}, not {p.process}", **facts)


def _parse(line: str) -> Listener | None:
    fields = line.split()
    if len(fields) < 5 or ":" not in fields[3]:
        return None
    address, _, port = fields[3].rpartition(":")
    owners = tuple((u["name"], u["pid"]) for u in _USER.finditer(line))
    return Listener(_bare(address), int(port), owners) if port.isdigit() else None


def _bare(address: str) -> str:
    return address.partition("%")[0].strip("[]")


def _covers(listening: str, wanted: str) -> bool:
    """The socket's address is the wanted one, or a wildcard of the wanted one's family."""
    wanted = _bare(wanted)
    if listening == wanted:
        return True
    try:
        return ipaddress.ip_address(wanted).version in _WILDCARDS.get(listening, ())
    except ValueError:
        return False
