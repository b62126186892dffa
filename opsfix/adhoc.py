"""Ad-hoc commands: one shell command on many hosts at once, as `ansible -m shell` runs it,
but over opsfix's own connections (host keys checked, connections kept between runs)
and recorded in the run history with who ran it.

The command is the operator's, run as typed by each host's `sh` (like `ssh host CMD`);
its output is kept per host, bounded, and shown with control characters escaped
(opsfix.escape.printable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from opsfix.errors import CommandTimeout, ConnectionFailed, OpsfixError
from opsfix.evidence.results import CheckOutcome, HostReport, HostStatus, RunReport, StepReport

Status = Literal["ok", "failed", "unreachable"]
MAX_OUTPUT = 64 * 1024  # characters of each stream kept per host (its end)
HISTORY_OUTPUT = 4 * 1024  # of which history keeps the end


@dataclass
class AdhocResult:
    """One host's answer: exit status and output, or why there is none."""

    host: str
    status: Status
    exit_status: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    reason: str = ""


def bounded(text: str, limit: int = MAX_OUTPUT) -> str:
    """The end of `text`, at most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut]\n" + text[-limit:]


def run_everywhere(
    hosts: Sequence[Any],
    command: str,
    connect: Callable[[Any], Any],
    *,
    become: bool = False,
    forks: int = 50,
    on_done: Callable[[AdhocResult], None] | None = None,
) -> list[AdhocResult]:
    """Run `command` on every host (`connect(host)` gives its open connection), in
    parallel; one host's failure never stops the others. Results in the hosts' order."""
    workers = max(1, min(forks, len(hosts)))

    def one(host: Any) -> AdhocResult:
        result = _run_one(host, command, connect, become)
        if on_done is not None:
            on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, hosts))


def _run_one(host: Any, command: str, connect: Callable[[Any], Any], become: bool) -> AdhocResult:
    name = host.name
    began = time.monotonic()
    try:
        conn = connect(host)
    except ConnectionFailed as exc:
        return AdhocResult(name, "unreachable", reason=exc.reason)
    except OpsfixError as exc:  # a host key that does not match, a bad spec
        return AdhocResult(name, "unreachable", reason=str(exc))
    try:
        done = conn.run(command, become=become)
    except (ConnectionFailed, CommandTimeout) as exc:
        return AdhocResult(name, "failed", duration=time.monotonic() - began, reason=str(exc))
    finally:
        conn.close()
    return AdhocResult(
        name,
        "ok" if done.exit_status == 0 else "failed",
        done.exit_status,
        bounded(done.stdout),
        bounded(done.stderr),
        time.monotonic() - began,
    )


def exit_code(results: Sequence[AdhocResult]) -> int:
    """The worst host decides: 2 a command failed (or timed out), 3 a host unreachable
    (and none failed), else 0: the codes of `opsfix apply`."""
    statuses = {r.status for r in results}
    if "failed" in statuses:
        return 2
    return 3 if "unreachable" in statuses else 0


def to_report(results: Sequence[AdhocResult], command: str, started: float) -> RunReport:
    """The run as history records it: one step per host, the command, judged by its exit
    status, with the end of its output as evidence."""
    hosts = []
    for r in results:
        if r.status == "unreachable":
            hosts.append(HostReport(r.host, "unreachable", r.reason, duration=r.duration))
            continue
        summary = f"exit {r.exit_status}" if r.exit_status is not None else r.reason
        evidence: dict[str, Any] = {"exit_status": r.exit_status}
        for stream in ("stdout", "stderr"):
            if getattr(r, stream):
                evidence[stream] = bounded(getattr(r, stream), HISTORY_OUTPUT)
        ok = r.status == "ok"
        verdict = CheckOutcome("exec", "passed" if ok else "failed", summary, evidence)
        step = StepReport(command, verdict, [], verdict, duration=r.duration)
        status: HostStatus = "healthy" if ok else "failed"
        hosts.append(HostReport(r.host, status, "" if ok else summary, [step], [], r.duration))
    return RunReport("ad-hoc", "exec", hosts, started=started, finished=time.time())
