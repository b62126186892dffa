"""Finds checks and remediations: the built-ins shipped in the package, then user folders.

A user folder (beside the playbook, or given with --plugins) holds `checks/` and/or
`remediations/`, one module per plugin, exactly like the built-ins. Modules whose name
starts with `_` are private helpers and are not plugins. Every plugin is validated when
it loads, so a malformed one fails with its file and what is wrong before anything runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from opsfix.errors import PluginError
from opsfix.plugin import Check, Params, Remediation

_KINDS: dict[str, Any] = {"checks": Check, "remediations": Remediation}
_REQUIRED = {"checks": ("commands", "evaluate"), "remediations": ("plan",)}


@dataclass
class Registry:
    """Plugin classes by name, and where each came from (for messages)."""

    checks: dict[str, type[Check[Any]]] = field(default_factory=dict)
    remediations: dict[str, type[Remediation[Any]]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, type[Any]]:
        return self.checks if kind == "checks" else self.remediations


def load_registry(plugin_dirs: list[Path] | tuple[Path, ...] = ()) -> Registry:
    """Built-in plugins, then each folder in `plugin_dirs` (later ones override earlier)."""
    registry = Registry()
    for kind in _KINDS:
        package = importlib.import_module(f"opsfix.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                module = importlib.import_module(f"opsfix.{kind}.{info.name}")
                _register(registry, kind, module, f"built-in {kind}/{info.name}.py")
    for folder in plugin_dirs:
        for kind in _KINDS:
            sub = folder / kind
            if sub.is_dir():
                for path in sorted(sub.glob("*.py")):
                    if not path.name.startswith("_"):
                        _register(registry, kind, _import_file(kind, path), str(path))
    return registry


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
    registry.table(kind)[cls.name] = cls
    registry.origins[f"{kind}:{cls.name}"] = origin
