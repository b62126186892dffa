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

_REPORT = re.compile(r"^opsfix-http (.*)$", re.MULTILINE)
_NO_ANSWER = {"curl": {7, 28, 35, 52, 56, 60}, "wget": {4, 5}}  # refused, timeout, TLS, reset
_WRITE_OUT = r"opsfix-http client=curl status=%{http_code} size=%{size_download}\n"
_CURL_WRITE_ERROR = 23  # head has the bytes it keeps and closed the pipe: the body is cut
# curl (-q: no ~/.curlrc) writes the body straight into `head` (fd 3), its report to stderr.
# wget cannot report the status apart from its log, so it keeps the body in a file.
_SCRIPT = r"""if command -v curl >/dev/null 2>&1; then
  {{ {curl} 3>&1 >&2; echo "opsfix-http exit=$?" >&2; }} | head -c {max}
elif command -v wget >/dev/null 2>&1; then
  f=$(mktemp) || exit 1
  s=$({wget} -O "$f" 2>&1); r=$?
  printf '%s\n' "$s" | grep -v '^  ' >&2
  s=$(printf '%s\n' "$s" | sed -n 's/^  HTTP\/[0-9.]* \([0-9]*\).*/\1/p' | tail -n 1)
  echo "opsfix-http client=wget status=${{s:-000}} size=$(wc -c <"$f")" >&2
  echo "opsfix-http exit=$r" >&2; head -c {max} "$f"; rm -f "$f"
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
    Params = HttpParams

    @property
    def url(self) -> str:
        path = self.params.path
        return f"{self.params.url.rstrip('/')}/{path.lstrip('/')}" if path else self.params.url

    def commands(self) -> list[str]:
        p, t = self.params, f"{self.params.timeout:g}"
        curl = [
            "curl",
            "-q",
            "-sS",
            "-g",
            "--noproxy",
            "*",
            "-m",
            t,
            "-o",
            "/dev/fd/3",
            "-w",
            _WRITE_OUT,
        ]
        wget = ["wget", "-nv", "-S", "-t", "1", "-T", t, "--max-redirect=0", "--no-proxy"]
        wget.append("--content-on-error")  # keep a 404's body too
        if p.host_header:
            curl += ["-H", f"Host: {p.host_header}"]
            wget += ["--header", f"Host: {p.host_header}"]
        curl_line, wget_line = cmd(*curl, self.url), cmd(*wget, self.url)
        return [_SCRIPT.format(curl=curl_line, wget=wget_line, max=p.max_body)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        result, p = results[0], self.params
        report = dict(
            field.partition("=")[::2]
            for line in _REPORT.findall(result.stderr)
            for field in line.split()
        )
        error = _REPORT.sub("", result.stderr).strip()
        client, code, status = (
            report.get("client"),
            report.get("exit", ""),
            report.get("status", ""),
        )
        if client not in _NO_ANSWER or not code.isdigit() or not status.isdigit():
            return CheckResult.error(error[-300:] or "no answer from the HTTP client", url=self.url)
        body, truncated = result.stdout, client == "curl" and int(code) == _CURL_WRITE_ERROR
        if truncated:  # not an error: only the first max_body bytes were wanted
            error = "\n".join(line for line in error.splitlines() if "(23)" not in line).strip()
        error = error[-300:]
        if int(status) == 0:
            no_answer = int(code) in _NO_ANSWER[client] and "resolve" not in error
            verdict = CheckResult.failed if no_answer else CheckResult.error
            return verdict(f"no HTTP answer from {self.url}", url=self.url, error=error)
        facts: dict[str, object] = {"url": self.url, "status": int(status), "expected": p.status}
        facts["size"] = int(report.get("size", "0") or 0)
        if truncated:
            facts["truncated"] = True  # size: what came before the rest was let go
        facts["body"] = "".join(c if c.isprintable() or c in "\n\t" else "." for c in body[:200])
        if int(status) != p.status:
            return CheckResult.failed(f"{self.url} answered {status}, not {p.status}", **facts)
        if p.contains is not None and p.contains not in body:
            return CheckResult.failed(f"body lacks {p.contains!r}", **facts)
        if p.regex is not None and not p.regex.search(body):
            return CheckResult.failed(f"body does not match {p.regex.pattern!r}", **facts)
        return CheckResult.passed(f"{self.url} answered {status}", url=self.url, status=int(status))
