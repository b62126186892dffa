"""Healthy when a request made on the host with a unique marker (a fresh random token in
its query string and user agent) shows up in the access log, with the expected status.

This is the on-call trace: "I sent this request; did the server see it, and what did it
answer?" A request nobody answers fails; an answered request that is not in the log (the
log is off, elsewhere, or deleted while nginx still writes to it) fails. Only the part of
the log written after the request is read, so a huge log costs nothing. Where the log file
does not exist but journald runs, the server logs to the journal (`access_log syslog:`):
the marker is looked for in the syslog entries of `journal_process` since the request.
`source: journal` looks there even where the file exists; `source: file` never does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

_SCRIPT = r"""m=opsfix-trace-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n') || exit 1
log={log} size=; echo "marker=$m"
if {use_file} [ -f "$log" ]; then size=$(wc -c <"$log") || exit 1
elif {use_journal} command -v journalctl >/dev/null 2>&1 && [ -d /run/systemd/journal ]; then
  echo source=journal; since=$(date +%s) || exit 1
else echo log=missing; exit 0; fi
new() {{ if [ -n "$size" ]; then tail -c "+$((size + 1))" "$log"
  else journalctl -q --no-pager -o cat --since="@$((since - 1))" {tag}; fi; }}
u={url}"$m"
if command -v curl >/dev/null 2>&1; then s=$({curl} -A "$m" "$u"); r=$? c=curl
elif command -v wget >/dev/null 2>&1; then {wget} -U "$m" "$u"; r=$? c=wget s=
else echo 'no HTTP client on the host (curl or wget)' >&2; exit 127; fi
echo "client=$c exit=$r status=${{s:-000}}"; n=0
until found=$(new | grep -F -m 3 -e "$m") || [ $n -ge {tries} ]
do sleep 0.1; n=$((n + 1)); done
[ -z "$found" ] || printf '%s\n' "$found" | sed 's/^/line=/'
"""
_ANSWER = re.compile(r"client=(\w+) exit=(\d+) status=(\d{3})")
_LOGGED = re.compile(r'"[A-Z]+ \S+[^"]*" (\d{3}) ')  # "GET /path HTTP/1.1" 200 (combined format)


class RequestTraceParams(Params):
    url: str = Field("http://127.0.0.1/", pattern=r"^https?://", description="URL on the host")
    path: str | None = Field(None, description="joined onto url, e.g. /app/settings")
    access_log: str = Field("/var/log/nginx/access.log", description="the log to find it in")
    status: int = Field(200, ge=100, le=599, description="the status the log must show")
    timeout: float = Field(5.0, gt=0, le=60, description="the request, in seconds")
    wait: float = Field(2.0, ge=0, le=30, description="seconds to wait for a buffered log line")
    journal_process: str = Field(
        "nginx", pattern=r"^[A-Za-z0-9_.@-]{1,15}$", description="process name of its syslog lines"
    )
    source: Literal["auto", "file", "journal"] = Field(
        "auto", description="auto: the file where it exists, else the journal where journald runs"
    )


class RequestTrace(Check[RequestTraceParams]):
    @property
    def url(self) -> str:
        path = self.params.path
        return f"{self.params.url.rstrip('/')}/{path.lstrip('/')}" if path else self.params.url

    def commands(self) -> list[str]:
        t = f"{self.params.timeout:g}"
        curl = cmd(
            "curl", "-sS", "-g", "--noproxy", "*", "-m", t, "-o", "/dev/null", "-w", "%{http_code}"
        )
        wget = cmd(
            "wget", "-q", "-O", "/dev/null", "-t", "1", "-T", t, "--no-proxy", "--max-redirect=0"
        )
        marked = self.url + ("&" if "?" in self.url else "?") + "opsfix_trace="
        tries = int(self.params.wait * 10)
        log = quote(self.params.access_log)
        tag = shlex.join([f"_COMM={self.params.journal_process}", "_TRANSPORT=syslog"])
        use_file = "false &&" if self.params.source == "journal" else ""
        use_journal = "false &&" if self.params.source == "file" else ""
        script = _SCRIPT.format(
            log=log, url=quote(marked), tries=tries, curl=curl, wget=wget, tag=tag,
            use_file=use_file, use_journal=use_journal,
        )  # fmt: skip
        return [script]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        result = results[0]
        out = dict(line.partition("=")[::2] for line in result.stdout.splitlines() if "=" in line)
        journal = out.get("source") == "journal"
        log = f"the journal ({self.params.journal_process})" if journal else self.params.access_log
        lines = [line[5:] for line in result.stdout.splitlines() if line.startswith("line=")]
        error = result.stderr.strip()[-300:]
        if "marker" not in out or result.exit_status != 0:
            return CheckResult.error(error or "the trace script failed", url=self.url)
        facts = {"url": self.url, "marker": out["marker"], "access_log": log}
        if out.get("log") == "missing":
            return CheckResult.failed(f"{log} does not exist", **facts)
        answer = _ANSWER.search(result.stdout)
        if answer is None:
            return CheckResult.error(error or "no answer from the HTTP client", **facts)
        if not lines:
            client, code, status = answer[1], answer[2], answer[3]
            if status == "000" and code != "0" and (client, code) != ("wget", "8"):
                return CheckResult.failed(f"no HTTP answer from {self.url}", error=error, **facts)
            answered = "answered" if status == "000" else f"answered {status}"
            return CheckResult.failed(f"request {answered} but not in {log}", **facts)
        logged = _LOGGED.search(lines[0])
        status = int(logged[1]) if logged else int(answer[3])
        if status != self.params.status:
            summary = f"{log} shows {status}, not {self.params.status}"
            return CheckResult.failed(
                summary, **{**facts, "status": status, "line": lines[0][:300]}
            )
        trace = {**facts, "status": status, "line": lines[0][:300]}
        return CheckResult.passed(f"request traced in {log} ({status})", **trace)
