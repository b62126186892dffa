"""From an alert's label to an inventory host.

The `instance` label is whatever the scrape config made it: `web1:9100`, `10.0.0.5:80`,
`[2001:db8::5]:443`, or a probed URL (`http://10.213.1.2/`). Its host part, without the
port, names an inventory host by its name, its `ansible_host` (rendered with the host's
variables when it is a template, as a run connects to it), or the same IP address. An
alert that names no inventory host runs nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from opsfix.inventory.host import Host

__all__ = ["host_part", "inventory_host"]


def host_part(value: str) -> str:
    """The host in a label value: the URL's host, or `host[:port]` without the port."""
    value = value.strip()
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    if value.startswith("["):  # [v6]:port
        return value[1 : value.find("]")].lower() if "]" in value else ""
    if value.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.lower()


def inventory_host(value: str, hosts: Iterable[Host]) -> str | None:
    """The name of the inventory host the label value names, or None."""
    wanted = host_part(value)
    if not wanted:
        return None
    address = _address(wanted)
    for host in hosts:
        names = {host.name.lower(), _connects_to(host).lower()}
        if wanted in names or (address is not None and address in map(_address, names)):
            return host.name
    return None


def _connects_to(host: Host) -> str:
    """The host's `ansible_host` as a run would connect to it: `{{ net }}.11` rendered
    with the host's variables. One that cannot render (an undefined variable) names
    nothing: the run itself would refuse that host."""
    from opsfix.errors import OpsfixError
    from opsfix.playbook.templating import LazyVars, TemplateEngine

    value = host.vars.get("ansible_host", "")
    if not isinstance(value, str) or "{" not in value:
        return str(value)
    engine = TemplateEngine()
    try:
        return str(LazyVars(host.vars, engine)["ansible_host"])
    except (OpsfixError, RecursionError):
        return ""


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
