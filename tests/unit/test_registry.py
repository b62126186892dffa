"""The registry lists built-in plugins without importing them and imports one when looked up."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from opsfix import checks, remediations
from opsfix.errors import PluginError
from opsfix.plugin import Check, Remediation
from opsfix.registry import PluginTable, load_registry

DATA = Path(__file__).parent / "data"


def _names(package: ModuleType) -> list[str]:
    found = pkgutil.iter_modules(package.__path__)
    return sorted(m.name for m in found if not m.name.startswith("_"))


def test_loading_imports_no_builtin_until_one_is_looked_up() -> None:
    code = (
        "import sys; from opsfix.registry import load_registry\n"
        "def loaded(): return sorted(m for m in sys.modules if m.startswith('opsfix.checks.'))\n"
        "r = load_registry()\n"
        "print(loaded()); print('http' in r.checks, len(r.checks) > 10, loaded())\n"
        "r.checks['http']; print(loaded())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[]", "True True []", "['opsfix.checks.http']"]


def test_every_builtin_is_listed_and_loads_under_its_module_name() -> None:
    registry = load_registry()
    assert sorted(registry.checks) == _names(checks)
    assert sorted(registry.remediations) == _names(remediations)
    for name, cls in registry.checks.items():
        assert issubclass(cls, Check) and cls.name == name
    for name, cls in registry.remediations.items():
        assert issubclass(cls, Remediation) and cls.name == name
    assert registry.origins["checks:http"] == "built-in checks/http.py"


def test_a_malformed_builtin_fails_when_looked_up_naming_it() -> None:
    table = PluginTable("checks")
    table.add_builtin("units", "opsfix.checks._units")  # a helper: no Check subclass
    assert "units" in table
    with pytest.raises(PluginError, match=r"built-in checks/units\.py: expected exactly one Check"):
        table["units"]


def test_a_user_plugin_of_the_same_name_replaces_the_builtin(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    source = (DATA / "plugins" / "checks" / "file_contains.py").read_text()
    (tmp_path / "checks" / "http.py").write_text(source)
    registry = load_registry([tmp_path])
    assert registry.checks["http"].__module__ == "opsfix_user_checks.http"
    assert registry.origins["checks:http"] == str(tmp_path / "checks" / "http.py")
