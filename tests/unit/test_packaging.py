"""A wheel install must carry the built-in checks, remediations, templates and lab scripts."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    """`python -m build` (sdist and wheel) of a copy of the tree, and what it printed."""
    out = tmp_path_factory.mktemp("dist")
    # build from a copy: setuptools leaves build/ behind, and a stale one leaks into wheels
    src = tmp_path_factory.mktemp("src") / "opsfix"
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info")
    )
    # byte-compiling off in the environment makes setuptools say so: not the project's
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "-o", str(out), str(src)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(build) -> Path:
    [built] = build[0].glob("opsfix-*.whl")
    return built


def test_the_build_prints_no_warning(build):
    warnings = [line for line in build[1].splitlines() if "warn" in line.lower()]
    assert warnings == []


def test_the_wheel_ships_playbooks_their_verify_suites_schema_and_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    books = {str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").rglob("*.yml")}
    assert books and {f"opsfix/{b}" for b in books} <= names
    assert "opsfix/tests/host/test_nginx.py" in names
    assert "opsfix/schema/run.schema.json" in names
    assert "opsfix-0.1.0.dist-info/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read("opsfix-0.1.0.dist-info/METADATA").decode()
    assert (
        "Requires-Python: >=3.11" in meta
        and "Classifier: Programming Language :: Python :: 3.11" in meta
    )
    assert "Provides-Extra: charts" in meta
    assert "Requires-Dist: matplotlib" in meta and 'extra == "charts"' in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("extra" not in line and "matplotlib" in line for line in requires)


def test_wheel_holds_plugins_templates_and_lab(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for check in ("nginx_config", "service_running", "port_listening", "http", "file_present"):
        assert f"opsfix/checks/{check}.py" in names
    for rem in ("nginx_reload", "nginx_restore_config", "restore_content", "service_start"):
        assert f"opsfix/remediations/{rem}.py" in names
    assert "opsfix/templates/nginx/nginx.conf.j2" in names
    assert "opsfix/templates/webapp/index.html" in names
    assert "opsfix/lab/boot.sh" in names
    assert "opsfix/playbooks/port_conflict.yml" in names
    assert "opsfix/serve/opsfix-serve.service" in names  # `opsfix serve --print-unit`
    assert "opsfix/cluster/opsfix-worker@.service" in names  # `opsfix worker --print-unit`
    # every module of the engine package ships (a package missing from pyproject's list
    # would work in a checkout and vanish from a wheel)
    for path in (ROOT / "opsfix").rglob("*.py"):
        assert str(path.relative_to(ROOT)) in names, path
    assert not any(n.startswith(("checks/", "remediations/", "tests/")) for n in names)


def test_installed_wheel_loads_its_own_plugins(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = (
        "import opsfix, opsfix.registry, opsfix.runner;"
        "r = opsfix.registry.load_registry();"
        "print(opsfix.__file__); print(sorted(r.checks)); print(sorted(r.remediations));"
        "print((opsfix.runner.builtin_templates() / 'nginx' / 'site.conf.j2').is_file())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    where, checks, rems, has_template = done.stdout.splitlines()
    assert where.startswith(str(tmp_path))
    # every plugin module in the source tree is in the wheel and registers under its name
    assert checks == str(_modules("checks"))
    assert rems == str(_modules("remediations"))
    assert has_template == "True"


def _modules(folder: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / folder).glob("*.py") if not p.name.startswith("_"))
