"""Start-up stays light: heavy modules load only on the paths that need them.

Each check runs a fresh interpreter, since this test session has imported everything."""

import json
import subprocess
import sys

HEAVY = ("paramiko", "invoke", "asyncio", "testinfra", "pytest", "fabric")


def loaded_after(code: str) -> dict[str, bool]:
    report = f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    probe = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_cli_and_its_parser_load_no_transport():
    loaded = loaded_after("import opsfix.cli; opsfix.cli._build_parser()")
    assert not any(loaded.values()), loaded


def test_the_ssh_transport_does_not_load_invoke():
    loaded = loaded_after("import opsfix.transport.ssh")
    assert loaded["paramiko"]
    assert not loaded["invoke"] and not loaded["asyncio"]


def test_a_run_through_the_keeper_starts_without_paramiko():
    """The keeper holds the SSH sessions; a run loads paramiko only to connect itself."""
    loaded = loaded_after(
        "import opsfix.runner, opsfix.transport.connect, opsfix.transport.keeper.link"
    )
    assert not loaded["paramiko"]


def test_ssh_config_match_exec_still_runs_through_invoke(tmp_path):
    config = tmp_path / "config"
    config.write_text('Match exec "true"\n  User matched\nHost *\n  User other\n')
    code = (
        "import opsfix.transport.settings as s, pathlib\n"
        f"print(s.lookup_ssh_config('web1', pathlib.Path({str(config)!r}))['user'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "matched"


def test_fabric_still_gets_the_real_invoke():
    code = "import opsfix.transport.ssh, fabric, invoke; print(invoke.Context.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "invoke.context"


def test_the_ssh_transport_lifts_the_open_file_limit():
    code = (
        "import resource\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from opsfix.transport.ssh import raise_open_file_limit\n"
        "now = raise_open_file_limit()\n"
        "print(now, resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    now, soft = map(int, done.stdout.split())
    assert now == soft > 256
