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


def test_a_user_plugin_may_not_take_a_builtins_name_silently(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    source = (DATA / "plugins" / "checks" / "file_contains.py").read_text()
    (tmp_path / "checks" / "http.py").write_text(source)
    with pytest.raises(PluginError) as refused:
        load_registry([tmp_path])
    assert str(refused.value) == (
        f"{tmp_path / 'checks' / 'http.py'}: check 'http' is already provided by built-in "
        "checks/http.py; rename it, or set `overrides = True` in FileContains to replace "
        "that one on purpose"
    )


def test_a_user_plugin_that_says_overrides_replaces_the_builtin(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    source = (DATA / "plugins" / "checks" / "file_contains.py").read_text()
    source = source.replace(
        "class FileContains(Check[FileContainsParams]):",
        "class FileContains(Check[FileContainsParams]):\n    overrides = True\n",
    )
    (tmp_path / "checks" / "http.py").write_text(source)
    registry = load_registry([tmp_path])
    assert registry.checks["http"].__module__ == "opsfix_user_checks.http"
    assert registry.origins["checks:http"] == str(tmp_path / "checks" / "http.py")


def test_the_same_folder_given_twice_loads_once(tmp_path: Path) -> None:
    registry = load_registry([DATA / "plugins", DATA / "plugins" / "checks" / ".."])
    assert registry.origins["checks:file_contains"].endswith("checks/file_contains.py")


def test_params_come_from_the_subscribed_base() -> None:
    from opsfix.checks.memory import Memory, MemoryParams

    assert Memory.Params is MemoryParams


def test_params_given_twice_must_agree() -> None:
    from opsfix.plugin import Params

    class A(Params):
        pass

    class B(Params):
        pass

    with pytest.raises(TypeError, match=r"declare the model once, in the base: Two\(Check\[A\]\)"):

        class Two(Check[A]):
            Params = B

    class Same(Check[A]):
        Params = A  # the older form, still accepted

    assert Same.Params is A


def _installed(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """A distribution as pip leaves it on sys.path: its modules and its dist-info."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        path = site / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def _in_site(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


FILE_CONTAINS = (DATA / "plugins" / "checks" / "file_contains.py").read_text()


def test_an_installed_package_adds_plugins_through_entry_points(tmp_path: Path) -> None:
    rename = FILE_CONTAINS.replace("class FileContains(", "class LineThere(")
    _installed(
        tmp_path,
        "demo_plugins",
        "[opsfix.checks]\nline_there = demo_plugins.line_there\n"
        "[opsfix.remediations]\nput_line = demo_plugins.put_line:PutLine\n",
        {
            "demo_plugins.__init__": "",
            "demo_plugins.line_there": rename.replace("FileContains", "LineThere"),
            "demo_plugins.put_line": (DATA / "plugins" / "remediations" / "write_line.py")
            .read_text()
            .replace("class WriteLine(", "class PutLine("),
        },
    )
    code = (
        "import sys; from opsfix.registry import load_registry\n"
        "r = load_registry()\n"
        "print('demo_plugins.line_there' in sys.modules, r.origins['checks:line_there'])\n"
        "print(r.checks['line_there'].__name__, r.remediations['put_line'].__name__)\n"
    )
    done = _in_site(tmp_path, code)
    assert done.returncode == 0, done.stderr
    listed, loaded = done.stdout.splitlines()
    # listed without importing, like the built-ins; imported when looked up
    assert listed == (
        "False package demo_plugins (checks entry point line_there = demo_plugins.line_there)"
    )
    assert loaded == "LineThere PutLine"


def test_a_package_may_not_shadow_a_builtin_without_saying_so(tmp_path: Path) -> None:
    memory = FILE_CONTAINS.replace("class FileContains(", "class Memory(")
    _installed(
        tmp_path,
        "shadowing",
        "[opsfix.checks]\nmemory = shadowing.memory\n",
        {"shadowing.__init__": "", "shadowing.memory": memory},
    )
    done = _in_site(tmp_path, "from opsfix.registry import load_registry; load_registry()")
    assert done.returncode != 0
    assert (
        "PluginError: package shadowing (checks entry point memory = shadowing.memory): "
        "check 'memory' is already provided by built-in checks/memory.py; rename it, or set "
        "`overrides = True` in Memory to replace that one on purpose"
    ) in done.stderr
    (tmp_path / "shadowing" / "memory.py").write_text(
        memory.replace(
            "class Memory(Check[FileContainsParams]):",
            "class Memory(Check[FileContainsParams]):\n    overrides = True\n",
        )
    )
    code = (
        "from opsfix.registry import load_registry\n"
        "print(load_registry().checks['memory'].__module__)"
    )
    done = _in_site(tmp_path, code)
    assert done.stdout.strip() == "shadowing.memory", done.stderr


def test_a_frozen_process_keeps_the_packages_it_saw_and_skips_the_scan(tmp_path: Path) -> None:
    """`opsfix worker` loads a registry per host: it reads the installed packages once."""
    rename = FILE_CONTAINS.replace("class FileContains(", "class LineThere(")
    modules = {"late_plugins.__init__": "", "late_plugins.line_there": rename}
    _installed(
        tmp_path, "late_plugins", "[opsfix.checks]\nline_there = late_plugins.line_there\n", modules
    )
    info, aside = tmp_path / "late_plugins-1.0.dist-info", tmp_path.parent / "aside"
    code = (
        "import shutil; from opsfix import registry\n"
        "FREEZE\n"
        f"shutil.move({str(info)!r}, {str(aside)!r})  # uninstalled while the process runs\n"
        "print('line_there' in registry.load_registry().checks)\n"
        f"shutil.move({str(aside)!r}, {str(info)!r})\n"
    )
    frozen = _in_site(tmp_path, code.replace("FREEZE", "registry.freeze_packages()"))
    scanned = _in_site(tmp_path, code.replace("FREEZE", "pass"))
    assert (frozen.stdout, scanned.stdout) == ("True\n", "False\n"), frozen.stderr + scanned.stderr
