"""Finds checks and remediations, in this order (docs/plugins.md, "Where plugins come from"):

1. the built-ins shipped in the package (`opsfix.checks`, `opsfix.remediations`);
2. installed packages, through the entry point groups `opsfix.checks` and
   `opsfix.remediations` (name = plugin name, value = its module or `module:Class`);
3. user folders: beside the playbook, then each --plugins folder, each holding
   `checks/` and/or `remediations/`, one module per plugin, exactly like the built-ins.

A plugin whose name was already taken by an earlier source replaces it only if its class
says `overrides = True`; otherwise loading stops with an error naming both: a local
`checks/memory.py` must never silently stand in for the built-in. Modules whose name
starts with `_` are private helpers and are not plugins. Every plugin is validated when
it loads, so a malformed one fails with its origin and what is wrong before it is used.

A user folder's plugin loads with the registry. A built-in or a package's plugin is only
listed then (reading entry points is a scan of installed metadata, no import); it is
imported the first time it is looked up, since a playbook uses a few of the dozens
available and each import builds pydantic models. A package's plugin that shadows an
earlier name is imported at once, to read its `overrides`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from opsfix.errors import PluginError
from opsfix.plugin import Check, Params, Remediation

_KINDS: dict[str, Any] = {"checks": Check, "remediations": Remediation}
_REQUIRED = {"checks": ("commands", "evaluate"), "remediations": ("plan",)}


@dataclass(frozen=True)
class _Lazy:
    """A plugin not imported yet: `target` is `module` or `module:Class`."""

    target: str
    origin: str


class PluginTable(MutableMapping[str, type[Any]]):
    """Plugin classes by name. A built-in or a package's plugin is held as where to import
    it from until first looked up.

    Membership, iteration and len need no import; looking one up imports and validates
    it, so listing every class (`values()`, `items()`) imports them all.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type[Any] | _Lazy] = {}

    def add_builtin(self, name: str, module: str) -> None:
        self._entries[name] = _Lazy(module, _builtin_origin(self.kind, name))

    def add_lazy(self, name: str, target: str, origin: str) -> None:
        self._entries[name] = _Lazy(target, origin)

    def __getitem__(self, name: str) -> type[Any]:
        entry = self._entries[name]
        if isinstance(entry, _Lazy):
            entry = _load_lazy(self.kind, name, entry)
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, cls: type[Any]) -> None:
        self._entries[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Registry:
    """Plugin classes by name, and where each came from (for messages)."""

    checks: PluginTable = field(default_factory=lambda: PluginTable("checks"))
    remediations: PluginTable = field(default_factory=lambda: PluginTable("remediations"))
    origins: dict[str, str] = field(default_factory=dict)

    def table(self, kind: str) -> PluginTable:
        return self.checks if kind == "checks" else self.remediations


def load_registry(
    plugin_dirs: list[Path] | tuple[Path, ...] = (), *, packages: bool = True
) -> Registry:
    """Built-in plugins, then installed packages' (`packages`), then each folder in
    `plugin_dirs`; a later one replaces an earlier one of the same name only if it says
    `overrides = True`."""
    registry = Registry()
    for kind in _KINDS:
        package = importlib.import_module(f"opsfix.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                registry.table(kind).add_builtin(info.name, f"opsfix.{kind}.{info.name}")
                registry.origins[f"{kind}:{info.name}"] = _builtin_origin(kind, info.name)
    if packages:
        for kind in _KINDS:
            for name, target, dist in _entry_points(kind):
                _register_package(registry, kind, name, target, dist)
    seen: set[Path] = set()
    for folder in plugin_dirs:
        if folder.resolve() in seen:
            continue  # --plugins naming the playbook's own folder: loaded once
        seen.add(folder.resolve())
        for kind in _KINDS:
            sub = folder / kind
            if sub.is_dir():
                for path in sorted(sub.glob("*.py")):
                    if not path.name.startswith("_"):
                        _register(registry, kind, _import_file(kind, path), str(path))
    return registry


_FROZEN: dict[str, list[tuple[str, str, str]]] = {}


def freeze_packages() -> None:
    """Read the installed plugin packages once, for the rest of this process: a long-lived
    process that loads a registry per host (`opsfix worker`) then skips the scan of every
    installed distribution (~10 ms) each time. A package installed later needs a restart."""
    _FROZEN.update({kind: _entry_points(kind) for kind in _KINDS})


def _entry_points(kind: str) -> list[tuple[str, str, str]]:
    """(name, target, distribution) of every installed `opsfix.<kind>` entry point."""
    if kind in _FROZEN:
        return _FROZEN[kind]
    from importlib.metadata import entry_points  # pydantic has loaded it already

    found = []
    for ep in entry_points(group=f"opsfix.{kind}"):
        dist = ep.dist.name if ep.dist is not None else "?"
        found.append((ep.name, ep.value, dist))
    return sorted(found)


def _register_package(registry: Registry, kind: str, name: str, target: str, dist: str) -> None:
    origin = f"package {dist} ({kind} entry point {name} = {target})"
    table = registry.table(kind)
    if name in table:
        cls = _load_lazy(kind, name, _Lazy(target, origin))
        _may_replace(registry, kind, cls, origin)
        table[name] = cls
    else:
        table.add_lazy(name, target, origin)
    registry.origins[f"{kind}:{name}"] = origin


def _may_replace(registry: Registry, kind: str, cls: Any, origin: str) -> None:
    """Refuse a plugin that takes an earlier plugin's name without saying so."""
    key = f"{kind}:{cls.name}"
    if key in registry.origins and not cls.overrides:
        raise PluginError(
            f"{origin}: {kind[:-1]} {cls.name!r} is already provided by "
            f"{registry.origins[key]}; rename it, or set `overrides = True` in "
            f"{cls.__name__} to replace that one on purpose"
        )


def _builtin_origin(kind: str, name: str) -> str:
    return f"built-in {kind}/{name}.py"


def _load_lazy(kind: str, name: str, entry: _Lazy) -> type[Any]:
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as exc:
        if entry.origin.startswith("built-in"):
            raise
        raise PluginError(
            f"{entry.origin}: failed to import: {type(exc).__name__}: {exc}"
        ) from None
    cls: Any
    if attr:
        cls = getattr(module, attr.strip(), None)
        if not (inspect.isclass(cls) and issubclass(cls, _KINDS[kind])):
            raise PluginError(f"{entry.origin}: {attr.strip()} is not a {_KINDS[kind].__name__}")
        _validate(kind, cls, entry.origin)
    else:
        cls = _plugin_class(kind, module, entry.origin)
    if cls.name != name:
        raise PluginError(
            f"{entry.origin}: {cls.__name__}.name is {cls.name!r}; a plugin is looked up "
            f"by the name it is listed under, {name!r}"
        )
    return cls


def _import_file(kind: str, path: Path) -> ModuleType:
    name = f"opsfix_user_{kind}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from None
    return module


def load_plugin_file(path: Path) -> Any:
    """The plugin class in one user file; its kind comes from its folder's name."""
    kind = path.parent.name
    if kind not in _KINDS:
        raise PluginError(f"{path}: a plugin lives in a folder named checks/ or remediations/")
    return _plugin_class(kind, _import_file(kind, path), str(path))


def _register(registry: Registry, kind: str, module: ModuleType, origin: str) -> None:
    cls = _plugin_class(kind, module, origin)
    _may_replace(registry, kind, cls, origin)
    registry.table(kind)[cls.name] = cls
    registry.origins[f"{kind}:{cls.name}"] = origin


def _plugin_class(kind: str, module: ModuleType, origin: str) -> Any:
    """The module's one plugin class, checked; PluginError naming `origin` otherwise."""
    base = _KINDS[kind]
    found: list[Any] = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        what = "none" if not found else ", ".join(c.__name__ for c in found)
        raise PluginError(f"{origin}: expected exactly one {base.__name__} subclass, found {what}")
    return _validate(kind, found[0], origin)


def _validate(kind: str, cls: Any, origin: str) -> Any:
    base = _KINDS[kind]
    if not (inspect.isclass(cls.Params) and issubclass(cls.Params, Params)):
        raise PluginError(f"{origin}: {cls.__name__}.Params must subclass opsfix.plugin.Params")
    for method in _REQUIRED[kind]:
        if getattr(cls, method) is getattr(base, method):
            raise PluginError(f"{origin}: {cls.__name__} does not implement {method}()")
    return cls
