"""Old module paths, kept importable: plugins written before the engine, playbook and
evidence layers got packages of their own still import `opsfix.state`, `opsfix.results`...

A finder on `sys.meta_path` answers an old name with the module at its new home (the same
module object, so classes stay identical), after a DeprecationWarning. New code imports
the new paths; this table is also the map of what moved where.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

MOVED: dict[str, str] = {
    "opsfix.hostrun": "opsfix.engine.hostrun",
    "opsfix.transaction": "opsfix.engine.transaction",
    "opsfix.hostlock": "opsfix.engine.lock",
    "opsfix.recovery": "opsfix.engine.recovery",
    "opsfix.rollout": "opsfix.engine.rollout",
    "opsfix.binding": "opsfix.playbook.binding",
    "opsfix.templating": "opsfix.playbook.templating",
    "opsfix.template_bounds": "opsfix.playbook.template_bounds",
    "opsfix.variables": "opsfix.playbook.variables",
    "opsfix.vault": "opsfix.playbook.vault",
    "opsfix.yamlpos": "opsfix.playbook.yamlpos",
    "opsfix.durations": "opsfix.playbook.durations",
    "opsfix.results": "opsfix.evidence.results",
    "opsfix.history": "opsfix.evidence.history",
    "opsfix.state": "opsfix.evidence.state",
    "opsfix.statedir": "opsfix.evidence.statedir",
    "opsfix.junit": "opsfix.evidence.junit",
    "opsfix.metrics": "opsfix.evidence.metrics",
    "opsfix.output": "opsfix.evidence.output",
    "opsfix.runlog": "opsfix.evidence.runlog",
    "opsfix.progress": "opsfix.evidence.progress",
    "opsfix.reports": "opsfix.evidence.reports",
    "opsfix.lookahead": "opsfix.verify.lookahead",
    "opsfix.heap": "opsfix.startup_gc",
    "opsfix.transport.kept": "opsfix.transport.keeper.link",
    "opsfix.transport.local": "opsfix.transport.kinds.local",
}
# `opsfix.hosts` was split in three: each name went to its own home.
SPLIT: dict[str, dict[str, str]] = {
    "opsfix.hosts": {
        "Host": "opsfix.inventory.host",
        "ConnectionSpec": "opsfix.transport.spec",
        "DEFAULT_OUTPUT_LIMIT": "opsfix.transport.spec",
        "Secret": "opsfix.secret",
    },
}


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in MOVED or fullname in SPLIT:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module; exec_module replaces it

    def exec_module(self, module: ModuleType) -> None:
        old = module.__name__
        new = MOVED.get(old) or ", ".join(sorted(set(SPLIT[old].values())))
        warnings.warn(f"{old} moved to {new}", DeprecationWarning, stacklevel=2)
        if old in MOVED:
            # The import system hands out whatever sys.modules holds once this returns.
            sys.modules[old] = importlib.import_module(MOVED[old])
            return
        for name, home in SPLIT[old].items():
            setattr(module, name, getattr(importlib.import_module(home), name))


def install() -> None:
    if not any(isinstance(f, _OldNames) for f in sys.meta_path):
        sys.meta_path.append(_OldNames())
