"""`opsfix serve`'s command line: validation before anything listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main

REPO = Path(__file__).parents[3]


def rules(tmp_path: Path, playbook: str = "nginx_recovery.yml") -> Path:
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"playbook_dirs: [{REPO / 'playbooks'}]\n"
        "rules:\n"
        "  - name: web-down\n"
        "    match: {alertname: HttpDown}\n"
        f"    playbook: {playbook}\n"
        "    limit: web-canary*\n"
    )
    return path


def test_check_config_shows_what_each_rule_may_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = str(REPO / "inventory" / "example.yml")
    assert main(["serve", "--rules", str(rules(tmp_path)), "-i", inventory, "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "rule web-down: apply" in out and "may name 1 host(s): web-canary.example.com" in out


def test_bad_rules_exit_4_and_missing_auth_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = rules(tmp_path, "../../etc/passwd")
    assert main(["serve", "--rules", str(bad)]) == 4
    assert "rules[0].playbook: no playbook '../../etc/passwd'" in capsys.readouterr().err
    good = rules(tmp_path)
    inventory = str(REPO / "inventory" / "example.yml")
    assert main(["serve", "--rules", str(good), "-i", inventory]) == 5
    assert "needs --token-file or --basic-auth-file" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text("t" * 20)
    listen = ["--token-file", str(token), "--listen", "localhost"]
    assert main(["serve", "--rules", str(good), "-i", inventory, *listen]) == 5
    assert "expected HOST:PORT" in capsys.readouterr().err
    assert main(["serve"]) == 5


def test_print_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--print-unit"]) == 0
    unit = capsys.readouterr().out
    assert "ExecStart=/usr/local/bin/opsfix serve --rules /etc/opsfix/alerts.yml" in unit
    assert "KillSignal=SIGTERM" in unit and "[Install]" in unit
