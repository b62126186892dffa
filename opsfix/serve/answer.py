"""Answering back: an Alertmanager silence while a host is repaired, and a summary of
each run posted to notification webhooks (Slack-compatible or generic JSON).

Both are best effort with short timeouts: a run never waits long for them and never
fails because of them; what went wrong is logged. A silence expires by itself
(`silence_for`) even if opsfix never gets to end it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from opsfix.evidence.results import HostReport
from opsfix.serve.dispatch import Emit, HostResult, Work
from opsfix.serve.rules import Rule, Rules, parse_span

__all__ = ["Answers", "summary"]

TIMEOUT = 3.0
USER_AGENT = "opsfix-serve"


class Answers:
    def __init__(self, rules: Rules, emit: Emit, timeout: float = TIMEOUT) -> None:
        self.rules, self.emit, self.timeout = rules, emit, timeout

    # -- silences -------------------------------------------------------------------

    def silence(self, rule: Rule, works: list[Work]) -> list[str]:
        """One silence per alert (all its labels, equality), for runs that change hosts."""
        am = self.rules.alertmanager
        if am is None or not am.silence or rule.mode != "apply":
            return []
        now = datetime.now(UTC)
        ends = now + parse_span(am.silence_for)
        ids = []
        for work in works:
            body = _silence_body(work, now, ends)
            answer = self._send("POST", f"{am.url.rstrip('/')}/api/v2/silences", body, "silence")
            if isinstance(answer, dict) and answer.get("silenceID"):
                ids.append(str(answer["silenceID"]))
                self.emit(
                    "silence_created",
                    id=answer["silenceID"],
                    host=work.host,
                    fingerprint=work.fingerprint,
                )
        return ids

    def unsilence(self, ids: list[str]) -> None:
        am = self.rules.alertmanager
        for silence_id in ids:
            if am is not None:
                url = f"{am.url.rstrip('/')}/api/v2/silence/{silence_id}"
                if self._send("DELETE", url, None, "silence_end") is not None:
                    self.emit("silence_ended", id=silence_id)

    # -- notifications --------------------------------------------------------------

    def notify(self, message: dict[str, Any]) -> None:
        for target in self.rules.notify:
            body = {"text": message["text"]} if target.format == "slack" else message
            if self._send("POST", target.url, body, "notify") is not None:
                self.emit("notified", url=_safe_url(target.url), host=message["host"])

    def _send(self, method: str, url: str, body: Any, what: str) -> Any:
        """The decoded JSON answer ({} when empty), or None after logging the failure."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.emit(f"{what}_failed", url=_safe_url(url), error=str(exc)[:300])
            return None
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return {}


def _silence_body(work: Work, now: datetime, ends: datetime) -> dict[str, Any]:
    matchers = [
        {"name": k, "value": v, "isRegex": False, "isEqual": True}
        for k, v in sorted(work.alert.labels.items())
    ]
    return {
        "matchers": matchers,
        "startsAt": now.isoformat(),
        "endsAt": ends.isoformat(),
        "createdBy": "opsfix serve",
        "comment": f"opsfix is repairing {work.host} (rule {work.rule.name}, "
        f"alert {work.fingerprint}); ends with the run",
    }


def summary(rule: Rule, work: Work, host: HostReport, result: HostResult) -> dict[str, Any]:
    """What a notification says: outcome, host, what was done, the report to read."""
    done = [
        f"{step.name}: {rem.remediation} {rem.status}"
        + (f" ({rem.reason})" if rem.reason and rem.status not in ("applied",) else "")
        for step in host.steps
        for rem in step.remediations
        if rem.status not in ("not_needed", "no_change")
    ]
    command = f"opsfix report {result.run_id}" if result.run_id else "(not recorded)"
    report = result.report or command
    text = (
        f"opsfix: {work.alert.name or 'alert'} on {work.host}: {result.status}"
        + (f" ({result.reason})" if result.reason else "")
        + (f"; done: {'; '.join(done)}" if done else "; nothing changed")
        + (f"; time to repair {result.time_to_repair:.1f}s" if result.time_to_repair else "")
        + f"; rule {rule.name}; {report}"
    )
    return {
        "text": text,
        "outcome": result.status,
        "reason": result.reason,
        "host": work.host,
        "rule": rule.name,
        "mode": rule.mode,
        "playbook": str(rule.playbook),
        "alertname": work.alert.name,
        "fingerprint": work.fingerprint,
        "labels": dict(work.alert.labels),
        "starts_at": work.alert.startsAt.isoformat(),
        "done": done,
        "time_to_repair": result.time_to_repair,
        "run_id": result.run_id,
        "report": report,
        "report_command": command,
    }


def _safe_url(url: str) -> str:
    """The URL for logs: a Slack webhook's path is its secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"
