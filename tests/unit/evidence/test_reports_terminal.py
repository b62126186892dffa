"""What a terminal shows: live per-host progress only when a person watches, a summary."""

from __future__ import annotations

import io

from rich.console import Console

from opsfix.evidence.progress import LiveProgress, is_interactive, print_summary
from opsfix.evidence.results import CheckOutcome, HostReport, RunReport, StepReport


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_when_piped_in_ci_or_on_a_dumb_terminal():
    assert is_interactive(Tty(), Tty(), env={"TERM": "xterm"})
    assert not is_interactive(io.StringIO(), Tty(), env={})
    assert not is_interactive(Tty(), io.StringIO(), env={})
    assert not is_interactive(Tty(), Tty(), env={"CI": "true"})
    assert not is_interactive(Tty(), Tty(), env={"TERM": "dumb"})


def text(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(renderable)
    return out.getvalue()


def test_hosts_at_work_and_done_are_shown_with_counts():
    progress = LiveProgress("apply book.yml")
    progress.event("web1", "connecting")
    progress.event("web2", "connecting")
    progress.event("web2", "config: nginx_reload")
    progress.event("web1", "healthy")
    shown = text(progress.render())
    assert "apply book.yml" in shown and "1 done, 1 working" in shown and "healthy=1" in shown
    assert "web2" in shown and "config: nginx_reload" in shown


def test_a_live_display_on_a_terminal_is_cleared_at_the_end():
    stream = Tty()
    with LiveProgress("check book.yml", stream=stream) as progress:
        progress.event("web1", "connecting")
        progress.event("web1", "failed")
    assert "check book.yml" in stream.getvalue()


def test_the_summary_table_lists_hosts_worst_first_without_markup():
    ok = CheckOutcome("http", "passed", "200")
    report = RunReport(
        "book",
        "apply",
        [
            HostReport("web1", "healthy", steps=[StepReport("s", ok)], duration=1.0),
            HostReport("web2", "failed", reason="still failing: [bold]s[/]", duration=2.0),
        ],
    )
    out = io.StringIO()
    print_summary(report, stream=out)
    lines = out.getvalue().splitlines()
    rows = [ln for ln in lines if "web" in ln]
    assert "web2" in rows[0] and "web1" in rows[1]
    assert "[bold]s[/]" in out.getvalue()  # printed as text, not read as markup
