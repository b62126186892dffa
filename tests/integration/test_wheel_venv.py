"""opsfix as a user installs it: built wheels (opsfix, and the example plugin package under
examples/) pip-installed into a fresh virtualenv, run from a folder that is not the
checkout, against lab hosts. Everything a run needs must come from the installed package:
the shipped playbooks, their templates and verify suites, and the package's plugins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import reset_hosts

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "examples" / "opsfix-file-mode"
SECRETS = "/etc/opsfix-example/secrets"
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__")


@dataclass
class Venv:
    root: Path
    work: Path  # an empty folder runs start in: nothing of the checkout is found from it

    @property
    def site(self) -> Path:
        [site] = (self.root / "lib").glob("python3*/site-packages")
        return site

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.root / "bin" / args[0]), *args[1:]],
            cwd=self.work,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "LANG"))}
        return {
            **keep,
            "PATH": f"{self.root / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.work),
            "OPSFIX_PERSIST": "0",
            "OPSFIX_STATE_DIR": str(self.work / "state"),
        }


def _wheel(source: Path, out: Path, scratch: Path) -> Path:
    """`python -m build --wheel` of a copy of `source` (a build leaves build/ behind)."""
    copy = scratch / source.name
    shutil.copytree(source, copy, ignore=IGNORE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(copy)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [built] = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    base = tmp_path_factory.mktemp("wheel-venv")
    dist = base / "dist"
    opsfix_wheel = _wheel(REPO, dist / "opsfix", base / "src")
    example_wheel = _wheel(EXAMPLE, dist / "example", base / "src")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    work = base / "work"
    work.mkdir()
    made = Venv(base / "venv", work)
    done = made.run("pip", "install", "-q", str(opsfix_wheel), str(example_wheel))
    assert done.returncode == 0, done.stderr[-3000:]
    yield made


def test_the_installed_package_is_the_one_run(venv: Venv) -> None:
    done = venv.run("python", "-c", "import opsfix; print(opsfix.__file__)")
    assert done.stdout.startswith(str(venv.site)), done
    assert not (venv.site / "matplotlib").exists()  # an extra: opsfix[charts]


def test_drill_list_names_playbooks_shipped_in_the_package(venv: Venv) -> None:
    done = venv.run("opsfix", "drill", "list")
    assert done.returncode == 0, done.stderr
    named = {
        line.split("repair with ")[1].split(" (")[0]
        for line in done.stdout.splitlines()
        if "repair with " in line
    }
    assert named and all(Path(p).is_file() and p.startswith(str(venv.site)) for p in named)
    listed = venv.run("opsfix", "playbooks", "--paths").stdout.split()
    assert str(venv.site / "opsfix" / "playbooks" / "nginx_recovery.yml") in listed


def test_the_chart_without_the_charts_extra_says_how_to_get_it(venv: Venv) -> None:
    done = venv.run("opsfix", "report", "capacity", "-o", "chart.png")
    assert done.returncode == 5
    assert "pip install 'opsfix[charts]'" in done.stderr


def test_check_and_apply_with_a_shipped_playbook_verify_with_the_shipped_suite(
    venv: Venv, clean_lab: Lab
) -> None:
    # the practice app's playbook: its release (../templates/webapp) and verify suite
    # (../tests/host) must resolve inside the package
    book = venv.site / "opsfix" / "playbooks" / "practice_app.yml"
    inventory = str(clean_lab.inventory_path)
    check = venv.run(
        "opsfix", "check", str(book), "-i", inventory, "-l", "web1", "--format", "json"
    )
    assert check.returncode == 0, check.stderr
    clean_lab.exec("web1", "rm /var/www/html/index.html")
    apply = venv.run(
        "opsfix", "apply", str(book), "-i", inventory, "-l", "web1", "--format", "json"
    )
    assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr[-3000:]
    [host] = json.loads(apply.stdout)["hosts"]
    assert host["status"] == "repaired"
    verify = host["verify"]
    assert verify and {v["outcome"] for v in verify} == {"passed"}, verify
    assert all("test_nginx.py" in v["test"] and v["duration"] > 0 for v in verify), verify


def test_the_example_plugin_package_checks_and_repairs_lab_hosts(
    venv: Venv, clean_lab: Lab
) -> None:
    listed = venv.run("opsfix", "plugins").stdout
    assert "file_mode                package opsfix-file-mode" in listed
    assert "fix_mode                 package opsfix-file-mode" in listed
    for host in ("web2", "web3"):
        clean_lab.exec(host, f"mkdir -p /etc/opsfix-example && echo s > {SECRETS}")
    clean_lab.exec("web2", f"chmod 0644 {SECRETS}")
    clean_lab.exec("web3", f"chmod 0600 {SECRETS}")
    book = str(EXAMPLE / "playbook.yml")
    args = ["-i", str(clean_lab.inventory_path), "-l", "web2:web3", "--format", "json"]
    try:
        check = venv.run("opsfix", "check", book, *args)
        assert check.returncode == 2, check.stderr
        status = {h["host"]: h["status"] for h in json.loads(check.stdout)["hosts"]}
        assert status == {"web2": "failed", "web3": "healthy"}
        apply = venv.run("opsfix", "apply", book, *args)
        assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr[-3000:]
        status = {h["host"]: h["status"] for h in json.loads(apply.stdout)["hosts"]}
        assert status == {"web2": "repaired", "web3": "healthy"}
        modes = {h: clean_lab.exec(h, f"stat -c %a {SECRETS}").stdout.strip() for h in status}
        assert modes == {"web2": "600", "web3": "600"}
    finally:
        for host in ("web2", "web3"):
            clean_lab.exec(host, "rm -rf /etc/opsfix-example")
        reset_hosts(clean_lab, ["web2", "web3"])


def test_the_example_packages_own_tests_pass_against_the_installed_wheels(venv: Venv) -> None:
    tests = venv.work / "example-tests"
    shutil.copytree(EXAMPLE / "tests", tests, ignore=IGNORE)
    done = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests))
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:]
