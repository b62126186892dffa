"""Healthy when nothing listens on a non-loopback address except on the allowed ports.

What listens on 127.0.0.1 or ::1 is reachable from the host only and is never judged;
everything else (0.0.0.0, ::, *, a host's own address) is exposed. Judged from
`ss -lnpH`; each unexpected socket is named with its owning process (ss shows owners
only to root: without `become` the port is still judged, the owner shows as hidden).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Annotated, Literal, NamedTuple

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_OWNER = re.compile(r'\("(?P<name>[^"]*)",pid=(?P<pid>\d+)')
_FLAGS = {"tcp": "-ltnpH", "udp": "-lunpH"}
Port = Annotated[int, Field(ge=1, le=65535)]


class ListeningPortsParams(Params):
    allowed: list[Port] = Field([22, 80], description="ports that may listen on the network")
    protocols: list[Literal["tcp", "udp"]] = Field(["tcp"], min_length=1, description="judged")


class Socket(NamedTuple):
    protocol: str
    address: str
    port: int
    owners: tuple[str, ...]

    def describe(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}/{self.protocol} {','.join(self.owners) or 'owner hidden'}"


class ListeningPorts(Check[ListeningPortsParams]):
    def commands(self) -> list[str]:
        return [cmd("ss", _FLAGS[p]) for p in self.params.protocols]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            return CheckResult.error("ss failed", exit=failed.exit_status, stderr=failed.stderr)
        sockets = [
            s
            for protocol, r in zip(self.params.protocols, results, strict=True)
            for s in (_parse(protocol, line) for line in r.stdout.splitlines())
            if s and not _is_loopback(s.address)
        ]
        unexpected = [s for s in sockets if s.port not in self.params.allowed]
        facts = {"listening": sorted({s.describe() for s in sockets})[:20]}
        allowed = ", ".join(map(str, self.params.allowed)) or "none"
        if unexpected:
            facts["unexpected"] = sorted({s.describe() for s in unexpected})[:20]
            ports = ", ".join(sorted({f"{s.port}/{s.protocol}" for s in unexpected}))
            return CheckResult.failed(
                f"unexpected ports open: {ports} (allowed: {allowed})", **facts
            )
        return CheckResult.passed(f"only allowed ports listen ({allowed})", **facts)


def _parse(protocol: str, line: str) -> Socket | None:
    fields = line.split()
    if len(fields) < 5 or ":" not in fields[3]:
        return None
    address, _, port = fields[3].rpartition(":")
    if not port.isdigit():
        return None
    owners = tuple(sorted({f"{m['name']}(pid={m['pid']})" for m in _OWNER.finditer(line)}))
    return Socket(protocol, address.partition("%")[0].strip("[]"), int(port), owners[:5])


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # "*": every address
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)
