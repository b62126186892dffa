"""Transports: how commands reach a host. The only package that imports paramiko/fabric.

paramiko's config module imports invoke (and with it asyncio, unittest.mock and ssl,
~40 ms on every run) only to run ssh_config's `Match exec`. Here that one module is
loaded without it, and gets invoke on demand: `Match exec` still works, and anyone else
who imports invoke (fabric) gets the real module as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_DEFERRED_IN = "paramiko.config"


class _InvokeOnDemand:
    """Stands in for the `invoke` module inside paramiko.config until it is used."""

    def __getattr__(self, name: str) -> Any:
        import invoke

        return getattr(invoke, name)


class _WithoutInvoke(importlib.abc.Loader):
    """Executes paramiko.config with `import invoke` failing, then hands it the stand-in."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        blocked = "invoke" not in sys.modules
        if blocked:
            sys.modules["invoke"] = None  # type: ignore[assignment]  # import -> ImportError
        try:
            self.inner.exec_module(module)
        finally:
            if blocked and sys.modules.get("invoke", ModuleType("x")) is None:
                del sys.modules["invoke"]
        if blocked and getattr(module, "invoke", True) is None:
            module.invoke = _InvokeOnDemand()  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != _DEFERRED_IN:
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutInvoke(spec.loader)
        return spec


if _DEFERRED_IN not in sys.modules and "invoke" not in sys.modules:
    sys.meta_path.insert(0, _Finder())
