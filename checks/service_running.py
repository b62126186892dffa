"""Healthy when the service runs: its unit is active where systemd knows it; elsewhere (no
systemd, as on lab hosts, or no such unit) a process of that exact name runs and the pid
file, when one applies, names a live one. `nginx -s reload` needs that file, so a stale or
missing one fails even while processes run. The host, not the inventory, decides the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

HAS_SYSTEMD = "[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1"
DEFAULT_PID_FILES = {"nginx": "/run/nginx.pid"}
_PROPERTIES = "--property=LoadState,ActiveState,UnitFileState,MainPID"


class ServiceRunningParams(Params):
    service: str = Field(description="systemd unit or daemon name, e.g. nginx")
    process: str | None = Field(None, max_length=15, description="for pgrep -x; default: service")
    pid_file: str | None = Field(None, description='default: nginx /run/nginx.pid; "": none')


class ServiceRunning(Check[ServiceRunningParams]):
    @property
    def process(self) -> str:
        return self.params.process or self.params.service

    @property
    def pid_file(self) -> str | None:
        given, default = self.params.pid_file, DEFAULT_PID_FILES.get(self.params.service)
        return (default if given is None else given) or None

    def commands(self) -> list[str]:
        show = cmd("systemctl", "show", _PROPERTIES, "--", self.params.service)
        # -a: the command lines too, as a verify suite asks for them (`nginx: master
        # process`): the same command, so on a host a run leaves alone both share it
        listing = cmd("pgrep", "-a", "-x", "--", self.process)
        commands = [f"if {HAS_SYSTEMD}; then {show}; fi", listing]
        if self.pid_file:
            f = quote(self.pid_file)
            # shell builtins only: no `head` or `grep` process for two lines
            status = '"/proc/$p/status"'
            lines = 'case "$l" in Name:*|State:*) echo "$l" ;; esac'
            show = f"[ -r {status} ] && while IFS= read -r l; do {lines}; done < {status}"
            read = f'p=; read -r p < {f}; echo "Pid: $p"; [ -n "$p" ] && {show}'
            commands.append(f"if [ -f {f} ]; then {read}; fi; true")
        return commands

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        unit, pgrep = results[0], results[1]
        if not unit.ok:
            return CheckResult.error("systemctl show failed", stderr=unit.stderr.strip())
        lines = [line.split(maxsplit=1) for line in pgrep.stdout.splitlines()]
        found = [int(fields[0]) for fields in lines if fields][:20]  # evidence stays short
        pids = found if pgrep.exit_status in (0, 1) else None
        state = _fields(unit.stdout)
        if state.get("LoadState", "not-found") != "not-found":
            active = state.get("ActiveState", "")
            facts = {
                "enabled": state.get("UnitFileState", ""),
                "main_pid": int(state.get("MainPID", 0)),
            }
            return self._verdict("systemd", active, f"unit is {active}", pids=pids or [], **facts)
        if self.pid_file:
            named = _fields(results[2].stdout, ":")
            problem = self._pid_file_problem(named)
            facts = {"pids": pids or [], "pid_file": self.pid_file, "pid": named.get("Pid", "")}
            return self._verdict("pid_file", "inactive" if problem else "active", problem, **facts)
        if pids is None:
            return CheckResult.error("cannot list processes (pgrep)", stderr=pgrep.stderr.strip())
        active = "active" if pids else "inactive"
        return self._verdict("process", active, f"no process named {self.process}", pids=pids)

    def _pid_file_problem(self, found: dict[str, str]) -> str | None:
        if not found:
            return f"{self.pid_file} is missing"
        if found.get("Name") != self.process or found.get("State", "Z").startswith("Z"):
            return f"{self.pid_file} names {found['Pid'] or 'nothing'}, not a live {self.process}"
        return None

    def _verdict(self, judged_by: str, active: str, why: str | None, **facts: Any) -> CheckResult:
        facts = {"judged_by": judged_by, "active": active, **facts}
        if active == "active":
            return CheckResult.passed(f"{self.params.service} is running ({judged_by})", **facts)
        return CheckResult.failed(f"{self.params.service} is not running: {why}", **facts)


def _fields(text: str, separator: str = "=") -> dict[str, str]:
    """`key=value` lines (systemctl show), or `Key:<tab>value` ones (/proc/PID/status)."""
    pairs = (line.partition(separator) for line in text.splitlines())
    return {key: value.strip() for key, _, value in pairs}
