"""Choose practice hosts, and run a drill script on each over opsfix's own SSH transport.

The practice gate comes first and decides alone: every host a command targets must say
`practice: true` in its *inventory* variables (extra vars cannot say it for them), or the
command refuses before any host is contacted. Scripts then run on each host in parallel,
over connections opened as every opsfix run opens them (resolve_spec: same host keys,
same become); one host's failure never stops the others.
"""

from __future__ import annotations

import getpass
import posixpath
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from opsfix.errors import CommandTimeout, ConnectionFailed, InventoryError, OptionsError
from opsfix.inventory.host import Host
from opsfix.secret import Secret
from opsfix.transport.spec import DEFAULT_OUTPUT_LIMIT

Status = Literal["ok", "failed", "unreachable"]
TRUE_WORDS = ("true", "yes", "on", "1")
DEFAULT_WEB_ROOT = "/var/www/html"


class DrillRefused(OptionsError):
    """A drill command targets a host that is not a practice host: nothing ran anywhere."""


@dataclass(frozen=True)
class Connect:
    """How to reach hosts: the options every opsfix command that connects takes."""

    ssh_config: Path | None = None
    known_hosts: Sequence[str] = ()
    trust_new_host_keys: bool = False
    become_password: Secret | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    forks: int = 10


@dataclass(frozen=True)
class ActiveDrill:
    """A drill recorded on a host, as `status` reads it."""

    name: str
    since: str
    still_broken: bool | None  # None: the host cannot tell (an unknown drill)
    by: str = ""


@dataclass
class HostOutcome:
    host: str
    status: Status
    message: str = ""
    lines: list[str] = field(default_factory=list)
    exit_status: int = 0


def is_practice(host: Host) -> bool:
    """True only when the inventory itself says `practice: true` (or yes/on/1)."""
    value = host.vars.get("practice")
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in TRUE_WORDS


def practice_hosts(inventory: Sequence[Path], limit: str | None, action: str) -> list[Host]:
    """The targeted hosts, all of them practice hosts, or DrillRefused naming the others."""
    from opsfix.inventory import load_inventory

    loaded = load_inventory(inventory)
    hosts = loaded.match(limit).hosts
    if not hosts:
        raise InventoryError(f"--limit {limit!r} matched no host" if limit else "no hosts")
    others = [h.name for h in hosts if not is_practice(h)]
    if others:
        raise DrillRefused(
            f"drill {action}: refused: {', '.join(others)} "
            f"{'is not a practice host' if len(others) == 1 else 'are not practice hosts'} "
            "(drills run only on hosts whose inventory sets `practice: true`); "
            "nothing was changed on any host"
        )
    return hosts


def web_root(host: Host) -> str:
    """The host's web root from its inventory, checked to be a plain absolute folder."""
    value = str(host.vars.get("web_root", DEFAULT_WEB_ROOT))
    if not value.startswith("/") or value == "/" or posixpath.normpath(value) != value:
        raise InventoryError(f"host {host.name!r}: web_root {value!r} is not an absolute folder")
    return value


def who() -> str:
    """Who breaks a host, for its record: user@machine."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def run_everywhere(
    hosts: Sequence[Host], script_for: Callable[[Host], str], connect: Connect
) -> list[HostOutcome]:
    """Run each host's script on it, in parallel; outcomes in the hosts' order."""
    for host in hosts:
        web_root(host)  # every input error before any host is contacted
    with ThreadPoolExecutor(max_workers=max(1, min(connect.forks, len(hosts)))) as pool:
        return list(pool.map(lambda h: _run_one(h, script_for(h), connect), hosts))


def _run_one(host: Host, script: str, connect: Connect) -> HostOutcome:
    from opsfix.runner import connection_spec
    from opsfix.transport.connect import open_connection

    spec = connection_spec(host, connect)
    try:
        conn = open_connection(spec)
    except ConnectionFailed as exc:
        return HostOutcome(host.name, "unreachable", exc.reason)
    try:
        result = conn.run(script)
    except (ConnectionFailed, CommandTimeout) as exc:
        return HostOutcome(host.name, "failed", str(exc))
    finally:
        conn.close()
    lines = result.stdout.splitlines()
    if result.ok:
        return HostOutcome(host.name, "ok", lines=lines)
    message = (result.stderr.strip().splitlines() or [f"exit {result.exit_status}"])[-1]
    return HostOutcome(host.name, "failed", message, lines, result.exit_status)


def parse_status(lines: Sequence[str]) -> list[ActiveDrill]:
    """`drill=NAME since=TIME still=yes|no|unknown by=WHO` lines, as status_script prints."""
    found = []
    for line in lines:
        fields = dict(f.partition("=")[::2] for f in line.split())
        if "drill" in fields:
            still = {"yes": True, "no": False}.get(fields.get("still", ""))
            since, by = fields.get("since", "?"), fields.get("by", "")
            found.append(ActiveDrill(fields["drill"], since, still, by))
    return found


__all__ = [
    "ActiveDrill",
    "Connect",
    "DrillRefused",
    "HostOutcome",
    "is_practice",
    "parse_status",
    "practice_hosts",
    "run_everywhere",
    "web_root",
    "who",
]
