"""opsfix exec and opsfix.adhoc, on local hosts (this machine's sh); the lab tests run it
over SSH."""

from __future__ import annotations

import json

import pytest

from opsfix import adhoc
from opsfix.cli import main

INVENTORY = """\
all:
  hosts:
    a: {ansible_connection: local}
    b: {ansible_connection: local, who: b}
    c: {ansible_connection: local}
"""


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OPSFIX_PERSIST", "0")
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return path


def test_output_is_grouped_per_host_and_the_worst_host_decides(inventory, capsys):
    code = main(["exec", "a:b", "-i", str(inventory), "--", "echo", "hi;", "echo", "oops", ">&2"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines()[0].startswith("a | ok | exit 0 | ")
    assert out.splitlines()[1:3] == ["  hi", "  stderr: oops"]
    assert out.splitlines()[3].startswith("b | ok | exit 0")
    assert "2 host(s): ok=2 (run " in err
    assert main(["exec", "all", "-i", str(inventory), "--", "exit 3"]) == 2


def test_host_output_is_escaped_and_bounded(inventory, capsys):
    code = main(["exec", "a", "-i", str(inventory), "--", r"printf 'x\033[2J\ry\a\n'"])
    out = capsys.readouterr().out
    assert code == 0 and "  x\\x1b[2J\\ry\\x07" in out and "\x1b" not in out
    assert adhoc.bounded("abcdef", 2) == "[... 4 characters cut]\nef"


def test_json_and_history_record_the_ad_hoc_run_with_its_user(inventory, capsys):
    code = main(
        ["exec", "all", "-l", "b:c", "-i", str(inventory), "--format", "json", "--", "hostname"]
    )
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["command"] == "hostname" and shown["pattern"] == "all"
    assert [h["host"] for h in shown["hosts"]] == ["b", "c"]
    assert all(h["status"] == "ok" and h["stdout"].strip() for h in shown["hosts"])
    assert main(["history", "--format", "json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["run_id"] == shown["run_id"] and run["mode"] == "exec"
    assert run["playbook"] == "ad-hoc" and "@" in run["user"] and run["hosts"] == {"healthy": 2}
    assert main(["show", run["run_id"], "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["options"]["shell_command"] == "hostname" and doc["exit_code"] == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["exec", "all"], 5, "exec needs a command after --"),
        (["exec", "nothere", "--", "true"], 4, "pattern 'nothere' matched no host"),
        (["exec", "all", "-f", "0", "--", "true"], 5, "--forks must be at least 1"),
    ],
)
def test_mistakes_run_nothing(inventory, capsys, argv, code, message):
    assert main([*argv[:2], "-i", str(inventory), *argv[2:]]) == code
    assert message in capsys.readouterr().err


def test_exit_codes_follow_the_worst_host():
    ok, bad, gone = (
        adhoc.AdhocResult("a", "ok", 0),
        adhoc.AdhocResult("b", "failed", 1),
        adhoc.AdhocResult("c", "unreachable"),
    )
    assert adhoc.exit_code([ok]) == 0
    assert adhoc.exit_code([ok, gone]) == 3
    assert adhoc.exit_code([gone, bad]) == 2
