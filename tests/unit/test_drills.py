"""The drill catalog and `opsfix drill`'s gate: practice hosts only, refused before connecting."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.cli import main
from opsfix.drills import (
    BY_NAME,
    DRILLS,
    break_script,
    is_practice,
    reset_script,
    status_script,
)
from opsfix.inventory.host import Host

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "bad_config",
    "broken_include",
    "missing_content",
    "nginx_stopped",
    "var_log_full",
    "port_conflict",
    "web_root_permissions",
}


def test_the_issue_s_faults_are_all_there_with_unique_names() -> None:
    names = [d.name for d in DRILLS]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_each_playbook_exists_and_runs_the_checks_that_detect_it(drill: Any) -> None:
    playbook = ROOT / drill.playbook
    if not playbook.is_file():
        pytest.xfail(f"{drill.playbook} has not landed yet")
    checks = {step["check"] for step in yaml.safe_load(playbook.read_text())["checks"]}
    assert set(drill.detects) <= checks, f"{drill.playbook} runs {sorted(checks)}"


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_each_break_script_is_valid_posix_shell(drill: Any) -> None:
    script = break_script(drill, web_root="/srv/www site", by="ana@laptop")
    assert "@@" not in script
    assert "WEB_ROOT='/srv/www site'" in script
    assert_valid_shell(script)


def test_reset_and_status_scripts_are_valid_posix_shell() -> None:
    for script in (reset_script(web_root="/var/www/html"), status_script(web_root="/x")):
        assert "@@" not in script
        assert_valid_shell(script)


def assert_valid_shell(script: str) -> None:
    shell = shutil.which("dash") or "sh"
    done = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_saved_paths_are_absolute_once_the_web_root_is_known() -> None:
    for drill in DRILLS:
        for path in drill.saves:
            assert path.format(web_root="/var/www/html").startswith("/"), drill.name


@pytest.mark.parametrize(
    ("value", "practice"),
    [
        (True, True),
        ("true", True),
        ("Yes", True),
        ("1", True),
        (False, False),
        ("false", False),
        ("no", False),
        (None, False),
        (1, False),  # not a YAML boolean: refused rather than guessed
        ("{{ practice_flag }}", False),  # never rendered: only the inventory's own word counts
    ],
)
def test_only_the_inventory_s_own_true_makes_a_practice_host(value: Any, practice: bool) -> None:
    assert is_practice(Host("web1", ("web",), {"practice": value})) is practice


# -- the CLI gate -------------------------------------------------------------------------


def inventory(tmp_path: Path, **hosts: dict[str, Any]) -> Path:
    path = tmp_path / "hosts.yml"
    data = {"all": {"children": {"web": {"hosts": hosts}}}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if anything tries to open a connection; record who was asked for."""
    asked: list[str] = []

    def refuse(spec: Any) -> Any:
        asked.append(spec.host)
        raise AssertionError(f"connected to {spec.host}")

    monkeypatch.setattr("opsfix.transport.connect.open_connection", refuse)
    return asked


def test_list_names_every_drill_and_its_playbook(capsys) -> None:
    assert main(["drill", "list"]) == 0
    out = capsys.readouterr().out
    for drill in DRILLS:
        assert drill.name in out and drill.playbook in out


def test_break_needs_a_limit(tmp_path: Path, capsys, no_connections) -> None:
    inv = inventory(tmp_path, web1={"practice": True})
    assert main(["drill", "break", "bad_config", "-i", str(inv)]) == 5
    assert "drill break needs --limit" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["break", "bad_config"], ["reset"]])
def test_a_host_not_marked_practice_is_refused_before_any_connection(
    action: list[str], tmp_path: Path, capsys, no_connections
) -> None:
    inv = inventory(
        tmp_path,
        web1={"practice": True, "ansible_host": "192.0.2.1"},
        db1={"practice": "false", "ansible_host": "192.0.2.2"},
        web3={"ansible_host": "192.0.2.3"},
    )
    code = main(["drill", *action, "-i", str(inv), "--limit", "all", "--trust-new-host-keys"])
    err = capsys.readouterr().err
    assert code == 5
    assert "db1, web3 are not practice hosts" in err
    assert "nothing was changed on any host" in err
    assert no_connections == []


