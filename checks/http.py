"""Healthy when a request made on the host itself (so it tests nginx, not the network) gets
the expected status and, when asked, a body holding `contains` and matching `regex`. curl,
else wget; no proxy, no redirects. Only the first `max_body` bytes come back to be matched.
No answer (refused, timed out) fails; a request that cannot be made (no client) is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_REPORT = re.compile(r"^opsfix-http (.*)\n?", re.MULTILINE)
_STATUS = re.compile(r"^  HTTP/\S+ (\d{3})", re.MULTILINE)  # wget -S: the answer's headers
_LENGTH = re.compile(r"^  Content-Length: (\d+)", re.MULTILINE | re.IGNORECASE)
# refused, timed out (124: `timeout` ended wget), TLS, reset
_NO_ANSWER = {"curl": {7, 28, 35, 52, 56, 60}, "wget": {4, 5, 124}}
_WRITE_OUT = r"opsfix-http status=%{http_code} size=%{size_download}\n"
# `head` has the bytes it keeps and closed the pipe: the body is cut, which is no error
# (each client's write error; wget killed by SIGPIPE, should it not ignore it)
_CUT = {"curl": {23}, "wget": {3, 128 + 13}}
_CUT_NOTE = re.compile(r"\(23\) Failure writing|Cannot write to .*Broken pipe")
# Each client writes the body straight into `head`, its report to stderr: two processes
# (three with `timeout`, which bounds wget's whole request as -m bounds curl's).
_SCRIPT = r"""if command -v curl >/dev/null 2>&1; then
  echo 'opsfix-http client=curl' >&2
  {{ {curl} 3>&1 >&2; echo "opsfix-http exit=$?" >&2; }} | head -c {max}
elif command -v wget >/dev/null 2>&1; then
  t=; command -v timeout >/dev/null 2>&1 && t='timeout -k 1 {timeout}'
  echo 'opsfix-http client=wget' >&2
  {{ $t {wget}; echo "opsfix-http exit=$?" >&2; }} | head -c {max}
else
  echo 'no HTTP client on the host (curl or wget)' >&2; exit 127
fi
"""


class HttpParams(Params):
    url: str = Field("http://127.0.0.1/", pattern=r"^https?://", description="URL on the host")
    path: str | None = Field(None, description="joined onto url, e.g. /shop/cart (a deep link)")
    status: int = Field(200, ge=100, le=599, description="expected HTTP status")
    contains: str | None = Field(None, description="text the body must hold")
    regex: re.Pattern[str] | None = Field(None, description="Python regex to find in the body")
    host_header: str | None = Field(None, description="Host header, for name-based servers")
    timeout: float = Field(5.0, gt=0, le=300, description="whole request, in seconds")
    max_body: int = Field(4096, ge=1, le=1 << 20, description="body bytes kept and matched")


class Http(Check[HttpParams]):
    @property
    def url(self) -> str:
        path = self.params.path
        return f"{self.params.url.rstrip('/')}/{path.lstrip('/')}" if path else self.params.url

    def commands(self) -> list[str]:
        p, t = self.params, f"{self.params.timeout:g}"
        curl = ["curl", "-q", "-sS", "-g", "--noproxy", "*", "-m", t]  # -q: no ~/.curlrc
        curl += ["-o", "/dev/fd/3", "-w", _WRITE_OUT]
        wget = ["wget", "-nv", "-S", "-t", "1", "-T", t, "--max-redirect=0", "--no-proxy"]
        wget += ["--content-on-error", "-O", "-"]  # keep a 404's body too
        if p.host_header:
            curl += ["-H", f"Host: {p.host_header}"]
            wget += ["--header", f"Host: {p.host_header}"]
        curl_line, wget_line = cmd(*curl, self.url), cmd(*wget, self.url)
        script = _SCRIPT.format(curl=curl_line, wget=wget_line, max=p.max_body, timeout=t)
        return [script]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        result, p = results[0], self.params
        report = dict(
            field.partition("=")[::2]
            for line in _REPORT.findall(result.stderr)
            for field in line.split()
        )
        log = _REPORT.sub("", result.stderr)
        client, code = report.get("client", ""), report.get("exit", "")
        if client not in _NO_ANSWER or not code.isdigit():
            return CheckResult.error(
                log.strip()[-300:] or "no answer from the HTTP client", url=self.url
            )
        status, size = _status_and_size(client, report, log, result.stdout)
        cut = int(code) in _CUT[client]
        lines = [x for x in log.splitlines() if not x.startswith("  ") and x.strip()]
        if cut:
            lines = [x for x in lines if not _CUT_NOTE.search(x)]
        error = "\n".join(lines)[-300:]
        if status == 0:
            no_answer = int(code) in _NO_ANSWER[client] and "resolv" not in error
            verdict = CheckResult.failed if no_answer else CheckResult.error
            return verdict(f"no HTTP answer from {self.url}", url=self.url, error=error)
        facts: dict[str, object] = {"url": self.url, "status": status, "expected": p.status}
        facts["size"] = size
        if cut:
            facts["truncated"] = True
        body = result.stdout
        if status != p.status:
            why = f"{self.url} answered {status}, not {p.status}"
        elif p.contains is not None and p.contains not in body:
            why = f"body lacks {p.contains!r}"
        elif p.regex is not None and not p.regex.search(body):
            why = f"body does not match {p.regex.pattern!r}"
        else:
            return CheckResult.passed(f"{self.url} answered {status}", url=self.url, status=status)
        facts["body"] = "".join(c if c.isprintable() or c in "\n\t" else "." for c in body[:200])
        return CheckResult.failed(why, **facts)


def _status_and_size(client: str, report: dict[str, str], log: str, body: str) -> tuple[int, int]:
    """The status (0: no answer) and the body's size as the server gave it."""
    if client == "curl":
        status, size = report.get("status", ""), report.get("size", "")
        return (int(status) if status.isdigit() else 0), (int(size) if size.isdigit() else 0)
    statuses = _STATUS.findall(log)
    lengths = _LENGTH.findall(log)
    size = int(lengths[-1]) if lengths else len(body.encode())
    return (int(statuses[-1]) if statuses else 0), size
