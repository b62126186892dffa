"""Healthy when the service starts at boot: systemd runs the host and the unit file state
(`systemctl is-enabled`) is `enabled`. Disabled, masked, linked or only enabled until the
next reboot fails. States that do not say by themselves (`static`: only another unit pulls
it in; `indirect`, `generated`, `alias`) are "could not tell", and so is a host whose PID 1
is not systemd (containers, the practice lab): no unit file decides what starts there.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from .service_running import HAS_SYSTEMD

_INIT = f'if {HAS_SYSTEMD}; then echo systemd; else echo "init=$(cat /proc/1/comm)"; fi'
_UNCLEAR = {
    "static": "it has no [Install] section: it starts only when another unit pulls it in",
    "indirect": "it is enabled only through another unit (Also=) or a template instance",
    "generated": "a generator makes it at boot (an init script?): ask for what it runs",
    "alias": "that name is an alias: ask for the unit it stands for",
}
_FAILING = {
    "enabled-runtime": "enabled only until the next reboot",
    "masked": "masked: it cannot be started at all",
    "not-found": "there is no such unit",
}


class ServiceEnabledParams(Params):
    service: str = Field(description="the systemd unit; without a suffix, .service, e.g. nginx")


class ServiceEnabled(Check[ServiceEnabledParams]):
    def commands(self) -> list[str]:
        return [_INIT, cmd("systemctl", "is-enabled", "--", self.params.service)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        init, systemctl = results
        service = self.params.service
        # systemd-sysv-install prints its own lines first; the state is the last one
        state = (systemctl.stdout.strip().splitlines() or [""])[-1].strip()
        if not state and "No such file" in systemctl.stderr:
            state = "not-found"
        facts = {"unit_file_state": state or "unknown"}
        if init.stdout.strip() != "systemd":
            pid1 = init.stdout.strip().removeprefix("init=") or "unknown"
            why = f"PID 1 is {pid1}, not systemd: no unit file decides what starts at boot"
            return CheckResult.error(
                f"cannot tell if {service} starts at boot: {why}", init=pid1, **facts
            )
        if state == "enabled":
            return CheckResult.passed(f"{service} starts at boot (enabled)", **facts)
        if state in _UNCLEAR:
            return CheckResult.error(
                f"cannot tell if {service} starts at boot: {_UNCLEAR[state]}", **facts
            )
        if not state:
            stderr = systemctl.stderr.strip()[-300:]
            return CheckResult.error("systemctl is-enabled failed", stderr=stderr, **facts)
        why = _FAILING.get(state, f"it is {state}")
        return CheckResult.failed(f"{service} does not start at boot: {why}", **facts)
