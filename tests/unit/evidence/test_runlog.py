"""-v/-vv/-vvv, --log-file/OPSFIX_LOG and --format jsonl, on a run of local hosts (this
machine's sh, the engine tests' plugins): what each level adds, and the events' order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsfix.cli import main

PLUGINS = Path(__file__).parents[1] / "data" / "plugins"
BOOK = """\
hosts: all
checks:
  - name: the line is there
    check: file_contains
    with: {path: "{{ d }}/f", line: good}
    remediate:
      - remediation: write_line
        with: {path: "{{ d }}/f", line: good, root: "{{ d }}"}
"""


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OPSFIX_PERSIST", "0")
    monkeypatch.delenv("OPSFIX_LOG", raising=False)
    for name in ("h1", "h2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("bad\n")
    hosts = "".join(
        f"    {n}: {{ansible_connection: local, d: '{tmp_path / n}', "
        f"opsfix_state_dir: '{tmp_path / n}/.s', opsfix_backup_dir: '{tmp_path / n}/.b'}}\n"
        for n in ("h1", "h2")
    )
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n" + hosts)
    (tmp_path / "book.yml").write_text(BOOK)

    def go(*argv: str) -> tuple[int, str, str]:
        code = main([argv[0], str(tmp_path / "book.yml"), "-i", str(tmp_path / "hosts.yml"),
                     "--plugins", str(PLUGINS), *argv[1:]])  # fmt: skip
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_each_v_adds_detail(run):
    _, _, one = run("check", "-v")
    assert "h1 | connecting" in one and "h1 | checking" in one and "h1 | failed" in one
    assert "command:" not in one
    _, _, two = run("check", "-vv")
    assert "h1 | command:" in two and "h1 | exit 0 in " in two and "ssh: " not in two
    _, _, three = run("check", "-vvv")
    assert "h1 | ssh: connecting to -@h1:22 (key agent/default, local)" in three
    assert "h1 | ssh: connected (new) in " in three


def test_the_log_file_keeps_everything_whatever_the_terminal_shows(run, tmp_path, monkeypatch):
    log = tmp_path / "run.log"
    code, _, err = run("check", "--log-file", str(log))
    assert code == 2 and err.count("\n") <= 1  # nothing extra on the terminal
    text = log.read_text()
    assert "h2 | connecting" in text and "h2 | command:" in text and "h2 | ssh: connected" in text
    monkeypatch.setenv("OPSFIX_LOG", str(tmp_path / "env.log"))
    run("check")
    assert "h1 | checking" in (tmp_path / "env.log").read_text()


def test_jsonl_is_one_event_per_line_as_the_run_goes(run, tmp_path):
    code, out, _ = run("apply", "--format", "jsonl")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    kinds = {e["event"] for e in events}
    assert kinds == {"host_started", "step", "remediation", "host_done", "run"}
    for host in ("h1", "h2"):
        mine = [e["event"] for e in events if e.get("host") == host]
        assert mine == ["host_started", "step", "remediation", "host_done"]
    [step] = [e for e in events if e["event"] == "step" and e["host"] == "h1"]
    assert step["before"]["status"] == "failed" and step["after"]["status"] == "passed"
    [rem] = [e for e in events if e["event"] == "remediation" and e["host"] == "h1"]
    assert rem["remediation"] == "write_line" and rem["status"] == "applied"
    last = events[-1]
    assert last["event"] == "run" and last["exit_code"] == 0 and last["run_id"]
    assert last["summary"]["repaired"] == 2 and all(e["at"].endswith("Z") for e in events)
    assert (tmp_path / "h1" / "f").read_text() == "good\n"


def test_secret_values_never_reach_the_log_or_the_terminal(run, tmp_path, monkeypatch):
    """A secret (here the become password's variable) that a command script carries is
    masked in -vv lines and in the log file, as in every other output."""
    secret = "s3cret-Passw0rd"
    book = (tmp_path / "book.yml").read_text().replace("line: good}", f"line: '{secret}'}}", 1)
    (tmp_path / "book.yml").write_text(book)
    monkeypatch.setenv("OPSFIX_BECOME_PASSWORD", secret)
    log = tmp_path / "run.log"
    _, out, err = run("check", "-vv", "--log-file", str(log))
    assert "grep" in err and "********" in err  # the check's command was shown, masked
    assert secret not in err and secret not in out and secret not in log.read_text()
