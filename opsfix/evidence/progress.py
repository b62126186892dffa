"""What a person sees on a terminal while a run works, and the summary table after it.

Live progress is one line per host being worked on (what it is doing, for how long) and
the hosts finished so far, redrawn in place on stderr and cleared at the end. It is shown
only on a terminal: when stdout or stderr is not one (a pipe, a file, a test), when `CI`
is set, or when `TERM=dumb`, nothing is drawn and the output stays plain. rich is
imported only when something is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from opsfix.escape import printable
from opsfix.evidence.results import RunReport

STYLE = {
    "healthy": "green",
    "repaired": "cyan",
    "failed": "bold red",
    "unreachable": "magenta",
    "deferred": "yellow",
    "not_attempted": "dim",
}
_RANK = {
    "failed": 0,
    "unreachable": 1,
    "deferred": 2,
    "not_attempted": 3,
    "repaired": 4,
    "healthy": 5,
}  # worst first
_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def is_interactive(*streams: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """A person watches: every stream is a terminal, not in CI, not a dumb terminal."""
    env = os.environ if env is None else env
    if env.get("CI") or env.get("TERM") == "dumb":
        return False
    return all(_isatty(s) for s in streams)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LiveProgress:
    """Per-host status lines, redrawn on stderr. `event` is the engine's on_event hook."""

    def __init__(self, title: str, stream: IO[str] | None = None) -> None:
        self.title = title
        self.stream = stream
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._working: dict[str, tuple[str, float]] = {}  # host -> (doing, since)
        self._done: dict[str, str] = {}  # host -> final status, in finishing order
        self._live: Any = None

    def __enter__(self) -> LiveProgress:
        from rich.console import Console
        from rich.live import Live

        # the stream of this moment: verify's pytest redirects sys.stderr while hosts run
        console = Console(file=self.stream if self.stream is not None else sys.stderr)
        self._live = Live(
            get_renderable=self.render,
            console=console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.stop()

    def event(self, host: str, text: str) -> None:
        host, text = printable(host, one_line=True), printable(text, one_line=True)
        with self._lock:
            if text in STYLE:
                self._working.pop(host, None)
                self._done[host] = text
            else:
                since = self._working.get(host, (text, time.monotonic()))[1]
                self._working[host] = (text, since)

    def render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            working, done = dict(self._working), dict(self._done)
        spin = _SPIN[int(now * 8) % len(_SPIN)]
        counts = "  ".join(f"{s}={n}" for s, n in _counts(done).items())
        head = Text.assemble(
            (f"{spin} {self.title}", "bold"),
            f"  {len(done)} done, {len(working)} working  {counts}  ({now - self._started:.0f}s)",
        )
        table = Table.grid(padding=(0, 2))
        rows = self._visible(len(working), len(done))
        for host, (doing, since) in sorted(working.items())[: rows[0]]:
            table.add_row(Text(host, "bold"), Text(doing), Text(f"{now - since:.0f}s", "dim"))
        for host, status in list(done.items())[::-1][: rows[1]]:
            table.add_row(Text(host), Text(status, STYLE.get(status, "")), Text(""))
        hidden = len(working) + len(done) - sum(rows)
        grid = Table.grid()
        grid.add_row(head)
        grid.add_row(table)
        if hidden > 0:
            grid.add_row(Text(f"... and {hidden} more host(s)", "dim"))
        return grid

    def _visible(self, working: int, done: int) -> tuple[int, int]:
        """How many working and finished hosts fit on the screen, working ones first."""
        height = self._live.console.height if self._live is not None else 24
        room = max(3, height - 4)
        shown_working = min(working, room)
        return shown_working, min(done, room - shown_working)


def _counts(done: Mapping[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in done.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def print_summary(report: RunReport, stream: IO[str] | None = None) -> None:
    """The run's hosts as a coloured table, worst first. `report` must be masked."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{report.mode} {report.playbook}", title_justify="left")
    for column in ("host", "status", "checks ok", "repairs", "took", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for host in sorted(report.hosts, key=lambda h: (_RANK.get(h.status, 0), h.host)):
        ok = sum(1 for s in host.steps if (s.after or s.before).ok)
        repairs = ", ".join(
            f"{r.remediation} {r.status.replace('_', ' ')}"
            for s in host.steps
            for r in s.remediations
        )
        table.add_row(
            Text(printable(host.host, one_line=True)),
            Text(host.status, STYLE.get(host.status, "")),
            Text(f"{ok}/{len(host.steps)}" if host.steps else "-"),
            Text(printable(repairs, one_line=True) or "-"),
            Text(f"{host.duration:.1f}s"),
            Text(printable(host.reason) if host.status != "healthy" else ""),
        )
    Console(file=stream, highlight=False).print(table)
