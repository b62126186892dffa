"""Transports by the `ansible_connection` names they answer to (docs/plugins.md, "A transport").

A transport is one module that declares a `Transport`: its names, how to make a
connection from a ConnectionSpec, and how a verify suite's testinfra host attaches to
that connection. They come from two places, in this order:

1. the built-ins, one module each in `opsfix.transport.kinds` (ssh, local);
2. installed packages, through the entry point group `opsfix.transports` (name = the
   transport's first name, value = its module or `module:ATTRIBUTE`).

A name taken by an earlier transport is refused, naming both: an installed package must
never silently take `ssh` over. Declarations stay light: a transport whose connection
needs a heavy library (paramiko) imports it in `connect`, so resolving an inventory
costs no more than reading these declarations.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from opsfix.errors import PluginError
from opsfix.transport.base import Connection
from opsfix.transport.spec import ConnectionSpec

GROUP = "opsfix.transports"
ROUTED = "opsfix"  # testinfra backend that only ever runs commands over the run's connection


@dataclass(frozen=True)
class Transport:
    """One way to reach a host.

    `connect` returns a connection not yet opened (see opsfix.transport.base.Connection).
    A verify suite's testinfra host for it is named by the backend `testinfra` (its test
    ids read `<testinfra>://<host>`); whatever the backend, every command of a suite runs
    over the run's own connection. `attach(backend, connection, spec)` wires what else that
    backend needs (ssh: the verified paramiko client). `check(spec)` raises InventoryError
    for a setting the transport cannot honour (before any host is contacted).
    """

    names: tuple[str, ...]  # ansible_connection values; the first is the spec's `connection`
    about: str  # one line: how it reaches a host
    connect: Callable[[ConnectionSpec], Connection]
    testinfra: str = ROUTED
    attach: Callable[[Any, Connection, ConnectionSpec], None] | None = None
    check: Callable[[ConnectionSpec], None] | None = None
    origin: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return self.names[0]


@functools.cache
def transports() -> dict[str, Transport]:
    """Every transport by each of its names: the built-ins, then installed packages'."""
    found: dict[str, Transport] = {}
    package = importlib.import_module("opsfix.transport.kinds")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            origin = f"built-in opsfix/transport/kinds/{info.name}.py"
            _add(found, _declared(module, "TRANSPORT", origin), origin)
    for name, target, dist in _entry_points():
        origin = f"package {dist} ({GROUP} entry point {name} = {target})"
        transport = _load(target, origin)
        if transport.name != name:
            raise PluginError(
                f"{origin}: the transport's first name is {transport.name!r}; it is "
                f"listed under {name!r}"
            )
        _add(found, transport, origin)
    return found


def transport_named(name: str) -> Transport | None:
    """The transport that answers to `ansible_connection: name`, or None."""
    return transports().get(name)


def transport_for(spec: ConnectionSpec) -> Transport:
    """The transport of a resolved spec (its `connection` is a transport's first name)."""
    transport = transports().get(spec.connection)
    if transport is None:
        raise ValueError(f"{spec.host}: unknown connection type {spec.connection!r}")
    return transport


def known_names() -> list[str]:
    """Every name an inventory may give `ansible_connection`, built-ins first."""
    return list(transports())


def _add(found: dict[str, Transport], transport: Transport, origin: str) -> None:
    for name in transport.names:
        if name in found:
            raise PluginError(
                f"{origin}: transport name {name!r} is already provided by "
                f"{found[name].origin}; a transport never takes another's name"
            )
    placed = dataclasses.replace(transport, origin=origin)
    for name in transport.names:
        found[name] = placed


def _entry_points() -> list[tuple[str, str, str]]:
    from importlib.metadata import entry_points

    return sorted(
        (ep.name, ep.value, ep.dist.name if ep.dist is not None else "?")
        for ep in entry_points(group=GROUP)
    )


def _load(target: str, origin: str) -> Transport:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as exc:
        raise PluginError(f"{origin}: failed to import: {type(exc).__name__}: {exc}") from None
    return _declared(module, attr.strip() or "TRANSPORT", origin)


def _declared(module: ModuleType, attr: str, origin: str) -> Transport:
    transport = getattr(module, attr, None)
    if not isinstance(transport, Transport):
        raise PluginError(f"{origin}: {module.__name__}.{attr} is not an opsfix Transport")
    if not transport.names or not all(isinstance(n, str) and n for n in transport.names):
        raise PluginError(f"{origin}: a Transport needs at least one name")
    return transport


__all__ = ["GROUP", "ROUTED", "Transport", "known_names", "transport_for", "transport_named"]
