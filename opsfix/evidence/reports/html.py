"""An operation log (opsfix.evidence.reports.oplog) as one self-contained HTML page.

No script, no external stylesheet, font or image: the page opens the same from a ticket
attachment years later. Every piece of text is escaped; text from hosts sits in <pre>.
"""

from __future__ import annotations

import re
from html import escape

from opsfix.escape import printable
from opsfix.evidence.reports.oplog import OperationLog, evidence_lines
from opsfix.evidence.results import CheckOutcome, HostReport, RemediationOutcome, StepReport

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .6rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-all; font-size: 13px; }
.passed, .healthy, .repaired, .applied { color: #116329; }
.failed, .error, .unreachable, .refused, .rolled_back { color: #b3261e; font-weight: 600; }
.deferred, .partial, .not_attempted { color: #8a5300; font-weight: 600; }
.meta { color: #57606a; } code { font-size: 13px; }
"""


def render(log: OperationLog) -> str:
    """The log as one HTML page, every control character a host printed shown escaped."""
    return printable(_render(log))


def _render(log: OperationLog) -> str:
    facts = [
        ("Date/Time", escape(log.date_time)),
        ("Operation", _inline(log.operation)),
        ("Reason", escape(log.reason)),
        ("Impact", _lines(log.impact)),
        ("Duration", escape(log.duration)),
        ("Issues", _lines(log.issues)),
        ("Follow-up", "<br>".join(_inline(x) for x in log.follow_up)),
        ("Evidence bundle", f"sha256 <code>{escape(log.bundle_sha256)}</code>"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Operation log: {escape(log.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Operation log: {escape(log.title)}</h1>",
        f'<p class="meta">Run <code>{escape(log.run_id)}</code> · exit code '
        f"{log.exit_code} · recorded by opsfix</p>",
        "<table>",
        *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts),
        "</table>",
        "<h2>Broken vs recovered, per host</h2>",
        *(_host(h) for h in log.hosts),
    ]
    if log.quiet_hosts:
        parts.append(f"<p>Healthy, nothing done: {escape(', '.join(log.quiet_hosts))}.</p>")
    parts += [
        "<h2>Checking this report</h2>",
        "<p>The evidence bundle is the run as opsfix recorded it (canonical JSON, secrets "
        "masked). To check it:</p>",
        _pre(
            f"opsfix report {log.run_id} --verify-hash {log.bundle_sha256}\n"
            f"opsfix report {log.run_id} --format bundle -o {log.run_id}.json\n"
            f"sha256sum {log.run_id}.json"
        ),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _host(host: HostReport) -> str:
    parts = [
        f'<h3>{escape(host.host)}: <span class="{_cls(host.status)}">{escape(host.status)}'
        f"</span> ({host.duration:.1f} s)</h3>"
    ]
    if host.reason and host.status != "healthy":
        parts.append(f"<p>{escape(host.reason)}</p>")
    if host.steps:
        parts.append("<table><tr><th>check</th><th>before</th><th>after</th></tr>")
        for step in host.steps:
            after = step.after or step.before
            parts.append(
                f"<tr><td>{escape(step.name)}</td><td>{_verdict(step.before)}</td>"
                f"<td>{_verdict(after)}</td></tr>"
            )
        parts.append("</table>")
    parts += [_step(s) for s in host.steps if not s.before.ok or s.remediations]
    if host.verify:
        passed = sum(1 for v in host.verify if v.outcome == "passed")
        parts.append(f"<p><b>Verify</b>: {passed}/{len(host.verify)} passed</p><ul>")
        for v in host.verify:
            detail = _pre(v.message.strip()[-3000:]) if v.outcome in ("failed", "error") else ""
            parts.append(
                f'<li><span class="{_cls(v.outcome)}">{escape(v.outcome)}</span> '
                f"{escape(v.test)}{detail}</li>"
            )
        parts.append("</ul>")
    return "\n".join(parts)


def _step(step: StepReport) -> str:
    after = step.after or step.before
    parts = [
        f"<h4>{escape(step.name)}: {_status(step.before.status)} → {_status(after.status)}</h4>",
        f"<p>{'Before (broken)' if not step.before.ok else 'Before'}:</p>",
        _pre(_outcome_text(step.before)),
    ]
    if step.remediations:
        parts.append("<ol>" + "".join(_remediation(r) for r in step.remediations) + "</ol>")
    if after is not step.before:
        parts.append(f"<p>{'After (recovered)' if after.ok else 'After (still failing)'}:</p>")
        parts.append(_pre(_outcome_text(after)))
    return "\n".join(parts)


def _remediation(rem: RemediationOutcome) -> str:
    parts = [f"<li><b>{escape(rem.remediation)}</b>: {_status(rem.status)}"]
    if rem.reason:
        parts.append(_pre(rem.reason))
    if rem.backup_path:
        parts.append(f"<p>Backup: <code>{escape(rem.backup_path)}</code></p>")
    for title, text in (
        ("Commands", "\n".join(rem.commands)),
        ("Validation output", rem.validate_output),
        ("Diff", rem.diff),
    ):
        if text.strip():
            parts.append(f"<details><summary>{title}</summary>{_pre(text.rstrip())}</details>")
    return "".join(parts) + "</li>"


def _outcome_text(outcome: CheckOutcome) -> str:
    return "\n".join([f"{outcome.status}: {outcome.summary}", *evidence_lines(outcome.evidence)])


def _verdict(outcome: CheckOutcome) -> str:
    return f"{_status(outcome.status)} {escape(outcome.summary)}"


def _status(status: str) -> str:
    return f'<span class="{_cls(status)}">{escape(status.replace("_", " "))}</span>'


def _cls(status: str) -> str:
    return status if status.replace("_", "").isalpha() else ""


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _lines(items: list[str]) -> str:
    return "<br>".join(escape(x) for x in items)


def _inline(text: str) -> str:
    """Escaped text; `code spans` (opsfix writes them around commands) become <code>."""
    parts = re.split(r"`([^`]+)`", text)
    return "".join(
        f"<code>{escape(printable(p, one_line=True))}</code>" if i % 2 else escape(p)
        for i, p in enumerate(parts)
    )
