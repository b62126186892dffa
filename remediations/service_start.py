"""Start a service that is not running; leave a running one alone.

Started by the first that applies: `systemctl start` where systemd runs and knows the
unit; the playbook's `start_command`; `/etc/init.d/<service> start`; the service name run
as a command, which must put itself in the background (nginx does). Else the plan
refuses. Rollback stops it the same way (without an init script: `pkill -x <process>`).
Processes of its name that its pid file does not name (workers of a killed master) are
stopped before the start.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, ShellCommand
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from . import _service
from ._service import ServiceState

DEFAULT_PID_FILES = {"nginx": "/run/nginx.pid"}  # as the service_running check assumes

# The playbook's word is `validate`; shadowing pydantic's deprecated `BaseModel.validate` is fine.
warnings.filterwarnings("ignore", 'Field name "validate" in "ServiceStartParams"', UserWarning)


class ServiceStartParams(Params):
    service: str = Field(description="systemd unit, /etc/init.d script or command name")
    process: str | None = Field(None, description="process name (pgrep -x); default: service")
    pid_file: str | None = Field(None, description="main pid file; nginx: /run/nginx.pid")
    validate: ShellCommand | None = Field(None, description="shell command that must pass first")  # type: ignore[assignment]
    start_command: ShellCommand | None = Field(
        None, description="shell command that starts it where systemd does not"
    )


class ServiceStart(Remediation[ServiceStartParams]):
    """Start the service if it is not running, after the optional validate command."""

    disruptive = True

    @property
    def process(self) -> str:
        return self.params.process or self.params.service

    @property
    def pid_file(self) -> str | None:
        return self.params.pid_file or DEFAULT_PID_FILES.get(self.params.service)

    def gather(self) -> list[str]:
        service, pid_file = self.params.service, self.pid_file
        return [_service.state_command(service, self.process, command=service, pid_file=pid_file)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        service = self.params.service
        state = _service.parse_state(facts[0])
        if state is None:
            reason = _service.failure(facts[0])
            return Plan(f"{service} state unknown", refuse=f"could not tell if it runs: {reason}")
        if state.is_running:
            return Plan(f"{service} is already running (found by {state.running})")
        start, stop = self._control(state)
        if start is None:
            return Plan(
                f"cannot start {service}",
                refuse=f"no systemd, no /etc/init.d/{service} and no {service!r} command on "
                "this host: give start_command in the playbook",
            )
        why = "it is not running"
        if state.running == "stray":  # processes the pid file does not name hold its ports
            start = f"{_service.clear_strays(self.process)}; {start}"
            why = f"stray {self.process} processes stopped first"
        running = _service.is_running(service, self.process, self.pid_file)
        return Plan(
            f"start {service} ({why})",
            validate=(self.params.validate,) if self.params.validate else (),
            act=(start,),
            rollback=(_service.only_if(running, stop, f"{service} is stopped"),),
        )

    def _control(self, state: ServiceState) -> tuple[str | None, str]:
        """How to start it, and how to stop it again (see the module's docstring)."""
        service, kill = self.params.service, cmd("pkill", "-x", self.process)
        if state.systemd and state.unit_loaded:
            return cmd("systemctl", "start", service), cmd("systemctl", "stop", service)
        if self.params.start_command:
            return self.params.start_command, kill
        if state.has_initd:
            script = f"/etc/init.d/{service}"
            return cmd(script, "start"), cmd(script, "stop")
        return (cmd(service) if state.on_path else None), kill
