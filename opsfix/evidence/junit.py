"""A run as JUnit XML, the test report format CI systems read (Jenkins, GitLab, GitHub).

`<testsuites name=PLAYBOOK>` holds one `<testsuite name=HOST>` per host. Each playbook
step is a test case (classname `opsfix.PLAYBOOK.HOST`, name the step's name), judged by
the check's final verdict: passed; `<failure>` when it still fails (message: the
summary; text: the evidence before and after, and what each remediation did); `<error>`
when the check could not tell. Each verify test follows as `verify: TEST`. A step's
time is the round trips that judged it (its checks run batched, in parallel, with the
other steps': each case shows that wall time, so the cases of a host add up to more than
its suite's) plus its own repairs; a verify test's is pytest's setup, call and teardown. A host that
could not be reached is one `<error>` case `connect`; a host a stopped rollout never
reached is one `<skipped>` case. Pass a report whose secrets are masked
(`opsfix.evidence.history.masked`).

Every name and text goes through `opsfix.escape.printable` (and the few characters XML
1.0 forbids that it leaves alone are escaped too): a host may print control characters,
and one raw in the file makes it XML no CI system reads, besides what they would do in
a terminal showing it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from opsfix.escape import printable
from opsfix.evidence.results import CheckOutcome, HostReport, RunReport, StepReport, VerifyOutcome

_VERIFY_TAG = {"failed": "failure", "error": "error", "skipped": "skipped"}


_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")  # what printable() leaves that XML forbids


def _safe(text: str, *, one_line: bool = True) -> str:
    """`text` as a person may read it and XML may hold it."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", printable(text, one_line=one_line))


def to_junit(report: RunReport) -> str:
    root = ET.Element("testsuites", name=_safe(report.playbook))
    for host in report.hosts:
        root.append(_suite(report, host))
    _count(root, list(root))
    root.set("time", f"{max(0.0, report.finished - report.started):.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(report: RunReport, host: HostReport) -> ET.Element:
    suite = ET.Element("testsuite", name=_safe(host.host), time=f"{host.duration:.3f}")
    classname = f"opsfix.{report.playbook}.{host.host}"
    cases = [_step_case(classname, step) for step in host.steps]
    cases += [_verify_case(classname, v) for v in host.verify]
    if host.status == "unreachable":
        cases.append(_case(classname, "connect", "error", host.reason or "unreachable"))
    elif host.status == "not_attempted":
        cases.append(_case(classname, "not attempted", "skipped", host.reason))
    elif not cases and host.status == "failed":
        cases.append(_case(classname, "run", "error", host.reason or "failed"))
    suite.extend(cases)
    _count(suite, cases)
    return suite


def _step_case(classname: str, step: StepReport) -> ET.Element:
    final = step.after or step.before
    tag = {"passed": None, "failed": "failure", "error": "error"}[final.status]
    return _case(classname, step.name, tag, final.summary, _step_text(step), step.duration)


def _verify_case(classname: str, outcome: VerifyOutcome) -> ET.Element:
    tag = _VERIFY_TAG.get(outcome.outcome)
    first = outcome.message.strip().splitlines()[:1]
    message = first[0] if first else ""
    return _case(
        classname, f"verify: {outcome.test}", tag, message, outcome.message, outcome.duration
    )


def _case(
    classname: str, name: str, tag: str | None, message: str, text: str = "", seconds: float = 0.0
) -> ET.Element:
    case = ET.Element(
        "testcase", classname=_safe(classname), name=_safe(name), time=f"{seconds:.3f}"
    )
    body = _safe(text, one_line=False)
    if tag:
        ET.SubElement(case, tag, message=_safe(message)).text = body or None
    elif body:
        ET.SubElement(case, "system-out").text = body
    return case


def _step_text(step: StepReport) -> str:
    lines = [f"before: {step.before.status}: {step.before.summary}", *_evidence(step.before)]
    for rem in step.remediations:
        lines.append(f"remediation {rem.remediation}: {rem.status}: {rem.reason}")
    if step.after is not None and step.after is not step.before:
        lines += [f"after: {step.after.status}: {step.after.summary}", *_evidence(step.after)]
    return "\n".join(lines)


def _evidence(outcome: CheckOutcome) -> list[str]:
    return [f"  {key}: {_flat(value)}" for key, value in outcome.evidence.items()]


def _flat(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    """tests/failures/errors/skipped, summed over test cases or over suites."""
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for child in cases:
        if child.tag == "testsuite":
            for key in totals:
                totals[key] += int(child.get(key, "0"))
            continue
        totals["tests"] += 1
        for tag, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            totals[key] += child.find(tag) is not None
    for key, value in totals.items():
        element.set(key, str(value))
