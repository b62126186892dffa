"""The engine's decisions, run for real in a local shell with the test plugins."""

from pathlib import Path

import pytest

from opsfix.binding import bind
from opsfix.engine import Engine, Job
from opsfix.hosts import ConnectionSpec, Host
from opsfix.playbook import load_playbook
from opsfix.registry import load_registry
from opsfix.templating import TemplateEngine

from .localsh import LocalShell

DATA = Path(__file__).parent / "data"


def run(tmp_path: Path, mode: str, body: str, **host_vars):
    registry = load_registry([DATA / "plugins"])
    book = tmp_path / "book.yml"
    book.write_text(body)
    playbook = load_playbook(book, registry)
    host_vars |= {
        "d": str(tmp_path),
        "opsfix_state_dir": str(tmp_path / "state"),
        "opsfix_backup_dir": str(tmp_path / "backups"),
    }
    [target] = bind(playbook, [Host("h1", (), host_vars)], registry, {}, TemplateEngine())
    engine = Engine(mode, lambda spec: LocalShell())
    return engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]


BOOK = """
hosts: all
checks:
  - check: file_contains
    with: {path: "{{ d }}/conf/f", line: good, count: COUNT}
    remediate:
      - remediation: write_line
        with: {path: "{{ d }}/conf/f", line: LINE, root: "{{ d }}/conf"}
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "f").write_text("bad\n")
    return tmp_path / "conf" / "f"


def book(line: str = "good", count: int = 1) -> str:
    return BOOK.replace("LINE", line).replace("COUNT", str(count))


def test_repairs_and_reports_evidence(tmp_path, conf):
    host = run(tmp_path, "apply", book())
    assert host.status == "repaired"
    step = host.steps[0]
    assert step.before.status == "failed" and step.after.status == "passed"
    [rem] = step.remediations
    assert rem.status == "applied" and rem.recheck.ok
    assert conf.read_text() == "good\n"
    backups = list((tmp_path / "backups").rglob("f"))
    assert [b.read_text() for b in backups] == ["bad\n"]


def test_healthy_host_is_left_alone(tmp_path, conf):
    conf.write_text("good\n")
    host = run(tmp_path, "apply", book())
    assert host.status == "healthy"
    assert host.steps[0].remediations == []
    assert not (tmp_path / "backups").exists()


def test_validation_failure_refuses_and_changes_nothing(tmp_path, conf):
    host = run(tmp_path, "apply", book(line="FORBIDDEN"))
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "refused" and "validation failed" in rem.reason
    assert conf.read_text() == "bad\n"


def test_failed_recheck_rolls_back(tmp_path, conf):
    host = run(tmp_path, "apply", book(count=2))
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "rolled_back" and "snapshot restored" in rem.reason
    assert conf.read_text() == "bad\n"


def test_dry_run_shows_diff_and_changes_nothing(tmp_path, conf):
    host = run(tmp_path, "dry-run", book())
    [rem] = host.steps[0].remediations
    assert rem.status == "would_change"
    assert "-bad\n+good\n" in rem.diff
    assert conf.read_text() == "bad\n"
    assert not (tmp_path / "state").exists() and not (tmp_path / "backups").exists()


def test_check_mode_never_remediates(tmp_path, conf):
    host = run(tmp_path, "check", book())
    assert host.status == "failed"
    assert host.steps[0].remediations == []
    assert conf.read_text() == "bad\n"


def test_unreadable_is_error_not_pass(tmp_path):
    host = run(tmp_path, "check", book())
    assert host.steps[0].before.status == "error"
    assert host.status == "failed"


def test_partial_help_is_kept_and_the_host_still_fails(tmp_path, conf):
    body = book(count=2).replace('root: "{{ d }}/conf"}', 'root: "{{ d }}/conf", partial: true}')
    host = run(tmp_path, "apply", body)
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "partial" and "re-check still fails" in rem.reason
    assert conf.read_text() == "good\n"
