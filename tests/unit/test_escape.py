"""Control characters from hosts and host names reach a person escaped, in every
human-readable output; JSON keeps them as JSON escapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsfix.cli import main
from opsfix.escape import printable
from opsfix.evidence import history, output
from opsfix.evidence.progress import LiveProgress
from opsfix.evidence.reports import html, markdown, oplog
from opsfix.evidence.results import CheckOutcome, HostReport, RunReport, StepReport
from opsfix.evidence.state import open_store

CLEAR = "\x1b[2J\x1b]8;;http://evil\x07click\x1b]8;;\x07"
NAME = "web9\x1b[31m\r\nFORGED  HEALTHY"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb", "a\\rb"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f csi\x9b", "del\\x7f csi\\x9b"),
        ("abc\u202egpj.exe", "abc\\u202egpj.exe"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("C:\\path, é, 日本", "C:\\path, é, 日本"),
    ],
)
def test_control_characters_are_written_as_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_one_line_text_keeps_no_newline_or_tab() -> None:
    assert printable("web1\nFORGED\tx", one_line=True) == "web1\\nFORGED\\tx"


@given(st.text())
def test_nothing_raw_is_left_and_plain_text_is_untouched(text: str) -> None:
    shown = printable(text)
    assert not RAW.search(shown)
    if not RAW.search(text):
        assert shown == text


def hostile_report() -> RunReport:
    bad = CheckOutcome("nginx_config", "failed", f"nginx -t: unknown directive {CLEAR}", {
        "message": f"unknown directive \"{CLEAR}\"", "file": "/etc/nginx/conf.d/x.conf"
    })  # fmt: skip
    return RunReport(
        "nginx_recovery",
        "check",
        [HostReport(NAME, "failed", reason=CLEAR, steps=[StepReport("config", bad, [], bad)])],
        started=1_700_000_000.0,
        finished=1_700_000_001.0,
    )


def assert_escaped(text: str, *, lines: bool = True) -> None:
    """No raw control character; and, where lines mean something (not in HTML, where a
    newline is a space), no line a host name forged."""
    assert not RAW.search(text), repr(text)
    assert "\\x1b[2J" in text
    assert not (lines and any(line.startswith("FORGED") for line in text.splitlines()))


def test_terminal_text_escapes_host_output_and_host_names() -> None:
    text = output.to_text(hostile_report(), verbose=1)
    assert_escaped(text)
    assert "web9\\x1b[31m\\r\\nFORGED  HEALTHY" in text


def test_json_keeps_them_as_json_escapes() -> None:
    text = output.to_json(hostile_report())
    assert not RAW.search(text) and "\\u001b[2J" in text
    assert json.loads(text)["hosts"][0]["host"] == NAME  # the data itself is unchanged


def test_reports_escape_them() -> None:
    doc = history.bundle_doc(
        hostile_report(),
        run_id="20231114T221320Z-abc123",
        playbook_path=Path("/srv/nginx_recovery.yml"),
        options={},
        exit_code=2,
        secrets=[],
        user="alice",
    )
    log = oplog.build(doc, "0" * 64)
    assert_escaped(markdown.render(log))
    page = html.render(log)
    assert_escaped(page, lines=False)
    assert "<code>opsfix apply /srv/nginx_recovery.yml --limit &#x27;web9\\x1b[31m\\r\\n" in page


def test_history_and_show_escape_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "state"))
    doc = history.bundle_doc(
        hostile_report(),
        run_id="20231114T221320Z-abc123",
        playbook_path=Path("/srv/nginx_recovery.yml"),
        options={},
        exit_code=2,
        secrets=[],
        user="alice\x1b[2J",
    )
    store = open_store()
    run = history.record(store, doc)
    store.close()
    assert main(["history"]) == 0
    listed = capsys.readouterr().out
    assert not RAW.search(listed) and "alice\\x1b[2J" in listed
    assert main(["show", run.id]) == 0
    assert_escaped(capsys.readouterr().out)


def test_the_live_view_escapes_them() -> None:
    live = LiveProgress("check nginx_recovery")
    live.event(NAME, f"checking {CLEAR}")
    live.event(NAME, "failed")
    live.event("web1\x1b[2J", f"repairing {CLEAR}")
    shown = repr((live._working, live._done))
    assert "\\x1b" not in shown.replace("\\\\x1b", "")  # only escaped forms are left
