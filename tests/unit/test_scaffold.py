"""`opsfix new` writes a plugin and a test that pass as written; `opsfix plugins` lists origins."""

import subprocess
import sys
from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.testing import load_plugin

ROOT = Path(__file__).resolve().parents[2]


def test_new_skeletons_pass_their_own_tests_and_lint(tmp_path, capsys):
    assert main(["new", "check", "file_mode", "-C", str(tmp_path)]) == 0
    assert main(["new", "remediation", "fix_mode", "-C", str(tmp_path)]) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py"))
    assert written == [
        "checks/file_mode.py",
        "remediations/fix_mode.py",
        "tests/test_file_mode.py",
        "tests/test_fix_mode.py",
    ]
    assert load_plugin(tmp_path / "checks" / "file_mode.py").__name__ == "FileMode"
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tests.returncode == 0 and "7 passed" in tests.stdout, tests.stdout
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), "."],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["new", "check", "memory"], "check 'memory' already exists (built-in checks/memory.py)"),
        (["new", "check", "File-Mode"], "plugin name 'File-Mode': use snake_case"),
        (["new", "remediation", "class"], "plugin name 'class'"),
    ],
)
def test_new_refuses_names_that_would_not_load(tmp_path, capsys, argv, message):
    assert main([*argv, "-C", str(tmp_path)]) == 5
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_new_never_overwrites(tmp_path, capsys):
    assert main(["new", "check", "file_mode", "-C", str(tmp_path)]) == 0
    (tmp_path / "checks" / "file_mode.py").write_text("# mine\n")
    assert main(["new", "check", "file_mode", "-C", str(tmp_path)]) == 5
    assert (tmp_path / "checks" / "file_mode.py").read_text() == "# mine\n"


def test_plugins_lists_each_with_its_origin(tmp_path, capsys):
    assert main(["new", "check", "file_mode", "-C", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["plugins", "--plugins", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"file_mode                {tmp_path / 'checks' / 'file_mode.py'}" in out
    assert "memory                   built-in checks/memory.py" in out
    assert "transports (ansible_connection):" in out
    assert "smart                    built-in opsfix/transport/kinds/ssh.py (as ssh)" in out
