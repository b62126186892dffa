"""An operation log (opsfix.evidence.reports.oplog) as Markdown, for a ticket, a wiki or a repo.

Text from hosts (evidence, command output, diffs) goes into fenced blocks whose fence is
longer than any run of backticks inside; everything else is escaped, so nothing a host
printed can turn into markup or a link.
"""

from __future__ import annotations

import re

from opsfix.escape import printable
from opsfix.evidence.reports.oplog import OperationLog, evidence_lines
from opsfix.evidence.results import CheckOutcome, HostReport, RemediationOutcome, StepReport

_SPECIAL = re.compile(r"([\\`*\[\]<|~])|(?<!\w)_|_(?!\w)")


def render(log: OperationLog) -> str:
    """The log as Markdown, every control character a host printed shown escaped."""
    return printable(_render(log))


def _render(log: OperationLog) -> str:
    lines = [
        f"# Operation log: {esc(log.title)}",
        "",
        f"Run `{log.run_id}` · exit code {log.exit_code} · recorded by opsfix",
        "",
        "| | |",
        "| --- | --- |",
        f"| **Date/Time** | {esc(log.date_time)} |",
        f"| **Operation** | {_inline(log.operation)} |",
        f"| **Reason** | {esc(log.reason)} |",
        f"| **Impact** | {'<br>'.join(esc(x) for x in log.impact)} |",
        f"| **Duration** | {esc(log.duration)} |",
        f"| **Issues** | {'<br>'.join(esc(x) for x in log.issues)} |",
        f"| **Follow-up** | {'<br>'.join(_inline(x) for x in log.follow_up)} |",
        f"| **Evidence bundle** | sha256 `{log.bundle_sha256}` |",
        "",
        "## Broken vs recovered, per host",
        "",
    ]
    for host in log.hosts:
        lines += _host(host)
    if log.quiet_hosts:
        lines += [f"Healthy, nothing done: {esc(', '.join(log.quiet_hosts))}.", ""]
    if not log.report.hosts:
        lines += ["No host was targeted.", ""]
    lines += _checking(log)
    return "\n".join(lines)


def _host(host: HostReport) -> list[str]:
    lines = [f"### {esc(host.host)}: {host.status} ({host.duration:.1f} s)", ""]
    if host.reason and host.status != "healthy":
        lines += [esc(host.reason), ""]
    if host.steps:
        lines += ["| check | before | after |", "| --- | --- | --- |"]
        for step in host.steps:
            after = step.after or step.before
            lines.append(f"| {esc(step.name)} | {_verdict(step.before)} | {_verdict(after)} |")
        lines.append("")
    for step in host.steps:
        if not step.before.ok or step.remediations:
            lines += _step(step)
    if host.verify:
        passed = sum(1 for v in host.verify if v.outcome == "passed")
        lines += [f"**Verify**: {passed}/{len(host.verify)} passed", ""]
        for v in host.verify:
            lines.append(f"- {v.outcome}: {esc(v.test)}")
            if v.outcome in ("failed", "error") and v.message:
                lines += ["", *block(v.message.strip()[-3000:], indent="  ")]
        lines.append("")
    return lines


def _step(step: StepReport) -> list[str]:
    after = step.after or step.before
    lines = [f"#### {esc(step.name)}: {step.before.status} -> {after.status}", ""]
    lines += ["Before (broken):" if not step.before.ok else "Before:", ""]
    lines += [*block(_outcome_text(step.before)), ""]
    for number, rem in enumerate(step.remediations, start=1):
        lines += _remediation(number, rem)
    if after is not step.before:
        lines += ["After (recovered):" if after.ok else "After (still failing):", ""]
        lines += [*block(_outcome_text(after)), ""]
    return lines


def _remediation(number: int, rem: RemediationOutcome) -> list[str]:
    lines = [f"{number}. **{esc(rem.remediation)}**: {rem.status.replace('_', ' ')}", ""]
    if rem.reason:
        lines += [*block(rem.reason, indent="   "), ""]
    if rem.backup_path:
        lines += [f"   Backup: `{rem.backup_path.replace('`', '')}`", ""]
    for title, text, lang in (
        ("Commands", "\n".join(rem.commands), "sh"),
        ("Validation output", rem.validate_output, "text"),
        ("Diff", rem.diff, "diff"),
    ):
        if text.strip():  # folded: long scripts and outputs would bury the story
            lines += [f"   <details><summary>{title}</summary>", ""]
            lines += [*block(text.rstrip("\n"), lang, indent="   "), "", "   </details>", ""]
    return lines


def _outcome_text(outcome: CheckOutcome) -> str:
    return "\n".join([f"{outcome.status}: {outcome.summary}", *evidence_lines(outcome.evidence)])


def _verdict(outcome: CheckOutcome) -> str:
    mark = "ok" if outcome.ok else f"**{outcome.status.upper()}**"
    return f"{mark} {esc(outcome.summary)}"


def _checking(log: OperationLog) -> list[str]:
    return [
        "## Checking this report",
        "",
        "The evidence bundle is the run as opsfix recorded it (canonical JSON, secrets "
        "masked). To check it:",
        "",
        *block(
            f"opsfix report {log.run_id} --verify-hash {log.bundle_sha256}\n"
            f"# or, anywhere:\n"
            f"opsfix report {log.run_id} --format bundle -o {log.run_id}.json\n"
            f"sha256sum {log.run_id}.json   # {log.bundle_sha256}",
            "sh",
        ),
        "",
    ]


def block(text: str, lang: str = "text", indent: str = "") -> list[str]:
    """A fenced code block that no backticks inside can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [
        f"{indent}{fence}{lang}",
        *(f"{indent}{line}" for line in text.splitlines()),
        indent + fence,
    ]


def esc(text: str) -> str:
    """Plain text safe in Markdown, table cells included (one line): no markup, links or
    HTML can come of it; an underscore inside a word stays as it is (no emphasis there)."""
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), re.sub(r"\s+", " ", text))


def _inline(text: str) -> str:
    """Escape text but keep `code spans` (generated by opsfix itself) as they are, on one
    line (a host name inside may hold a newline)."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        printable(p, one_line=True)
        if p.startswith("`") and p.endswith("`") and len(p) > 1
        else esc(p)
        for p in parts
    )
