"""Start-up imports only what the command needs; a background import behaves like a real one."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opsfix import runner
from opsfix.cli import COMMANDS, _build_parser

HEAVY = ("jinja2", "croniter", "pytest", "testinfra", "opsfix.drills.run", "opsfix.verify.suite")


def _imported_after(code: str, cwd: Path) -> set[str]:
    """Modules loaded by `code` in a fresh interpreter."""
    probe = code + "\nimport sys; print('\\n'.join(sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_building_the_command_line_imports_no_command_body(tmp_path: Path) -> None:
    loaded = _imported_after("from opsfix.cli import _build_parser; _build_parser()", tmp_path)
    assert not loaded & {*HEAVY, "paramiko", "opsfix.transport", "pydantic"}


def test_preparing_a_run_imports_the_plugins_it_uses_and_no_template_engine(
    tmp_path: Path,
) -> None:
    (tmp_path / "book.yml").write_text(
        "hosts: all\nchecks:\n  - check: port_listening\n    with: {port: 80}\n"
    )
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    code = textwrap.dedent("""
        from pathlib import Path
        from opsfix.runner import RunRequest, prepare
        prepare(RunRequest(Path("book.yml"), [Path("hosts.yml")], mode="check"))
    """)
    loaded = _imported_after(code, tmp_path)
    assert "opsfix.checks.port_listening" in loaded
    assert not loaded & set(HEAVY)
    assert [m for m in loaded if m.startswith("opsfix.checks.")] == ["opsfix.checks.port_listening"]


def test_a_repairing_run_with_a_flap_guard_loads_no_cron_parser(tmp_path: Path) -> None:
    """The flap guard reads a duration; the windows' cron and time zone code stays out."""
    (tmp_path / "book.yml").write_text(
        "hosts: all\nflap_guard: {max_repairs: 2, period: 1h30m}\n"
        "checks:\n  - check: port_listening\n    with: {port: 80}\n"
    )
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    code = textwrap.dedent("""
        from pathlib import Path
        from opsfix.runner import RunRequest, flap_guard, prepare, window_gate
        request = RunRequest(Path("book.yml"), [Path("hosts.yml")], mode="apply")
        playbook, jobs, _ = prepare(request)
        assert flap_guard(playbook, request) is not None
        assert window_gate(playbook, jobs, request.now) is None
    """)
    loaded = _imported_after(code, tmp_path)
    assert "opsfix.playbook.durations" in loaded
    assert not loaded & {"croniter", "opsfix.windows"}


def test_a_background_import_is_the_one_the_real_import_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow_mod.py").write_text("import time\ntime.sleep(0.2)\nLOADS = [1]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runner.import_soon("slow_mod")
    import slow_mod  # type: ignore[import-not-found]

    assert slow_mod.LOADS == [1]
    assert sys.modules["slow_mod"] is slow_mod
    monkeypatch.delitem(sys.modules, "slow_mod")


def test_a_failed_background_import_fails_again_at_the_real_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_mod.py").write_text("raise ValueError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runner.import_soon("broken_mod").join()
    assert "broken_mod" not in sys.modules
    with pytest.raises(ValueError, match="broken on import"):
        import broken_mod  # type: ignore[import-not-found]  # noqa: F401


def test_a_command_builds_only_its_own_parser() -> None:
    def commands(argv: list[str] | None) -> list[str]:
        sub = next(a for a in _build_parser(argv)._actions if a.dest == argparse.SUPPRESS)
        return sorted(getattr(sub, "choices", {}))

    assert commands(["check", "book.yml"]) == ["apply", "check"]
    assert commands(["-h"]) == commands(["chekc"]) == commands([]) == commands(None)
    assert commands(None) == sorted(COMMANDS)


def test_the_window_gate_looks_for_the_variables_the_windows_read() -> None:
    from opsfix.windows.parse import FREEZES_VAR, WINDOWS_VAR

    assert set(runner.WINDOW_VARS) == {WINDOWS_VAR, FREEZES_VAR}


def test_the_console_script_flushes_runs_exit_handlers_and_keeps_the_exit_code(
    tmp_path: Path,
) -> None:
    """`entry` skips the interpreter's teardown, not what a run leaves to be done at exit."""
    code = textwrap.dedent("""
        import atexit, sys
        from opsfix import cli
        atexit.register(lambda: open("handler-ran", "w").close())
        def fake_main():
            sys.stdout.write("buffered, never flushed by hand")
            sys.stderr.write("and on stderr")
            return 3
        cli.main = fake_main
        cli.entry()
        print("not reached")
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 3
    assert done.stdout == "buffered, never flushed by hand"
    assert done.stderr == "and on stderr"
    assert (tmp_path / "handler-ran").exists()


def test_help_describes_the_tool_in_a_whole_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _build_parser(["--help"]).parse_args(["--help"])
    assert "repair it safely, over SSH." in capsys.readouterr().out


def test_version_builds_no_command_parser(tmp_path: Path) -> None:
    loaded = _imported_after(
        "from opsfix import cli\ntry:\n    cli._build_parser(['--version'])"
        ".parse_args(['--version'])\nexcept SystemExit:\n    pass",
        tmp_path,
    )
    assert not [
        m for m in loaded if m.startswith("opsfix.commands.") and m != "opsfix.commands.common"
    ]


def test_a_run_freezes_what_binding_built_before_contacting_hosts(tmp_path: Path) -> None:
    """`opsfix check` freezes the heap once bound (opsfix.startup_gc); no host is contacted
    before."""
    (tmp_path / "book.yml").write_text(
        "hosts: all\nchecks:\n  - check: port_listening\n    with: {port: 80}\n"
    )
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_connection: local}\n"
    )
    code = textwrap.dedent("""
        import gc, sys
        from opsfix import cli
        from opsfix.transport import connect
        seen = []
        opened = connect.open_connection
        gc.freeze = lambda: seen.append("freeze")
        def spy(spec):
            seen.append("connect")
            return opened(spec)
        connect.open_connection = spy
        cli.main(["check", "book.yml", "-i", "hosts.yml"])
        print(seen)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "['freeze', 'connect']", done.stderr


def test_the_collector_runs_rarely_while_starting_and_as_usual_once_settled() -> None:
    import gc

    from opsfix import startup_gc as heap

    usual = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        heap.starting()
        assert gc.get_threshold()[0] > 10 * usual[0]
        heap.settled()
        assert gc.get_threshold() == usual
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*usual)
