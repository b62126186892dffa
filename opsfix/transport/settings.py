"""Turn an inventory host into a ConnectionSpec, and a spec's become settings into a command.

Precedence follows Ansible: inventory variables win; `~/.ssh/config` (or the file given)
fills only what the inventory left unset. Each ssh_config file is parsed once per run.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsfix.errors import InventoryError, OptionsError
from opsfix.hosts import DEFAULT_OUTPUT_LIMIT, ConnectionSpec, Host, Secret
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult
from opsfix.transport.connection_vars import BadValue, boolean, check_connection_vars, port

if TYPE_CHECKING:
    import paramiko

CONNECTIONS = ("ssh", "local")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

_config_lock = threading.Lock()
_config_cache: dict[tuple[str, int, int], paramiko.SSHConfig] = {}


def resolve_spec(
    host: Host,
    *,
    ssh_config: Path | None = None,
    known_hosts: Sequence[str] = (),
    trust_new_host_keys: bool = False,
    become_password: Secret | None = None,
    connect_timeout: float = 10,
    command_timeout: float = 60,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> ConnectionSpec:
    """Everything needed to reach `host`: its inventory vars, then its ssh_config entry.

    As in Ansible, inventory variables win: over ssh_config, and an inventory become
    password over the `become_password` argument (which is typically a prompt's answer).
    """
    check_connection_vars(host)
    v = host.vars
    connection = str(v.get("ansible_connection", "ssh"))
    if connection not in CONNECTIONS:
        raise InventoryError(
            f"host {host.name!r}: ansible_connection: unsupported value {connection!r} "
            f"(expected one of: {', '.join(CONNECTIONS)})"
        )
    address = str(v.get("ansible_host") or host.name)
    cfg = lookup_ssh_config(address, ssh_config)
    return ConnectionSpec(
        host=host.name,
        hostname=str(cfg.get("hostname", address)),
        port=_port(host, v.get("ansible_port") or cfg.get("port") or 22),
        user=_str_or_none(v.get("ansible_user") or cfg.get("user")),
        key_file=_key_file(v.get("ansible_ssh_private_key_file"), cfg.get("identityfile")),
        connection=connection,
        become=boolean(v.get("ansible_become", False)),
        become_user=str(v.get("ansible_become_user") or "root"),
        become_password=_secret(_become_password_var(v)) or become_password,
        known_hosts_files=_known_hosts(v, cfg, known_hosts),
        trust_new_host_keys=trust_new_host_keys,
        proxy_command=_none_if_none(cfg.get("proxycommand")),
        proxy_jump=_resolve_jump(cfg.get("proxyjump"), ssh_config),
        connect_timeout=float(connect_timeout),
        command_timeout=float(command_timeout),
        output_limit=int(output_limit),
    )


def lookup_ssh_config(address: str, path: Path | None = None) -> dict[str, Any]:
    """ssh_config options for `address` (empty when there is no config file)."""
    config = _load_ssh_config(Path(path) if path else Path("~/.ssh/config").expanduser())
    return dict(config.lookup(address)) if config else {}


def _load_ssh_config(path: Path) -> paramiko.SSHConfig | None:
    """Parse a config file once; re-parse only when it changed on disk."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _config_lock:
        if key not in _config_cache:
            import paramiko  # only with an ssh_config to read (the keeper has its own)

            _config_cache[key] = paramiko.SSHConfig.from_path(str(path))
        return _config_cache[key]


def _port(host: Host, value: Any) -> int:
    """The inventory's port was checked already; ssh_config's is checked here."""
    try:
        return port(value)
    except BadValue as exc:
        raise InventoryError(f"host {host.name!r}: Port (ssh_config): {exc}") from None


def _key_file(inventory: Any, from_config: list[str] | None) -> str | None:
    """The inventory's key, else the first ssh_config IdentityFile that exists."""
    if inventory:
        return os.path.expanduser(str(inventory))
    candidates = [os.path.expanduser(p) for p in from_config or []]
    existing = [p for p in candidates if os.path.exists(p)]
    return next(iter(existing or candidates), None)


def _known_hosts(v: dict[str, Any], cfg: dict[str, Any], extra: Sequence[str]) -> tuple[str, ...]:
    """All known_hosts files, most specific first: the first one records new keys."""
    files: list[str] = list(extra)
    inventory = v.get("opsfix_known_hosts_file")
    if inventory:
        files += [inventory] if isinstance(inventory, str) else list(inventory)
    files += str(cfg.get("userknownhostsfile", "")).split()
    files.append(DEFAULT_KNOWN_HOSTS)
    expanded = [os.path.expanduser(str(f)) for f in files if str(f) != "none"]
    return tuple(dict.fromkeys(expanded))


def _resolve_jump(jump: str | None, ssh_config: Path | None) -> str | None:
    """Each ProxyJump hop as `user@hostname:port`, resolved through ssh_config like ssh does."""
    if not jump or jump == "none":
        return None
    hops = []
    for hop in jump.split(","):
        user, _, rest = hop.strip().rpartition("@")
        name, _, port = rest.partition(":")
        cfg = lookup_ssh_config(name, ssh_config)
        user = user or cfg.get("user", "")
        port = port or cfg.get("port", "22")
        hops.append(f"{user + '@' if user else ''}{cfg.get('hostname', name)}:{port}")
    return ",".join(hops)


def _become_password_var(v: dict[str, Any]) -> Any:
    return v.get("ansible_become_password", v.get("ansible_become_pass"))


def _secret(value: Any) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(str(value))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _none_if_none(value: str | None) -> str | None:
    return None if value in (None, "", "none") else value


# --- how much of a command's output is kept -----------------------------------------------

MIN_OUTPUT_LIMIT = 64 << 10
MAX_OUTPUT_LIMIT = 100 << 20  # both streams' worth must fit one keeper message (wire.py)
_SIZE = re.compile(r"(\d+)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def output_limit_bytes(value: str | None, env: Mapping[str, str] | None = None) -> int:
    """--output-limit, else $OPSFIX_OUTPUT_LIMIT, else 4 MiB: bytes kept of each command's
    stdout and of its stderr. `4M`, `4MiB`, `512k` and plain bytes are understood."""
    source = "--output-limit"
    if value is None:
        value = (os.environ if env is None else env).get("OPSFIX_OUTPUT_LIMIT", "").strip()
        source = "OPSFIX_OUTPUT_LIMIT"
        if not value:
            return DEFAULT_OUTPUT_LIMIT
    found = _SIZE.fullmatch(value.strip())
    size = int(found.group(1)) * _UNITS[found.group(2)[:1].lower()] if found else -1
    if not MIN_OUTPUT_LIMIT <= size <= MAX_OUTPUT_LIMIT:
        raise OptionsError(
            f"{source} {value!r}: expected a size from 64KiB to 100MiB (bytes, or with k, M, G)"
        )
    return size


# --- become: how a spec's become settings turn into a command line ----------------------

MAX_INLINE_SCRIPT = 100 * 1024  # Linux caps one argument at 128 KiB (MAX_ARG_STRLEN)
SUDO_WRONG_PASSWORD = "sudo: incorrect password"
SUDO_NEEDS_PASSWORD = "sudo needs a password"


# Runs the script (passed as $0) with stdin closed, under coreutils `timeout` when the host
# has it and a limit is given ($1): closing an SSH channel does not stop the command, and
# sshd refuses "signal" requests for root sessions, so the host enforces the limit itself.
# Stdin is closed so a script can never read the sudo password line, even when sudo had
# cached credentials and did not read it.
_RUNNER = (
    "exec </dev/null; "
    'if [ -n "$1" ] && command -v timeout >/dev/null 2>&1; then '
    'exec timeout -k 2 "$1" /bin/sh -c "$0"; fi; '
    'exec /bin/sh -c "$0"'
)


@dataclass(frozen=True)
class Invocation:
    """How one script runs: the command line, and the line sudo reads on stdin (if any)."""

    command: str
    uses_sudo: bool
    password_line: bytes = field(default=b"", repr=False)


def invocation(
    script: str,
    *,
    login_user: str,
    spec: ConnectionSpec,
    become: bool,
    host_timeout: int | None = None,
) -> Invocation:
    """Run `script` as the login user, or through sudo as the become user."""
    command = shell_command(
        script, login_user=login_user, spec=spec, become=become, host_timeout=host_timeout
    )
    uses_sudo = become and login_user != spec.become_user
    if uses_sudo and spec.become_password:
        return Invocation(command, True, spec.become_password.reveal().encode() + b"\n")
    return Invocation(command, uses_sudo)


def shell_command(
    script: str,
    *,
    login_user: str,
    spec: ConnectionSpec,
    become: bool,
    host_timeout: int | None = None,
) -> str:
    """The command line that runs `script` as the right user; a password goes to stdin."""
    argv = ["/bin/sh", "-c", _RUNNER, script, str(host_timeout or "")]
    if not become or login_user == spec.become_user:
        return cmd(*argv)
    if spec.become_password:
        return cmd("sudo", "-H", "-S", "-p", "", "-u", spec.become_user, "--", *argv)
    return cmd("sudo", "-H", "-n", "-u", spec.become_user, "--", *argv)


def script_file_mode(spec: ConnectionSpec, *, login_user: str, become: bool) -> int:
    """A long script's temp file is private, unless a become user other than root must read it."""
    other_reader = become and spec.become_user not in ("root", login_user)
    return 0o644 if other_reader else 0o600


def sudo_failure(exit_status: int, stderr: str) -> str | None:
    """A clear message when sudo itself refused (wrong or missing password), else None."""
    if exit_status != 1:
        return None
    lines = [line.strip() for line in stderr.splitlines()]
    if any(
        line == "Sorry, try again."
        or line.endswith(("incorrect password attempt", "incorrect password attempts"))
        for line in lines
    ):
        return SUDO_WRONG_PASSWORD
    if any(
        line in ("sudo: a password is required", "sudo: no password was provided")
        or line.startswith("sudo: a terminal is required")
        for line in lines
    ):
        return SUDO_NEEDS_PASSWORD
    return None


def command_result(
    script: str,
    status: int,
    out: str,
    err: str,
    *,
    spec: ConnectionSpec,
    used_sudo: bool,
    truncated: bool = False,
) -> CommandResult:
    """The result callers see: sudo's own refusals made plain, the password never inside."""
    failure = sudo_failure(status, err) if used_sudo else None
    if failure:
        return CommandResult(command=script, exit_status=status, stderr=failure)
    secret = spec.become_password.reveal() if spec.become_password else ""
    if secret:  # belt and braces: nothing should echo it, but a result must never carry it
        out, err = out.replace(secret, "********"), err.replace(secret, "********")
    return CommandResult(script, status, out, err, truncated=truncated)


__all__ = [
    "MAX_INLINE_SCRIPT",
    "MIN_OUTPUT_LIMIT",
    "SUDO_NEEDS_PASSWORD",
    "SUDO_WRONG_PASSWORD",
    "Invocation",
    "command_result",
    "invocation",
    "lookup_ssh_config",
    "output_limit_bytes",
    "resolve_spec",
    "script_file_mode",
    "shell_command",
    "sudo_failure",
]
