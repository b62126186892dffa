"""`opsfix exec` on lab hosts: an ad-hoc command over verified SSH connections, kept
between runs, output grouped per host, the worst host's exit code, and history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import clean_env, inventory_copy, opsfix_with_env, unused_address

pytestmark = pytest.mark.integration


def env(state: Path, persist: str = "0") -> dict[str, str]:
    return {**clean_env(str(state)), "OPSFIX_STATE_DIR": str(state), "OPSFIX_PERSIST": persist}


def test_a_command_on_every_host_grouped_per_host(clean_lab: Lab, tmp_path: Path) -> None:
    inv = str(clean_lab.inventory_path)
    clean_lab.exec("web2", "touch /etc/exec-marker")
    run = opsfix_with_env(
        "exec", "web", "-i", inv, "--", "hostname; test -e /etc/exec-marker", env=env(tmp_path)
    )
    assert run.returncode == 2, run  # web1, web3, web4 lack the marker: the worst host
    blocks = {}
    for line in run.stdout.splitlines():
        if not line.startswith("  "):
            host, _, rest = line.partition(" | ")
            blocks[host] = [rest]
        else:
            blocks[host].append(line.strip())
    assert sorted(blocks) == sorted(clean_lab.hosts)
    assert blocks["web2"][0].startswith("ok | exit 0 | ") and blocks["web2"][1] == "web2"
    assert blocks["web1"][0].startswith("FAILED | exit 1 | ") and blocks["web1"][1] == "web1"
    assert "4 host(s): failed=3 ok=1 (run " in run.stderr
    clean_lab.exec("web2", "rm -f /etc/exec-marker")


def test_become_json_and_history_with_who_ran_it(clean_lab: Lab, tmp_path: Path) -> None:
    inv = str(clean_lab.inventory_path)
    run = opsfix_with_env(
        "exec", "web1:web3", "-i", inv, "--become", "--format", "json", "--", "id", "-un",
        env=env(tmp_path),
    )  # fmt: skip
    assert run.returncode == 0, run
    shown = json.loads(run.stdout)
    assert [(h["host"], h["stdout"]) for h in shown["hosts"]] == [
        ("web1", "root\n"),
        ("web3", "root\n"),
    ]
    listed = opsfix_with_env("history", "--format", "json", env=env(tmp_path))
    [record] = json.loads(listed.stdout)
    assert record["run_id"] == shown["run_id"] and record["mode"] == "exec"
    assert record["user"].startswith("root@") and record["hosts"] == {"healthy": 2}
    doc = json.loads(opsfix_with_env("show", "last", "--format", "json", env=env(tmp_path)).stdout)
    assert doc["options"]["shell_command"] == "id -un" and doc["options"]["become"] is True


def test_an_unreachable_host_is_said_and_exits_3(clean_lab: Lab, tmp_path: Path) -> None:
    inv = inventory_copy(clean_lab, tmp_path / "inv.yml", hosts={"gone": unused_address(clean_lab)})
    run = opsfix_with_env(
        "exec", "web1:gone", "-i", str(inv), "--timeout", "1", "--", "true", env=env(tmp_path)
    )
    assert run.returncode == 3, run
    assert "gone | UNREACHABLE | " in run.stdout and "web1 | ok | exit 0" in run.stdout


def test_exec_uses_and_keeps_the_connections_runs_keep(clean_lab: Lab, tmp_path: Path) -> None:
    """A check run leaves its connections with the keeper; exec runs over them."""
    from .helpers import log_marks, log_since

    inv = str(clean_lab.inventory_path)
    book = Path(__file__).parents[2] / "playbooks" / "nginx_recovery.yml"
    kept = env(tmp_path, persist="30")
    try:
        assert (
            opsfix_with_env("check", str(book), "-i", inv, "-l", "web1", env=kept).returncode == 0
        )
        marks = log_marks(clean_lab)
        run = opsfix_with_env("exec", "web1", "-i", inv, "--", "true", env=kept)
        assert run.returncode == 0, run
        assert "Accepted publickey" not in log_since(clean_lab, "web1", marks)  # no new login
        listed = opsfix_with_env("connections", env=kept)
        assert "web1" in listed.stdout
    finally:
        opsfix_with_env("connections", "close", env=kept)
