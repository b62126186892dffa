"""Finds checks and remediations: the built-ins shipped in the package, then user folders.

A user folder (beside the playbook, or given with --plugins) holds `checks/` and/or
`remediations/`, one module per plugin, exactly like the built-ins. Modules whose name
starts with `_` are private helpers and are not plugins. Every plugin is validated when
it loads, so a malformed one fails with its file and what is wrong before it is used.

A user plugin loads with the registry. A built-in is only listed then (its module name is
its plugin name); it is imported the first time it is looked up, since a playbook uses a
few of the dozens shipped and each import builds pydantic models.
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


class PluginTable(MutableMapping[str, type[Any]]):
    """Plugin classes by name. A built-in is held as its module's name until first looked up.

    Membership, iteration and len need no import; looking a built-in up imports and
    validates it, so listing every class (`values()`, `items()`) imports them all.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type[Any] | str] = {}

    def add_builtin(self, name: str, module: str) -> None:
        self._entries[name] = module

    def __getitem__(self, name: str) -> type[Any]:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _load_builtin(self.kind, name, entry)
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


def load_registry(plugin_dirs: list[Path] | tuple[Path, ...] = ()) -> Registry:
    """Built-in plugins, then each folder in `plugin_dirs` (later ones override earlier)."""
    registry = Registry()
    for kind in _KINDS:
        package = importlib.import_module(f"opsfix.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                registry.table(kind).add_builtin(info.name, f"opsfix.{kind}.{info.name}")
                registry.origins[f"{kind}:{info.name}"] = _builtin_origin(kind, info.name)
    for folder in plugin_dirs:
        for kind in _KINDS:
            sub = folder / kind
            if sub.is_dir():
                for path in sorted(sub.glob("*.py")):
                    if not path.name.startswith("_"):
                        _register(registry, kind, _import_file(kind, path), str(path))
    return registry


def _builtin_origin(kind: str, name: str) -> str:
    return f"built-in {kind}/{name}.py"


def _load_builtin(kind: str, name: str, module: str) -> type[Any]:
    origin = _builtin_origin(kind, name)
    cls = _plugin_class(kind, importlib.import_module(module), origin)
    if cls.name != name:
        raise PluginError(
            f"{origin}: {cls.__name__}.name is {cls.name!r}; a built-in is named after its module"
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


def _register(registry: Registry, kind: str, module: ModuleType, origin: str) -> None:
    cls = _plugin_class(kind, module, origin)
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
    cls = found[0]
    if not (inspect.isclass(cls.Params) and issubclass(cls.Params, Params)):
        raise PluginError(f"{origin}: {cls.__name__}.Params must subclass opsfix.plugin.Params")
    for method in _REQUIRED[kind]:
        if getattr(cls, method) is getattr(base, method):
            raise PluginError(f"{origin}: {cls.__name__} does not implement {method}()")
    return cls
