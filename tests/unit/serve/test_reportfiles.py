"""Incident report files: written whole, private, named by the run."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from opsfix.evidence import history
from opsfix.evidence.results import HostReport, RunReport
from opsfix.serve.reportfiles import ReportFiles


def doc() -> dict[str, Any]:
    report = RunReport("nginx_recovery", "apply", [HostReport("web2", "repaired")], 100.0, 102.0)
    return history.bundle_doc(
        report,
        run_id="20260101T000000Z-abcdef",
        playbook_path=Path("playbooks/nginx_recovery.yml"),
        options={"command": "serve", "reason": "alert firing: HttpDown on web2"},
        exit_code=0,
        secrets=[],
        user="opsfix@test",
    )


def test_the_report_is_written_and_linked(tmp_path: Path) -> None:
    events: list[str] = []
    files = ReportFiles(tmp_path / "reports", "https://ops.example/r/{run_id}.md")
    where = files.write(doc(), "0" * 64, lambda event, **f: events.append(event))
    assert where == "https://ops.example/r/20260101T000000Z-abcdef.md"
    path = tmp_path / "reports" / "20260101T000000Z-abcdef.md"
    text = path.read_text()
    assert "web2" in text and "HttpDown" in text and "0" * 64 in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    assert events == []


def test_a_report_that_cannot_be_written_is_logged(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    events: list[str] = []
    files = ReportFiles(blocker / "reports")
    assert files.write(doc(), "0" * 64, lambda event, **f: events.append(event)) is None
    assert events == ["report_failed"]
