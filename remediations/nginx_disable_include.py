"""Let a stopped nginx start again by disabling the one extra include `nginx -t` blames.

The last resort when no known-good copy exists anywhere: a `sites-enabled/` entry or a
`conf.d/*.conf` file (what `include` globs load) is moved aside, kept in the transaction's
backup, and the rest of the tree must then pass `nginx -t`. The other sites come back; the
disabled one does not, so the host is reported failed for a person to restore it. A
running nginx is never touched: it still serves its loaded config, and disabling a live
site would cause the very outage this prevents.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Params, Plan, Remediation, Remove
from opsfix.transport.base import CommandResult

from . import _nginx, _service

INCLUDES = ["sites-enabled/*", "conf.d/*.conf"]


class NginxDisableIncludeParams(Params):
    root: str = Field("/etc/nginx", description="the nginx config folder (holds nginx.conf)")
    includes: list[str] = Field(INCLUDES, description="globs under root that may be disabled")
    binary: str = Field("nginx", description="the nginx command on the host")
    service: str = Field("nginx", description="the systemd unit, where the host runs systemd")


class NginxDisableInclude(Remediation[NginxDisableIncludeParams]):
    """Move aside the extra include nginx -t blames, only while nginx is stopped."""

    Params = NginxDisableIncludeParams
    disruptive = True

    def gather(self) -> list[str]:
        p = self.params
        return [_nginx.state_and_test_command(p.binary, p.service, p.root)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        root = self.params.root
        ran, tested = _nginx.split_state_and_test(facts[0])
        state, fault = _service.parse_state(ran), _nginx.read_fault(tested)
        if state is None:
            why = _service.failure(ran)
            return Plan("nothing disabled", refuse=f"could not tell if nginx runs: {why}")
        if fault is None:
            return Plan("nothing disabled", refuse="nginx -t names no file at fault")
        said = f"nginx -t: {fault.message} in {fault.where}"
        if state.running != "no":
            return Plan(
                "nothing disabled",
                refuse=f"{said}; nginx is running and serves its loaded config: disabling a "
                "site would take it down, so nothing was changed; fix that file by hand",
            )
        blamed = self._include(fault)
        if blamed is None:
            return Plan(
                "nothing disabled",
                refuse=f"{said}; that is not an extra include ({', '.join(self.params.includes)} "
                f"under {root}): nothing can be disabled safely",
            )
        disabled = f"{blamed} disabled: it is kept in this repair's backup; restore it by hand"
        return Plan(
            f"disable {blamed} ({said}) so that nginx can start; moved aside, kept in the backup",
            changes=(Remove(blamed, root),),
            stage_root=root,
            validate=(_nginx.staged_test(self.params.binary),),
            attention=disabled,
        )

    def _include(self, fault: _nginx.Fault) -> str | None:
        """The blamed file itself, else what it could not open, if it is an extra include."""
        for path in (fault.file, fault.cannot_open):
            rel = _nginx.relative_to(self.params.root, path) if path else None
            if rel and any(_nginx.matches(rel, glob) for glob in self.params.includes):
                return path
        return None
