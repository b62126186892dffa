"""The engine: every host in parallel; per host check, remediate as transactions, re-check.

It knows nothing of nginx or any other software: checks say what to run and how to judge
it, remediations declare plans, and the engine decides how and when — batched into as
few round trips as possible, one connection per host, one host's trouble never stopping
the others.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from opsfix.binding import BoundStep, Target
from opsfix.errors import CommandTimeout, ConnectionFailed
from opsfix.hosts import ConnectionSpec
from opsfix.plugin import Check, CheckResult, Remediation
from opsfix.results import CheckOutcome, HostReport, RemediationOutcome, RunReport, StepReport
from opsfix.shell import batch, unbatch
from opsfix.transaction import (
    BACKUP_DIR,
    STATE_DIR,
    Transaction,
    current_contents,
    diff,
    new_txid,
)
from opsfix.transport.base import Connection

Mode = Literal["apply", "check", "dry-run"]
Event = Callable[[str, str], None]
Verifier = Callable[[list[tuple[Target, ConnectionSpec, Connection]]], dict[str, list[Any]]]


@dataclass(frozen=True)
class Job:
    """One host of the run: what to do there and how to reach it."""

    target: Target
    spec: ConnectionSpec


class Engine:
    def __init__(
        self,
        mode: Mode,
        connect: Callable[[ConnectionSpec], Connection],
        *,
        forks: int = 50,
        verifier: Verifier | None = None,
        on_event: Event | None = None,
        check_timeout: float = 30.0,
    ) -> None:
        self.mode = mode
        self.check_timeout = check_timeout  # per check command: one hung probe fails alone
        self.connect = connect
        self.forks = max(1, forks)
        self.verifier = verifier
        self.on_event = on_event or (lambda host, text: None)
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._open: list[Connection] = []

    def run(self, playbook_name: str, jobs: Sequence[Job]) -> RunReport:
        report = RunReport(playbook=playbook_name, mode=self.mode, started=time.time())
        connections: dict[str, Connection] = {}
        pool = ThreadPoolExecutor(max_workers=min(self.forks, max(1, len(jobs))))
        try:
            futures = [pool.submit(self._run_host, job) for job in jobs]
            results = [future.result() for future in futures]
            for job, (host_report, conn) in zip(jobs, results, strict=True):
                report.hosts.append(host_report)
                if conn is not None:
                    connections[job.target.host.name] = conn
            if self.mode == "apply" and self.verifier is not None:
                self._verify(jobs, report, connections)
        except KeyboardInterrupt:
            self._cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for conn in connections.values():
                _close(conn)
        report.finished = time.time()
        return report

    def _cancel(self) -> None:
        """Ctrl-C: start no new host, and cut open connections so blocked workers return."""
        self._cancelled.set()
        with self._lock:
            opened = list(self._open)
        for conn in opened:
            _close(conn)

    # -- one host ------------------------------------------------------------------------

    def _run_host(self, job: Job) -> tuple[HostReport, Connection | None]:
        name = job.target.host.name
        started = time.monotonic()
        report = HostReport(host=name, status="healthy")
        conn: Connection | None = None
        try:
            if self._cancelled.is_set():
                raise ConnectionFailed(name, "not started: run interrupted")
            self.on_event(name, "connecting")
            conn = self.connect(job.spec)
            with self._lock:
                self._open.append(conn)
            HostRun(self, conn, job, report).run()
        except ConnectionFailed as exc:
            report.status, report.reason = "unreachable", exc.reason
            if conn is not None:
                _close(conn)
                conn = None
        except CommandTimeout as exc:
            report.status, report.reason = "failed", str(exc)
        except Exception as exc:  # a plugin bug must not take the other hosts down
            report.status, report.reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
        report.duration = time.monotonic() - started
        self.on_event(name, report.status)
        return report, conn

    def _verify(
        self, jobs: Sequence[Job], report: RunReport, connections: dict[str, Connection]
    ) -> None:
        by_name = {h.host: h for h in report.hosts}
        targets = [
            (job.target, job.spec, connections[job.target.host.name])
            for job in jobs
            if job.target.host.name in connections
            and by_name[job.target.host.name].status != "unreachable"
        ]
        if not targets:
            return
        assert self.verifier is not None
        outcomes = self.verifier(targets)
        for host, results in outcomes.items():
            host_report = by_name[host]
            host_report.verify = list(results)
            if any(r.outcome in ("failed", "error") for r in results):
                host_report.status = "failed"
                host_report.reason = host_report.reason or "verify failed"


class HostRun:
    """The work on one host, over its one connection."""

    def __init__(self, engine: Engine, conn: Connection, job: Job, report: HostReport) -> None:
        self.engine = engine
        self.conn = conn
        self.job = job
        self.report = report
        self.name = job.target.host.name

    def run(self) -> None:
        steps = self.job.target.steps
        before = self.check_all([s.check for s in steps])
        self.report.steps = [
            StepReport(s.label, before=b) for s, b in zip(steps, before, strict=True)
        ]
        if self.engine.mode != "check":
            changed = False
            for step, step_report in zip(steps, self.report.steps, strict=True):
                changed |= self.repair(step, step_report, changed)
            if changed:
                after = self.check_all([s.check for s in steps])
                for step_report, outcome in zip(self.report.steps, after, strict=True):
                    step_report.after = outcome
        for step_report in self.report.steps:
            step_report.after = step_report.after or step_report.before
        self.report.status = self.status()
        if self.engine.mode == "apply" and self.report.status in ("healthy", "repaired"):
            self.baseline(steps)

    def status(self) -> Literal["healthy", "repaired", "failed"]:
        if any(s.after is None or not s.after.ok for s in self.report.steps):
            failing = [s.name for s in self.report.steps if s.after is None or not s.after.ok]
            self.report.reason = "still failing: " + ", ".join(failing)
            return "failed"
        applied = any(r.status == "applied" for s in self.report.steps for r in s.remediations)
        return "repaired" if applied else "healthy"

    def repair(self, step: BoundStep, step_report: StepReport, changed: bool) -> bool:
        """Try the step's remediations in order until its check passes. True if any acted."""
        current = step_report.before
        if current.ok:
            return False
        if changed:  # an earlier remediation may have fixed this too
            current = self.check_all([step.check])[0]
            if current.ok:
                step_report.after = current
                return False
        acted = False
        for remediation in step.remediations:
            self.engine.on_event(self.name, f"{step.label}: {remediation.name}")
            outcome = self.remediate(step.check, remediation)
            step_report.remediations.append(outcome)
            acted |= outcome.status in ("applied", "rolled_back", "partial")
            if outcome.status == "applied":
                step_report.after = outcome.recheck
                break
            if outcome.status == "would_change":
                break
        return acted

    def remediate(self, check: Check[Any], remediation: Remediation[Any]) -> RemediationOutcome:
        name = remediation.name
        gather = remediation.gather()
        facts = unbatch(gather, self.conn.run(batch(gather))) if gather else []
        try:
            plan = remediation.plan(facts)
        except Exception as exc:
            return RemediationOutcome(name, "error", f"plan failed: {type(exc).__name__}: {exc}")
        if plan.refuse:
            return RemediationOutcome(name, "refused", plan.refuse)
        if plan.is_noop:
            return RemediationOutcome(name, "no_change", plan.summary)
        commands = [*plan.validate, *plan.act]
        if self.engine.mode == "dry-run":
            current = current_contents(self.conn, [c.path for c in plan.changes], None)
            return RemediationOutcome(
                name, "would_change", plan.summary, diff=diff(plan, current), commands=commands
            )
        tx = Transaction(
            self.conn,
            plan,
            new_txid(name),
            state_dir=str(self.job.target.vars.get("opsfix_state_dir", STATE_DIR)),
            backup_dir=str(self.job.target.vars.get("opsfix_backup_dir", BACKUP_DIR)),
        )
        outcome = RemediationOutcome(name, "applied", plan.summary, commands=commands)
        outcome.backup_path = tx.backup if plan.changes and plan.backup else None
        prepared = tx.prepare()
        outcome.validate_output = prepared.text()
        if not prepared.ok:
            outcome.status = "refused"
            phase = prepared.failed_phase
            outcome.reason = (
                "validation failed: nothing was changed"
                if phase == "validate"
                else f"could not prepare ({phase}): nothing was changed"
            )
            tx.finish("refused")
            return outcome
        applied = tx.apply()
        if applied.ok:
            outcome.recheck = self.check_all([check])[0]
            if outcome.recheck.ok:
                tx.finish("committed")
                return outcome
            why = f"re-check still fails: {outcome.recheck.summary}"
            if plan.partial_ok or not plan.backup:
                tx.finish("committed-partial")
                outcome.status, outcome.reason = "partial", f"{plan.summary}; {why}"
                return outcome
        else:
            why = f"{applied.failed_phase} failed: {applied.text()[-500:]}"
        restored = tx.restore()
        outcome.status = "rolled_back"
        outcome.reason = f"{why}; " + (
            "snapshot restored" if restored.ok else f"RESTORE FAILED ({restored.failed_phase})"
        )
        tx.finish("rolled-back" if restored.ok else "restore-failed")
        return outcome

    def check_all(self, checks: Sequence[Check[Any]]) -> list[CheckOutcome]:
        """Run the checks' commands batched in one round trip and judge each."""
        commands: list[str] = []
        spans = []
        for check in checks:
            mine = check.commands()
            spans.append((len(commands), len(mine)))
            commands.extend(mine)
        # one after another: a check's own probe (say `nginx -t`) must not show up in
        # another check's view of the host (say `pgrep nginx`)
        script = batch(commands, parallel=False, timeout=self.engine.check_timeout)
        results = unbatch(commands, self.conn.run(script)) if commands else []
        outcomes = []
        for check, (start, count) in zip(checks, spans, strict=True):
            try:
                verdict = check.evaluate(results[start : start + count])
            except Exception as exc:
                verdict = CheckResult.error(f"check failed to judge: {type(exc).__name__}: {exc}")
            outcomes.append(
                CheckOutcome(check.name, verdict.status, verdict.summary, verdict.evidence)
            )
        return outcomes

    def baseline(self, steps: Sequence[BoundStep]) -> None:
        """Let remediations remember this healthy state (e.g. a known-good config)."""
        commands = list(
            dict.fromkeys(c for s in steps for r in s.remediations for c in r.baseline())
        )
        if commands:
            self.conn.run(batch(commands, parallel=False))


def _close(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()
