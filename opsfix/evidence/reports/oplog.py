"""A recorded run as an operation log entry and incident report.

The fields are the operations template's: date/time, operation, reason, impact,
duration, issues, follow-up. They are written from the run's own evidence, so the
report says only what the run saw: which checks failed before (broken), what each
remediation did, and what the checks and verify suites said after (recovered, or not).
The evidence bundle's sha256 lets a reader check later that the report's source is the
run as it was recorded.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsfix.evidence.history import report_from_dict, when
from opsfix.evidence.results import HostReport, RunReport, StepReport

_COMMAND = {"apply": "apply", "dry-run": "apply --check", "check": "check"}
_TROUBLE = ("refused", "rolled_back", "partial", "error", "deferred")


@dataclass
class OperationLog:
    run_id: str
    title: str
    date_time: str
    operation: str
    reason: str
    impact: list[str]
    duration: str
    issues: list[str]
    follow_up: list[str]
    user: str
    exit_code: int
    bundle_sha256: str
    report: RunReport
    hosts: list[HostReport] = field(default_factory=list)  # with something to show
    quiet_hosts: list[str] = field(default_factory=list)  # healthy, nothing done


def build(doc: Mapping[str, Any], bundle_sha256: str) -> OperationLog:
    """The operation log of a bundle document (see opsfix.evidence.history)."""
    report = report_from_dict(doc["report"])
    options = doc.get("options", {})
    hosts = [h for h in report.hosts if _eventful(h)]
    return OperationLog(
        run_id=doc["run_id"],
        title=f"{report.playbook}: {_COMMAND.get(report.mode, report.mode)}",
        date_time=f"{when(report.started)} to {when(report.finished)[11:]}",
        operation=_operation(doc, report, options),
        reason=_reason(report, options),
        impact=_impact(report),
        duration=_duration(report.finished - report.started),
        issues=_issues(report) or ["None."],
        follow_up=_follow_up(report, doc) or ["None."],
        user=doc.get("user", "?"),
        exit_code=int(doc.get("exit_code", 0)),
        bundle_sha256=bundle_sha256,
        report=report,
        hosts=hosts,
        quiet_hosts=[h.host for h in report.hosts if not _eventful(h)],
    )


def _eventful(host: HostReport) -> bool:
    return host.status != "healthy" or any(not s.before.ok or s.remediations for s in host.steps)


def _operation(doc: Mapping[str, Any], report: RunReport, options: Mapping[str, Any]) -> str:
    argv = ["opsfix", *_COMMAND.get(report.mode, report.mode).split(), doc["playbook_path"]]
    argv += _run_options(options)
    if options.get("limit"):
        argv += ["--limit", str(options["limit"])]
    names = ", ".join(h.host for h in report.hosts) or "no host"
    return (
        f"`{shlex.join(argv)}` on {len(report.hosts)} host(s) ({names}), by {doc.get('user', '?')}"
    )


def _reason(report: RunReport, options: Mapping[str, Any]) -> str:
    broken = {h.host: [s.name for s in h.steps if not s.before.ok] for h in report.hosts}
    broken = {h: names for h, names in broken.items() if names}
    if broken:
        found = "; ".join(f"{h}: {', '.join(names)}" for h, names in broken.items())
        text = f"Checks found problems on {len(broken)} host(s): {found}."
    elif report.mode == "check":
        text = "Routine check of the fleet."
    else:
        text = "Routine run: no check failed before any change."
    given = options.get("reason")
    return f"{given} ({text})" if given else text


def _impact(report: RunReport) -> list[str]:
    lines = [
        f"Before: {_unhealthy(report, before=True)}.",
        f"After: {_unhealthy(report, before=False)}.",
    ]
    for host in report.hosts:
        failing = [s for s in host.steps if not s.before.ok]
        if failing or host.status != "healthy":
            lines.append(f"{host.host}: {_host_impact(host, failing)}")
    return lines


def _unhealthy(report: RunReport, *, before: bool) -> str:
    def bad(host: HostReport) -> bool:
        if host.status in ("unreachable", "not_attempted"):
            return True
        steps = host.steps
        return any(not (s.before if before else (s.after or s.before)).ok for s in steps) or (
            not before and host.status == "failed"
        )

    count = sum(1 for h in report.hosts if bad(h))
    return f"{count} of {len(report.hosts)} host(s) unhealthy or unknown"


def _host_impact(host: HostReport, failing: list[StepReport]) -> str:
    still = [s for s in host.steps if not (s.after or s.before).ok]
    start = f"broken ({len(failing)} of {len(host.steps)} check(s) failing)" if failing else "ok"
    if host.status in ("unreachable", "not_attempted"):
        return f"{host.status.replace('_', ' ')}: {host.reason}"
    after = (
        f"{len(still)} still failing ({', '.join(s.name for s in still)})"
        if still
        else "all checks pass"
    )
    verify = ""
    if host.verify:
        passed = sum(1 for v in host.verify if v.outcome == "passed")
        verify = f", verify {passed}/{len(host.verify)} passed"
    return f"{start} -> {host.status} ({after}{verify})"


def _issues(report: RunReport) -> list[str]:
    issues = []
    for host in report.hosts:
        if host.status in ("unreachable", "not_attempted", "failed") and host.reason:
            issues.append(f"{host.host}: {host.status.replace('_', ' ')}: {host.reason}")
        for step in host.steps:
            for rem in step.remediations:
                if rem.status in _TROUBLE:
                    reason = rem.reason.splitlines()[0] if rem.reason else ""
                    status = rem.status.replace("_", " ")
                    issues.append(f"{host.host}: {step.name}: {rem.remediation} {status}: {reason}")
        for v in host.verify:
            if v.outcome in ("failed", "error"):
                first = v.message.strip().splitlines()[:1]
                issues.append(f"{host.host}: verify {v.test} {v.outcome}: {''.join(first)}")
        issues += [f"{host.host}: {note}" for note in getattr(host, "notes", [])]
    return issues


def _follow_up(report: RunReport, doc: Mapping[str, Any]) -> list[str]:
    book = doc["playbook_path"]
    by_status: dict[str, list[str]] = {}
    for host in report.hosts:
        by_status.setdefault(host.status, []).append(host.host)
    todo = []
    if "failed" in by_status:
        todo.append(
            f"Still failing: {', '.join(by_status['failed'])}: repair by hand from the "
            "evidence below, then re-run the playbook to prove it."
        )
    if "unreachable" in by_status:
        todo.append(f"Unreachable: {', '.join(by_status['unreachable'])}: restore SSH, re-run.")
    if "deferred" in by_status:
        todo.append(
            f"Repairs deferred on {', '.join(by_status['deferred'])}: run again in the next "
            "maintenance window."
        )
    if "not_attempted" in by_status:
        todo.append(f"Not attempted (rollout stopped): {', '.join(by_status['not_attempted'])}.")
    repaired = by_status.get("repaired", [])
    if repaired:
        todo.append(
            f"Repaired: {', '.join(repaired)}: find out what broke "
            f"{'them' if len(repaired) > 1 else 'it'} (the evidence before) and prevent it; "
            "backups of every changed file are kept on the host."
        )
    broken = [h.host for h in report.hosts if any(not s.before.ok for s in h.steps)]
    if report.mode != "apply" and broken:
        argv = ["opsfix", "apply", book, *_run_options(doc.get("options", {}))]
        todo.append(f"Repair: `{shlex.join([*argv, '--limit', ':'.join(broken)])}`.")
    return todo


def _run_options(options: Mapping[str, Any]) -> list[str]:
    """The options that chose the hosts and how to reach them, as the run was given them:
    a repair suggested from another folder or shell must reach the same inventory."""
    argv: list[str] = []
    for key, flag in (
        ("inventory", "-i"),
        ("plugins", "--plugins"),
        ("known_hosts", "--known-hosts"),
    ):
        for value in options.get(key) or []:
            argv += [flag, str(value)]
    if options.get("ssh_config"):
        argv += ["--ssh-config", str(options["ssh_config"])]
    return argv


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def evidence_lines(evidence: Mapping[str, Any]) -> list[str]:
    """Evidence as `key: value` lines; lists joined, mappings as JSON."""
    lines = []
    for key, value in evidence.items():
        if isinstance(value, list):
            text = "\n  ".join(map(str, value))
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        else:
            text = str(value)
        lines.append(f"{key}: {text}")
    return lines
