"""Healthy while the web server's logs show few errors over the last `minutes`.

Two measures, both over the last `minutes` (to the minute, by the host's clock):
- the share of 5xx answers in the access log (combined or common format), judged once
  there are `min_requests` requests, so three requests and one error is not an outage;
- new lines in the error log at `levels` (by default error and worse, not warn/notice).
Only the last `max_scan_mib` of each log is read, on the host: logs never travel whole.
Where a log file does not exist but journald runs, the server logs to the journal (nginx's
`access_log syslog:` and `error_log syslog:`): the syslog entries of its processes
(`journal_process`) are read instead, access lines at syslog's info, error lines at `levels`.
`source: journal` reads the journal even where a file exists (nginx creates its built-in
error log at start even when its config logs to syslog), `source: file` never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

Level = Literal["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]
PRIORITY = dict(
    zip(
        ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"),
        range(8),
        strict=True,
    )
)
ACCESS_PRIORITY = 6  # nginx's access_log syslog: severity defaults to info
JOURNALD_RUNS = "command -v journalctl >/dev/null 2>&1 && [ -d /run/systemd/journal ]"

# The minute stamps of the window, one per line, in the form each log writes them.
_STAMPS = (
    "now=$(date +%s) || exit 3\n"
    "s=$(i=0; while [ $i -le {minutes} ]; do echo @$((now - i * 60)); i=$((i + 1)); done"
    " | LC_ALL=C date -f - {format}) || exit 3\n"
)
_COUNT_5XX = (
    "awk -F'\"' '{ split($3, f, \" \"); n++; if (f[1] ~ /^5[0-9][0-9]$/) e++ }"
    ' END { print "requests", n + 0, e + 0 }\''
)
_COUNT_REQUESTS = (  # the journal's nginx entries hold other lines too (its stderr at start)
    "awk -F'\"' 'NF >= 3 { split($3, f, \" \"); if (f[1] !~ /^[0-9][0-9][0-9]$/) next; n++;"
    ' if (f[1] ~ /^5[0-9][0-9]$/) e++ } END { print "requests", n + 0, e + 0 }\''
)
_COUNT_LINES = (
    'awk \'{ n++; last[n % 3] = $0 } END { print "lines", n + 0;'
    " for (i = n - 2; i <= n; i++) if (i > 0) print last[i % 3] }'"
)


class LogErrorsParams(Params):
    access_log: str | None = Field("/var/log/nginx/access.log", description="None: not judged")
    error_log: str | None = Field("/var/log/nginx/error.log", description="None: not judged")
    minutes: int = Field(60, ge=1, le=1440, description="the window, in minutes")
    max_5xx_percent: float = Field(1.0, ge=0, le=100, description="fail above this share")
    min_requests: int = Field(20, ge=1, description="requests needed to judge the 5xx share")
    max_error_lines: int = Field(10, ge=0, description="fail above this many error-log lines")
    levels: list[Level] = Field(
        ["error", "crit", "alert", "emerg"], min_length=1, description="error-log levels counted"
    )
    max_scan_mib: int = Field(64, ge=1, le=4096, description="read at most this much of a log")
    journal_process: str = Field(
        "nginx", pattern=r"^[A-Za-z0-9_.@-]{1,15}$", description="process name of its syslog lines"
    )
    source: Literal["auto", "file", "journal"] = Field(
        "auto", description="auto: the file where it exists, else the journal where journald runs"
    )

    @model_validator(mode="after")
    def _some_log(self) -> LogErrorsParams:
        if not self.access_log and not self.error_log:
            raise ValueError("access_log and error_log are both off: nothing to judge")
        return self


class LogErrors(Check[LogErrorsParams]):
    def commands(self) -> list[str]:
        p = self.params
        commands = []
        if p.access_log:
            stamp, priorities = "+[%d/%b/%Y:%H:%M:", [ACCESS_PRIORITY]
            commands.append(
                self._scan(p.access_log, stamp, _COUNT_5XX, _COUNT_REQUESTS, priorities)
            )
        if p.error_log:
            levels = "|".join(p.levels)
            level_filter = f"grep -E {quote(f' [[]({levels})[]] ')} | {_COUNT_LINES}"
            priorities = sorted(PRIORITY[level] for level in p.levels)
            commands.append(
                self._scan(p.error_log, "+%Y/%m/%d %H:%M:", level_filter, _COUNT_LINES, priorities)
            )
        return commands

    def _scan(self, log: str, stamp: str, count: str, counted: str, priorities: list[int]) -> str:
        """The file's lines of the window, else the journal's (already filtered by level)."""
        f, limit = quote(log), self.params.max_scan_mib * 1024 * 1024
        stamps = _STAMPS.format(minutes=self.params.minutes, format=quote(stamp))
        read = f'tail -c {limit} {f} | grep -F -e "$s" | {count}'
        matches = " ".join(f"PRIORITY={n}" for n in priorities)
        journal = cmd(
            "journalctl", "-q", "--no-pager", "-o", "cat", f"--since=-{self.params.minutes}min",
            f"_COMM={self.params.journal_process}", "_TRANSPORT=syslog",
        )  # fmt: skip
        from_journal = f"{journal} {matches} | tail -c {limit} | {counted}; echo source=journal"
        source = self.params.source
        use_file = "false" if source == "journal" else f"[ -r {f} ]"
        use_journal = "false" if source == "file" else JOURNALD_RUNS
        return (
            f"if {use_file}; then\n{stamps}{read}\n"
            f"elif {use_journal}; then {from_journal}\n"
            f"else echo {f}: cannot read >&2; exit 2; fi"
        )

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        p = self.params
        facts: dict[str, Any] = {"minutes": p.minutes}
        problems: list[str] = []
        for r in results:
            if not r.ok or not r.stdout.startswith(("requests", "lines")):
                return CheckResult.error("cannot read the logs", stderr=r.stderr.strip()[-300:])
        if any("source=journal" in r.stdout.splitlines() for r in results):
            facts["source"] = f"journal ({p.journal_process})"
        found = iter(results)
        if p.access_log:
            _, requests, errors = next(found).stdout.split()[:3]
            share = round(100 * int(errors) / int(requests), 2) if int(requests) else 0.0
            facts.update(requests=int(requests), errors_5xx=int(errors), percent_5xx=share)
            if int(requests) >= p.min_requests and share > p.max_5xx_percent:
                problems.append(f"{share:g}% of {requests} requests failed (5xx)")
        if p.error_log:
            head, *last = [s for s in next(found).stdout.splitlines() if s != "source=journal"]
            facts["error_lines"] = int(head.split()[1])
            if last:
                facts["last_errors"] = [line[:200] for line in last]
            if facts["error_lines"] > p.max_error_lines:
                problems.append(f"{facts['error_lines']} error-log lines")
        if problems:
            return CheckResult.failed(f"last {p.minutes} min: " + "; ".join(problems), **facts)
        seen = [f"{facts['requests']} requests, {facts['errors_5xx']} 5xx"] if p.access_log else []
        seen += [f"{facts['error_lines']} error-log lines"] if p.error_log else []
        return CheckResult.passed(f"last {p.minutes} min: " + ", ".join(seen), **facts)
