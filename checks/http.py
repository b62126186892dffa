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

_HEADER = re.compile(r"client=(\w+) exit=(\d+) status=(\d{3}) size=(\d+)$")
_NO_ANSWER = {"curl": {7, 28, 35, 52, 56, 60}, "wget": {4, 5}}  # refused, timeout, TLS, reset
_SCRIPT = r"""f=$(mktemp) || exit 1
if command -v curl >/dev/null 2>&1; then
  s=$({curl} -o "$f"); r=$? c=curl
elif command -v wget >/dev/null 2>&1; then
  s=$({wget} -O "$f" 2>&1); r=$? c=wget
  printf '%s\n' "$s" | grep -v '^  ' >&2
  s=$(printf '%s\n' "$s" | sed -n 's/^  HTTP\/[0-9.]* \([0-9]*\).*/\1/p' | tail -n 1)
else
  rm -f "$f"; echo 'no HTTP client on the host (curl or wget)' >&2; exit 127
fi
echo "client=$c exit=$r status=${{s:-000}} size=$(wc -c <"$f")"; head -c {max} "$f"; rm -f "$f"
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
        curl = ["curl", "-sS", "-g", "--noproxy", "*", "-m", t, "-w", "%{http_code}"]
        wget = ["wget", "-nv", "-S", "-t", "1", "-T", t, "--max-redirect=0", "--no-proxy"]
        wget.append("--content-on-error")  # keep a 404's body too
        if p.host_header:
            curl += ["-H", f"Host: {p.host_header}"]
            wget += ["--header", f"Host: {p.host_header}"]
        curl_line, wget_line = cmd(*curl, self.url), cmd(*wget, self.url)
        return [_SCRIPT.format(curl=curl_line, wget=wget_line, max=p.max_body)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        result, p = results[0], self.params
        header, _, body = result.stdout.partition("\n")
        found = _HEADER.match(header)
        error = result.stderr.strip()[-300:]
        if not found:
            return CheckResult.error(error or "no answer from the HTTP client", url=self.url)
        client, code, status, size = found[1], int(found[2]), int(found[3]), int(found[4])
        if status == 0:
            no_answer = code in _NO_ANSWER[client] and "resolve" not in error
            verdict = CheckResult.failed if no_answer else CheckResult.error
            return verdict(f"no HTTP answer from {self.url}", url=self.url, error=error)
        if client == "curl" and code == 23:  # could not write the body (say, /tmp is full)
            return CheckResult.error("could not keep the answer's body on the host", error=error)
        facts = {"url": self.url, "status": status, "expected": p.status, "size": size}
        facts["body"] = "".join(c if c.isprintable() or c in "\n\t" else "." for c in body[:200])
        if status != p.status:
            return CheckResult.failed(f"{self.url} answered {status}, not {p.status}", **facts)
        if p.contains is not None and p.contains not in body:
            return CheckResult.failed(f"body lacks {p.contains!r}", **facts)
        if p.regex is not None and not p.regex.search(body):
            return CheckResult.failed(f"body does not match {p.regex.pattern!r}", **facts)
        return CheckResult.passed(f"{self.url} answered {status}", url=self.url, status=status)