def test_extra_vars_cannot_make_a_host_a_practice_host(tmp_path: Path, no_connections) -> None:
    inv = inventory(tmp_path, web1={"ansible_host": "192.0.2.1"})
    argv = ["drill", "break", "bad_config", "-i", str(inv), "-l", "web1", "-e", "practice=true"]
    assert main(argv) == 5
    assert no_connections == []


def test_an_unknown_drill_is_a_bad_option(tmp_path: Path, capsys) -> None:
    assert main(["drill", "break", "bad_cfg", "-l", "web1"]) == 5
    assert "invalid choice: 'bad_cfg'" in capsys.readouterr().err


def test_a_bad_web_root_is_an_input_error_before_any_connection(
    tmp_path: Path, no_connections
) -> None:
    inv = inventory(tmp_path, web1={"practice": True, "web_root": "www/html"})
    assert main(["drill", "break", "missing_content", "-i", str(inv), "-l", "web1"]) == 4
    assert no_connections == []


def test_status_skips_hosts_that_are_not_practice_hosts(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = inventory(tmp_path, web1={"practice": True}, db1={})
    seen: list[str] = []

    def fake_run(hosts: list[Host], script_for: Any, connect: Any) -> list[Any]:
        from opsfix.drills import HostOutcome

        seen.extend(h.name for h in hosts)
        line = "drill=bad_config since=2026-01-01T00:00:00Z still=yes by=ana@laptop"
        return [HostOutcome(h.name, "ok", lines=[line]) for h in hosts]

    monkeypatch.setattr("opsfix.drills.run_everywhere", fake_run)
    assert main(["drill", "status", "-i", str(inv)]) == 0
    out = capsys.readouterr().out
    assert seen == ["web1"]
    assert "db1: not a practice host (not contacted)" in out
    assert "web1: bad_config: broken (since 2026-01-01T00:00:00Z, by ana@laptop)" in out


def test_break_reports_each_host_and_exits_2_when_one_failed(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsfix.drills import HostOutcome

    inv = inventory(tmp_path, web1={"practice": True}, web2={"practice": True})
    outcomes = [
        HostOutcome("web1", "ok", lines=["broken: bad_config"]),
        HostOutcome("web2", "failed", "bad_config is already broken here", exit_status=3),
    ]
    monkeypatch.setattr("opsfix.drills.run_everywhere", lambda *a: outcomes)
    assert main(["drill", "break", "bad_config", "-i", str(inv), "-l", "web*"]) == 2
    out = capsys.readouterr().out
    assert "web1: broke bad_config" in out
    assert "web2: FAILED: bad_config not broken: bad_config is already broken here" in out
    assert f"repair:  opsfix apply {BY_NAME['bad_config'].playbook} -i {inv} --limit web1" in out


def test_extra_vars_reach_the_hosts_scripts_and_the_commands_it_prints(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-e` works as in a run: over the inventory (a templated address's variable, the
    web root), and the printed detect/repair/undo commands carry it too."""
    from opsfix.drills import HostOutcome

    inv = inventory(tmp_path, web1={"practice": True, "ansible_host": "{{ net }}.5"})
    seen: dict[str, Any] = {}

    def fake_run(hosts: list[Host], script_for: Any, connect: Any) -> list[Any]:
        seen.update(vars=hosts[0].vars, script=script_for(hosts[0]))
        return [HostOutcome(h.name, "ok", lines=["broken: missing_content"]) for h in hosts]

    monkeypatch.setattr("opsfix.drills.run_everywhere", fake_run)
    argv = ["drill", "break", "missing_content", "-i", str(inv), "-l", "web1"]
    assert main([*argv, "-e", "net=10.0.9", "-e", "web_root=/srv/site"]) == 0
    assert seen["vars"]["net"] == "10.0.9" and seen["vars"]["web_root"] == "/srv/site"
    assert "/srv/site" in seen["script"] and "/var/www/html" not in seen["script"]
    out = capsys.readouterr().out
    assert f"undo:    opsfix drill reset -i {inv} -e net=10.0.9 -e web_root=/srv/site" in out


def test_extra_vars_never_decide_whether_a_host_is_a_practice_host(
    tmp_path: Path, capsys, no_connections
) -> None:
    inv = inventory(tmp_path, web1={"practice": True})
    for action in (["break", "bad_config", "-l", "web1"], ["reset"], ["status"]):
        assert main(["drill", *action, "-i", str(inv), "-e", "practice=false"]) == 5
        assert "only the inventory makes a host a practice host" in capsys.readouterr().err
    assert no_connections == []
