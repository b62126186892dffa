"""Service control as shell text: systemd where it runs, else the daemon's own tools.

Whether a host runs systemd is decided on the host (`HAS_SYSTEMD`), never assumed from
the inventory: lab hosts are namespaces without it, VMs and servers have it. A service
runs when its unit is active; else, when it has a pid file, when that file names a live
process of the right name; else when a process of that exact name runs (`pgrep -x`). This
is the `service_running` check's view, so a repair aims at what the check tests.

Processes of the right name that the pid file does not name are "stray": a master killed
with -9 leaves its workers holding the ports, and no reload can reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsfix.shell import quote
from opsfix.transport.base import CommandResult

HAS_SYSTEMD = "{ [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }"


def unit_active(service: str) -> str:
    return f"{{ {HAS_SYSTEMD} && systemctl is-active --quiet {quote(service)}; }}"


def unit_loaded(service: str) -> str:
    load = f"$(systemctl show -p LoadState --value {quote(service)} 2>/dev/null)"
    return f'{{ {HAS_SYSTEMD} && [ "{load}" = loaded ]; }}'


def pid_names(pid_file: str, process: str) -> str:
    """True when the pid file's first line is the pid of a live `process` (not a zombie).

    Shell builtins only (`read`, `case`): it runs inside every nginx reload and rollback,
    where head, cat and grep were three more processes for the host to start.
    """
    pid = f"{{ read -r _pid < {quote(pid_file)}; }} 2>/dev/null"
    comm = '{ read -r _comm < "/proc/$_pid/comm"; } 2>/dev/null'
    # only a zombie's State line holds a Z ("State:\tZ (zombie)")
    zombie = (
        "while IFS= read -r _l; do case $_l in State:*) case ${_l#State:} in *Z*) _z=1 ;; "
        'esac; break ;; esac; done 2>/dev/null < "/proc/$_pid/status"'
    )
    return (
        f'{{ _pid= _comm= _z=; {pid}; [ "$_pid" -gt 0 ] 2>/dev/null && {{ {comm}; '
        f'[ "$_comm" = {quote(process)} ]; }} && {{ {zombie}; [ -z "$_z" ]; }}; }}'
    )


def process_alive(process: str) -> str:
    return f"pgrep -x {quote(process)} >/dev/null 2>&1"


def is_running(service: str, process: str, pid_file: str | None = None) -> str:
    """A shell condition, true when the service runs (see the module's docstring)."""
    own = pid_names(pid_file, process) if pid_file else process_alive(process)
    return f"{unit_active(service)} || {own}"


def clear_strays(process: str) -> str:
    """Stop every process named `process`: TERM, up to 5 s to leave, then KILL."""
    p = quote(process)
    return (
        f"pkill -x {p}; n=0; while pgrep -x {p} >/dev/null && [ $n -lt 50 ]; "
        f"do sleep 0.1; n=$((n + 1)); done; pkill -KILL -x {p}; true"
    )


@dataclass(frozen=True)
class ServiceState:
    """What `state_command` found: how the host runs services and whether this one runs."""

    systemd: bool
    running: str  # "systemd", "pidfile", "process", "stray", or "no"
    unit_loaded: bool  # systemd knows a unit of that name (not "not-found")
    has_initd: bool  # /etc/init.d/<service> exists
    on_path: bool  # the command (service name or binary) is on PATH

    @property
    def is_running(self) -> bool:
        return self.running in ("systemd", "pidfile", "process")


def state_command(service: str, process: str, *, command: str, pid_file: str | None = None) -> str:
    """One read-only command printing `systemd=.. running=.. initd=.. path=.. unit=..`."""
    own = f"elif {pid_names(pid_file, process)}; then r=pidfile\n" if pid_file else ""
    return (
        f"s=no r=no i=no p=no u=no\n{HAS_SYSTEMD} && s=yes\n{unit_loaded(service)} && u=yes\n"
        f"if {unit_active(service)}; then r=systemd\n"
        # a loaded unit that is inactive means stopped, whatever runs by hand (as the
        # service_running check judges it): those processes are strays
        f"elif {unit_loaded(service)}; then {process_alive(process)} && r=stray\n{own}"
        f"elif {process_alive(process)}; then r={'stray' if pid_file else 'process'}\nfi\n"
        f"[ -x {quote('/etc/init.d/' + service)} ] && i=yes\n"
        f"command -v {quote(command)} >/dev/null 2>&1 && p=yes\n"
        'echo "systemd=$s running=$r initd=$i path=$p unit=$u"'
    )


def parse_state(result: CommandResult) -> ServiceState | None:
    """The state, or None when the command failed or printed something else."""
    fields = dict(f.partition("=")[::2] for f in result.stdout.split())
    if not result.ok or set(fields) - {"unit"} != {"systemd", "running", "initd", "path"}:
        return None
    systemd = fields["systemd"] == "yes"
    return ServiceState(
        systemd=systemd,
        unit_loaded=fields.get("unit", "yes" if systemd else "no") == "yes",
        running=fields["running"],
        has_initd=fields["initd"] == "yes",
        on_path=fields["path"] == "yes",
    )


def only_if(condition: str, command: str, otherwise: str) -> str:
    """Run `command` only when `condition` holds; otherwise say why nothing happened."""
    return f"if {condition}; then {command}; else echo {quote(otherwise)}; fi"


def failure(result: CommandResult) -> str:
    """The last line a failed command printed, for a refusal a person can read."""
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.exit_status}"
