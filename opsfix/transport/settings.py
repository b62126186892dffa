"""Turn an inventory host into a ConnectionSpec, and a spec's become settings into a command.

Precedence follows Ansible and ssh: `ansible_ssh_args`, then the inventory's port, key,
user and timeout, then `ansible_ssh_common_args` and `ansible_ssh_extra_args`; the first
value of each option wins, and ssh_config (`~/.ssh/config` or the file given, resolved by
OpenSSH itself where installed) fills only what they left unset. Every `ansible_*`
variable and ssh option is honoured or refused (opsfix.transport.ansible_vars,
opsfix.transport.ssh_options): an InventoryError names the host, the variable and why.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsfix.errors import InventoryError, OptionsError
from opsfix.inventory.host import Host
from opsfix.secret import Secret
from opsfix.transport import ssh_config, ssh_options
from opsfix.transport.ansible_vars import check_host_vars, refuse
from opsfix.transport.become import (  # re-exported: the transports import them from here
    BECOME_FAILURES,
    MAX_INLINE_SCRIPT,
    SUDO_NEEDS_PASSWORD,
    SUDO_WRONG_PASSWORD,
    Invocation,
    command_result,
    invocation,
    script_file_mode,
    shell_command,
    sudo_failure,
)
from opsfix.transport.connection_vars import BadValue, boolean, check_connection_vars, port
from opsfix.transport.registry import Transport, known_names, transport_named
from opsfix.transport.spec import DEFAULT_OUTPUT_LIMIT, ConnectionSpec

BECOME_METHODS = ("sudo", "su", "doas")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

# Inventory variables that are ssh options, in the order Ansible hands them to ssh; where
# two names mean one thing, the one Ansible prefers comes first.
_VAR_OPTIONS = (
    ("ansible_port", "port"),
    ("ansible_ssh_port", "port"),
    ("ansible_private_key_file", "identityfile"),
    ("ansible_ssh_private_key_file", "identityfile"),
    ("ansible_user", "user"),
    ("ansible_ssh_user", "user"),
    ("ansible_timeout", "connecttimeout"),
    ("ansible_ssh_timeout", "connecttimeout"),
)
_PATH_OPTIONS = ("identityfile", "userknownhostsfile", "globalknownhostsfile", "proxycommand")


@dataclass
class _Options:
    """ssh options as ssh merges them: the first value wins; identity files add up."""

    values: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # identity files from the inventory
    config_keys: list[str] = field(default_factory=list)  # ... and from ssh_config

    def add(self, where: str, pairs: Iterable[tuple[str, str]], *, config: bool = False) -> None:
        for key, value in pairs:
            if key == "identityfile":
                (self.config_keys if config else self.keys).append(value)
            elif key not in self.values:
                self.values[key] = value
                self.source[key] = where

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        return None if value is None or value.lower() == "none" else value


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
    host = _revealed(host)
    v = host.vars
    check_host_vars(host.name, v)
    check_connection_vars(host)
    _check_shell(host.name, v)
    transport = _transport(host)
    address = str(_first(v, "ansible_host", "ansible_ssh_host") or host.name)
    options = _options(host.name, v, address, ssh_config, trust_new_host_keys)
    hostname = options.get("hostname") or address
    port = _port(host, options.get("port") or 22, options.source.get("port", "port"))
    user = options.get("user")
    tokens = _Tokens(hostname, port, user or getpass.getuser(), address)
    checking = (options.get("stricthostkeychecking") or "yes").lower()
    jump, proxy = _proxy(options, tokens)
    password = _secret(_become_password_var(v)) or become_password
    method = _become_method(host.name, v)
    spec = ConnectionSpec(
        host=host.name,
        hostname=hostname,
        port=port,
        user=user,
        key_file=_key_file(
            [tokens.expand(k) for k in options.keys],
            [tokens.expand(k) for k in options.config_keys],
        ),
        connection=transport.name,
        become=boolean(v.get("ansible_become", False)),
        become_method=method,
        become_user=str(v.get("ansible_become_user") or "root"),
        become_password=password,
        known_hosts_files=_known_hosts(v, options, tokens, known_hosts),
        trust_new_host_keys=trust_new_host_keys or checking == "accept-new",
        proxy_command=proxy,
        proxy_jump=_resolve_jump(jump, ssh_config),
        compress=(options.get("compression") or "no").lower() == "yes",
        connect_timeout=_timeout(host.name, options, connect_timeout),
        command_timeout=float(command_timeout),
        output_limit=int(output_limit),
    )
    if transport.check is not None:
        transport.check(spec)
    return spec


_host_defaults: dict[str, Any] = {}


def configure_host_defaults(defaults: Mapping[str, Any]) -> None:
    """Defaults below every inventory variable (ansible.cfg's remote_user, become, ...)."""
    _host_defaults.clear()
    _host_defaults.update(defaults)


def _revealed(host: Host) -> Host:
    """Vault values (Secrets) in connection settings are used as they are; the become
    password stays a Secret down to the transport. ansible.cfg's defaults come first."""
    keep = ("ansible_become_password", "ansible_become_pass")
    plain = {
        k: v.reveal() if isinstance(v, Secret) and k not in keep else v
        for k, v in {**_host_defaults, **host.vars}.items()
    }
    return dataclasses.replace(host, vars=plain)


def prefetch_ssh_config(hosts: Iterable[Host], config: Path | None) -> None:
    """Ask ssh_config about every host's address at once, before specs are resolved."""
    addresses = (str(_first(h.vars, "ansible_host", "ansible_ssh_host") or h.name) for h in hosts)
    ssh_config.prefetch(addresses, config)


def _options(
    host: str, v: dict[str, Any], address: str, config: Path | None, trust_new: bool
) -> _Options:
    """The inventory's ssh options in Ansible's order, then ssh_config's; each checked."""
    options = _Options()
    for var in ssh_options.ARG_VARS:
        if v.get(var):
            pairs = ssh_options.parse_args(host, var, str(v[var]))
            ssh_options.check(host, var, pairs, trust_new=trust_new)
            options.add(var, pairs)
        if var == "ansible_ssh_args":  # the inventory's own settings come right after it
            for name, key in _VAR_OPTIONS:
                if v.get(name) not in (None, ""):
                    options.add(name, [(key, str(v[name]))])
    found = ssh_config.lookup(address, config)
    pairs = [(key, value) for key, values in found.items() for value in values]
    where = f"ssh_config {ssh_config.config_file(config)}"
    ssh_options.check(host, where, pairs, trust_new=trust_new)
    options.add(where, pairs, config=True)
    return options


def lookup_ssh_config(address: str, path: Path | None = None) -> dict[str, Any]:
    """ssh_config options for `address`, one value each (identity files: a list)."""
    found = ssh_config.lookup(address, path)
    return {k: v if k == "identityfile" else " ".join(v) for k, v in found.items()}


@dataclass(frozen=True)
class _Tokens:
    """ssh_config's %-tokens, expanded as OpenSSH does in paths and ProxyCommand."""

    hostname: str
    port: int
    user: str
    alias: str

    def expand(self, text: str) -> str:
        out, rest = [], iter(text)
        for ch in rest:
            if ch != "%":
                out.append(ch)
                continue
            token = next(rest, "")
            value = self._value(token)
            if value is None:
                raise InventoryError(
                    f"{text!r}: the ssh_config token %{token} is not supported here "
                    "(known: %% %h %p %r %n %u %d %l %L %i)"
                )
            out.append(value)
        return os.path.expanduser("".join(out))

    def _value(self, token: str) -> str | None:
        return {
            "%": "%",
            "h": self.hostname,
            "p": str(self.port),
            "r": self.user,
            "n": self.alias,
            "u": getpass.getuser(),
            "d": os.path.expanduser("~"),
            "l": socket.getfqdn(),
            "L": socket.gethostname().split(".")[0],
            "i": str(os.getuid()),
        }.get(token)


def _first(v: dict[str, Any], *names: str) -> Any:
    return next((v[n] for n in names if v.get(n) not in (None, "")), None)


def _transport(host: Host) -> Transport:
    """The transport `ansible_connection` names (default ssh); an unknown one is refused,
    naming where it was set (opsfix.transport.registry lists the known ones)."""
    value = str(host.vars.get("ansible_connection", "ssh"))
    transport = transport_named(value)
    if transport is None:
        where = host.origins.get("ansible_connection")
        known = ", ".join(known_names())
        error = refuse(
            host.name,
            "ansible_connection",
            f"unsupported value {value!r} (expected one of: {known})",
        )
        raise InventoryError(error.message, where and dataclasses.replace(where, field=""))
    return transport


def _become_method(host: str, v: dict[str, Any]) -> str:
    method = str(v.get("ansible_become_method") or "sudo")
    if method not in BECOME_METHODS:
        raise refuse(
            host,
            "ansible_become_method",
            f"{method!r} is not supported (expected one of: {', '.join(BECOME_METHODS)})",
        )
    return method


def _check_shell(host: str, v: dict[str, Any]) -> None:
    """opsfix's scripts are POSIX shell, run by /bin/sh: another shell is refused."""
    for name, allowed in (("ansible_shell_type", "sh"), ("ansible_shell_executable", "/bin/sh")):
        if v.get(name) not in (None, allowed):
            raise refuse(
                host, name, f"{v[name]!r}: opsfix's scripts are POSIX shell run by /bin/sh"
            )
    for name in ("ansible_host_key_checking", "ansible_ssh_host_key_checking"):
        if name in v and not _boolean(host, name, v[name]):
            raise refuse(host, name, f"false: {ssh_options.WEAK_CHECKING}")


def _boolean(host: str, name: str, value: Any) -> bool:
    try:
        return boolean(value)
    except BadValue as exc:
        raise refuse(host, name, str(exc)) from None


def _proxy(options: _Options, tokens: _Tokens) -> tuple[str | None, str | None]:
    """ProxyJump or ProxyCommand, whichever was given first (ssh takes only that one)."""
    first = next((k for k in options.values if k in ("proxyjump", "proxycommand")), None)
    if first == "proxycommand":
        return None, _expanded(options.get("proxycommand"), tokens)
    return options.get("proxyjump"), None


def _expanded(value: str | None, tokens: _Tokens) -> str | None:
    return tokens.expand(value) if value else None


def _port(host: Host, value: Any, var: str = "ansible_port") -> int:
    """The inventory's port was checked already; ssh arguments' and ssh_config's are here."""
    try:
        return port(value)
    except BadValue as exc:
        where = "Port (ssh_config)" if var.startswith("ssh_config") else var
        raise InventoryError(f"host {host.name!r}: {where}: {exc}") from None


def _timeout(host: str, options: _Options, default: float) -> float:
    value = options.get("connecttimeout")
    if value is None:
        return float(default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds <= 0:
        where = options.source.get("connecttimeout", "connecttimeout")
        raise refuse(host, where, f"{value!r}: expected a positive number of seconds")
    return seconds


def _key_file(inventory: list[str], from_config: list[str]) -> str | None:
    """The inventory's key, else the first ssh_config IdentityFile that exists."""
    if inventory:
        return inventory[0]
    existing = [p for p in from_config if os.path.exists(p)]
    return next(iter(existing or from_config), None)


def _known_hosts(
    v: dict[str, Any], options: _Options, tokens: _Tokens, extra: Sequence[str]
) -> tuple[str, ...]:
    """All known_hosts files, most specific first: the first one records new keys."""
    files: list[str] = list(extra)
    inventory = v.get("opsfix_known_hosts_file")
    if inventory:
        files += [inventory] if isinstance(inventory, str) else list(inventory)
    files += (options.get("userknownhostsfile") or "").split()
    files.append(DEFAULT_KNOWN_HOSTS)
    files += (options.get("globalknownhostsfile") or "").split()
    expanded = [tokens.expand(str(f)) for f in files if str(f) not in ("none", "/dev/null")]
    return tuple(dict.fromkeys(expanded))


def _resolve_jump(jump: str | None, config: Path | None) -> str | None:
    """Each ProxyJump hop as `user@hostname:port`, resolved through ssh_config like ssh does."""
    if not jump or jump == "none":
        return None
    hops = []
    for hop in jump.split(","):
        user, _, rest = hop.strip().removeprefix("ssh://").rpartition("@")
        name, _, port = rest.partition(":")
        cfg = lookup_ssh_config(name, config)
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


__all__ = [
    "BECOME_FAILURES",
    "MAX_INLINE_SCRIPT",
    "MIN_OUTPUT_LIMIT",
    "SUDO_NEEDS_PASSWORD",
    "SUDO_WRONG_PASSWORD",
    "Invocation",
    "command_result",
    "configure_host_defaults",
    "invocation",
    "lookup_ssh_config",
    "output_limit_bytes",
    "prefetch_ssh_config",
    "resolve_spec",
    "script_file_mode",
    "shell_command",
    "sudo_failure",
]
