"""`--cluster` and `opsfix worker` on the command line: refusals before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.commands.run import _without_password

REPO = Path(__file__).parents[3]
PLAYBOOK = str(REPO / "playbooks" / "nginx_recovery.yml")


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("OPSFIX_CLUSTER_KEY", raising=False)
    monkeypatch.delenv("OPSFIX_CLUSTER_KEY_FILE", raising=False)


def test_a_become_password_is_never_sent_to_workers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPSFIX_BECOME_PASSWORD", "hunter2")
    monkeypatch.setenv("OPSFIX_CLUSTER_KEY", "k" * 40)
    code = main(["apply", PLAYBOOK, "-i", "web1,", "--cluster", "redis://127.0.0.1:1/0"])
    err = capsys.readouterr().err
    assert code == 5
    assert "a become password never travels through the broker" in err
    assert "hunter2" not in err


def test_a_cluster_run_without_a_key_says_where_to_put_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", PLAYBOOK, "-i", "web1,", "--cluster", "redis://127.0.0.1:1/0"])
    assert code == 5
    assert "no cluster key: set OPSFIX_CLUSTER_KEY_FILE" in capsys.readouterr().err


def test_a_worker_with_a_bad_queue_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPSFIX_CLUSTER_KEY", "k" * 40)
    code = main(["worker", "--broker", "redis://127.0.0.1:1/0", "--queue", "a b"])
    assert code == 5
    assert "--queue: 'a b' is not a site name" in capsys.readouterr().err


def test_print_unit_is_a_template_per_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--print-unit"]) == 0
    unit = capsys.readouterr().out
    assert "ExecStart=/usr/local/bin/opsfix worker --queue %i" in unit
    assert "KillMode=mixed" in unit and "OPSFIX_CLUSTER_KEY_FILE=" in unit


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("redis://:s3cret@broker:6379/0", "redis://:********@broker:6379/0"),
        ("amqp://opsfix:s3cret@rabbit:5672/v", "amqp://opsfix:********@rabbit:5672/v"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_history_keeps_the_broker_url_without_its_password(url: str, kept: str) -> None:
    assert _without_password(url) == kept
