"""Make nginx serve its current config: reload it when it runs, start it when it does not.

`nginx -t` must pass on the live tree first. A running nginx is reloaded, never restarted:
through systemd when the unit runs it, else with `nginx -s reload`. A stopped one is
started (`systemctl start`, or plain `nginx` on hosts without systemd), and stopped again
on rollback, so a failed start leaves the host as it was. nginx processes that its pid file
does not name (workers left by a master killed with -9) are stopped before the start.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from . import _nginx, _service


class NginxReloadParams(Params):
    binary: str = Field("nginx", description="the nginx command on the host (name or path)")
    service: str = Field("nginx", description="the systemd unit, where the host runs systemd")


class NginxReload(Remediation[NginxReloadParams]):
    """Reload nginx if it runs, start it if not; validate with `nginx -t` first."""

    disruptive = True

    def gather(self) -> list[str]:
        return [_nginx.state_command(self.params.binary, self.params.service)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        binary, service = self.params.binary, self.params.service
        state = _service.parse_state(facts[0])
        if state is None:
            reason = _service.failure(facts[0])
            return Plan("nginx state unknown", refuse=f"could not tell if nginx runs: {reason}")
        if not state.on_path:
            return Plan("nginx not found", refuse=f"no {binary!r} command on the host's PATH")
        validate = (cmd(binary, "-t"),)
        if state.is_running:
            how = "systemctl reload" if state.running == "systemd" else "nginx -s reload"
            return Plan(
                f"reload nginx ({how})", validate=validate, act=(_nginx.reload(binary, service),)
            )
        start = cmd("systemctl", "start", service) if state.systemd else cmd(binary)
        stop = cmd("systemctl", "stop", service) if state.systemd else cmd(binary, "-s", "quit")
        why = "it is not running"
        if state.running == "stray":  # no master to reload: clear what holds the ports
            start = f"{_service.clear_strays(posixpath.basename(binary))}; {start}"
            why = "no master; its stray processes are stopped first"
        return Plan(
            f"start nginx ({why})",
            validate=validate,
            act=(start,),
            rollback=(_service.only_if(_nginx.running(binary, service), stop, "nginx is stopped"),),
        )
