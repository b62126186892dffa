"""Stop the processes that hold a TCP port its rightful owner needs (a stray server on 80).

Listing this remediation in a playbook is the opt-in to stopping processes; nothing else
in opsfix stops a process it did not start. It stops only processes that *listen on that
port* (`ss -ltnpH`) and are not named `owner`, never PID 1 or a `protect`ed name (sshd by
default), and each only if it is still the same process (its start time) when the signal
is sent: TERM, up to `grace` seconds to leave, then KILL. The plan names every process
with its command line. It does not start the owner: list `nginx_reload` or
`service_start` after it. A stopped process cannot be brought back, so there is no
rollback; the change is kept even though the port check fails until the owner starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field

from opsfix.checks.port_listening import Listener, _parse
from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

from . import _service

_GATHER = """ss -ltnpH "sport = :{port}" || exit 2
echo --
for pid in $(ss -ltnpH "sport = :{port}" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -un); do
  start=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)
  printf '%s %s %s\\n' "$pid" "${{start:--}}" "$(tr '\\0' ' ' <"/proc/$pid/cmdline" | head -c 300)"
done"""

# $1 pid, $2 start time, $3 grace: stop it only while it is the process that was planned.
_STOP = """pid=$1 start=$2 grace=$3
same() {  # still the planned process, and not a zombie
  s=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$(echo "$s" | cut -d' ' -f20)" = "$start" ] && [ "$(echo "$s" | cut -d' ' -f1)" != Z ]
}
same || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
n=0; while same && [ $n -lt $((grace * 10)) ]; do sleep 0.1; n=$((n + 1)); done
if same; then kill -KILL "$pid"; sleep 0.2; fi
! same || { echo "pid $pid did not stop" >&2; exit 1; }"""


class Holder(NamedTuple):
    pid: str
    name: str
    start: str
    command: str


class FreePortParams(Params):
    port: int = Field(ge=1, le=65535, description="the TCP port to free")
    owner: str = Field(description="process name that may keep it, e.g. nginx (never stopped)")
    protect: list[str] = Field(["sshd", "systemd", "init"], description="names never stopped")
    grace: int = Field(5, ge=1, le=60, description="seconds between TERM and KILL")


class FreePort(Remediation[FreePortParams]):
    """Stop the non-owner processes listening on the port, after naming them."""

    disruptive = True

    def gather(self) -> list[str]:
        return [_GATHER.format(port=int(self.params.port))]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p, out = self.params, facts[0]
        if not out.ok or "--" not in out.stdout.splitlines():
            return Plan(f"port {p.port} untouched", refuse=f"ss failed: {_service.failure(out)}")
        listing, _, details = out.stdout.partition("--\n")
        listeners = [x for x in map(_parse, listing.splitlines()) if x and x.port == p.port]
        if any(not x.owners for x in listeners):
            return Plan(f"port {p.port} untouched", refuse="cannot see who listens (become?)")
        holders = _holders(listeners, details, p.owner)
        if not holders:
            return Plan(f"nothing but {p.owner} listens on port {p.port}: nothing to stop")
        bad = [h for h in holders if h.pid == "1" or h.name in p.protect or h.start == "-"]
        if bad:
            who = ", ".join(f"{h.name} (pid {h.pid})" for h in bad)
            return Plan(f"port {p.port} untouched", refuse=f"will not stop {who}: stop it by hand")
        named = "; ".join(f"{h.name} pid {h.pid}: {h.command.strip()}" for h in holders)
        stops = [cmd("sh", "-c", _STOP, "stop", h.pid, h.start, p.grace) for h in holders]
        return Plan(
            f"stop what holds port {p.port} instead of {p.owner}: {named}",
            act=(" && ".join(stops) + f" && {_still_held(p.port, p.owner)}",),
            partial_ok=True,
        )


def _holders(listeners: Sequence[Listener], details: str, owner: str) -> list[Holder]:
    """Each listening process not named `owner`, with its start time and command line."""
    names = {pid: name for x in listeners for name, pid in x.owners if name != owner}
    found = {}
    for line in details.splitlines():
        pid, _, rest = line.partition(" ")
        start, _, command = rest.partition(" ")
        if pid in names:
            found[pid] = Holder(pid, names[pid], start, command)
    return [found.get(pid, Holder(pid, name, "-", "")) for pid, name in sorted(names.items())]


def _still_held(port: int, owner: str) -> str:
    """Fails (naming them) when processes other than the owner still listen on the port."""
    left = f'ss -ltnpH "sport = :{port}" | grep -v {quote(chr(34) + owner + chr(34))}'
    return f'{{ ! {left} >&2 || {{ echo "port {port} is still held" >&2; false; }}; }}'
