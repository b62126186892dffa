"""The values of connection variables (`ansible_*`), rendered and checked before any host
is contacted.

A connection variable goes to a socket, to sshd or to sudo as it is: a template left in
it (`ansible_user: '{{ nope }}'`), a NUL, a port out of range or a negative timeout would
reach the host as literal text or fail late, host by host. Here each one is an
`InventoryError` naming the file:line where the value was set (exit 4, nothing runs).

This is the one place that says what a connection variable's value may be: `VALUE_CHECKS`
per name, and `check_text` for every string of each variable in `CONNECTION_VARS` (those
the transport reads). Other `ansible_*` variables are not rendered or checked here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opsfix.errors import InventoryError, Location, VariableError
from opsfix.inventory.host import Host
from opsfix.secret import Secret

CONNECTION_VARS = frozenset(
    {
        "ansible_connection",
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_ssh_private_key_file",
        "ansible_become",
        "ansible_become_user",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_timeout",
        "opsfix_known_hosts_file",
        # Ansible's other names for the same settings, and the ssh arguments
        "ansible_ssh_host",
        "ansible_ssh_port",
        "ansible_ssh_user",
        "ansible_private_key_file",
        "ansible_ssh_timeout",
        "ansible_become_method",
        "ansible_ssh_args",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEMPLATE = re.compile(r"\{\{|\{%")
_TRUE = ("yes", "true", "1", "on", "y")
_FALSE = ("no", "false", "0", "off", "n", "")


class BadValue(ValueError):
    """A connection variable's value is wrong; the message says what was expected."""


def is_connection_var(key: str) -> bool:
    return key in CONNECTION_VARS


def port(value: Any) -> int:
    """A TCP port: a whole number from 1 to 65535 (a digit string is fine, as in INI)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadValue(f"{value!r} is not a port number; expected a whole number 1-65535")
    try:
        number = int(value)
    except ValueError:
        raise BadValue(f"{value!r} is not a port number; expected a whole number 1-65535") from None
    if not 1 <= number <= 65535:
        raise BadValue(f"{number} is out of range; expected a port number 1-65535")
    return number


def seconds(value: Any) -> float:
    """A timeout: a finite number of seconds above zero."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise BadValue(f"{value!r} is not a timeout; expected a number of seconds above 0")
    return number


def boolean(value: Any) -> bool:
    """yes/no, true/false, on/off, 1/0 (any case), or a YAML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise BadValue(f"{value!r} is not a boolean; expected true or false (yes/no, on/off, 1/0)")


def name(value: Any) -> str:
    """A user or host name: one word, no spaces or control characters, no leading '-'."""
    text = str(value)
    if not text or text.startswith("-") or any(c.isspace() for c in text) or _CONTROL.search(text):
        raise BadValue(
            f"{text!r} is not a valid name; expected one word without spaces, control "
            "characters or a leading '-'"
        )
    return text


def check_text(value: Any) -> None:
    """Any string of a connection variable: no NUL, no template left unrendered."""
    if isinstance(value, Secret):
        value = value.reveal()
        if "\0" in value:
            raise BadValue("holds a NUL character, which no command can carry")
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_text(item)
    elif isinstance(value, str):
        if "\0" in value:
            raise BadValue(f"{value!r} holds a NUL character, which no command can carry")
        if _TEMPLATE.search(value):
            raise BadValue(f"{value!r} holds a template that was not rendered")


VALUE_CHECKS: dict[str, Callable[[Any], Any]] = {
    "ansible_port": port,
    "ansible_ssh_port": port,
    "ansible_timeout": seconds,
    "ansible_ssh_timeout": seconds,
    "ansible_host": name,
    "ansible_ssh_host": name,
    "ansible_user": name,
    "ansible_ssh_user": name,
    "ansible_become_user": name,
    "ansible_become": boolean,
}


def origin(host: Host, key: str) -> Location:
    """Where `key` was set for `host`, with the field always naming the variable."""
    where = host.origins.get(key) or Location(f"inventory vars of host {host.name!r}")
    return where if where.field else replace(where, field=key)


def check_connection_vars(host: Host) -> None:
    """Raise InventoryError at the first connection variable whose value is wrong."""
    for key, value in host.vars.items():
        if not is_connection_var(key) or value is None:
            continue
        try:
            check_text(value)
            if key in VALUE_CHECKS:
                VALUE_CHECKS[key](value)
        except BadValue as exc:
            raise InventoryError(f"{exc} (host {host.name!r})", origin(host, key)) from None
    if not host.vars.get("ansible_host") and _CONTROL.search(host.name):
        raise InventoryError(
            f"host {host.name!r}: its name is its address (no ansible_host), and an address "
            "holds no control characters; set ansible_host",
            Location("inventory"),
        )


def render_connection_vars(host: Host, render: Callable[[Any], Any]) -> Host:
    """`host` with the templates in its connection variables rendered by `render`.

    As in Ansible, `ansible_user: '{{ deploy_user }}'` means the variable's value; an
    undefined variable stops the run at the line that used it. Passwords (`Secret`) are
    never rendered: they stay out of every template and message.
    """
    rendered = dict(host.vars)
    for key, value in host.vars.items():
        if not is_connection_var(key) or not _has_template(value):
            continue
        try:
            rendered[key] = render(value)
        except VariableError as exc:
            raise VariableError(f"{exc.message} (host {host.name!r})", origin(host, key)) from None
    return replace(host, vars=rendered)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_TEMPLATE.search(value))
    if isinstance(value, list | tuple):
        return any(_has_template(item) for item in value)
    return False
