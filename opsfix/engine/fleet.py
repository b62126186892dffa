"""The engine: hosts in parallel, batch by batch; per host check, repair, re-check, verify.

It knows nothing of nginx or any other software: checks say what to run and how to judge
it, remediations declare plans, and the engine decides how and when — batched into as
few round trips as possible, one connection per host, one host's trouble never stopping
the others. With `serial`, hosts go in batches; a batch is done when its hosts are
repaired and verified, and a batch whose failures exceed `max_fail_percentage` stops the
rollout: the hosts after it are never touched.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from opsfix.engine import rollout
from opsfix.engine.hostrun import HostRun, Interrupted
from opsfix.engine.lock import Holder, HostLocked, LockSettings
from opsfix.engine.policy import Event, FlapGuard, Gate, HostPolicy, Job, Mode
from opsfix.engine.session import BecomeRefused
from opsfix.errors import CommandTimeout, ConnectionFailed
from opsfix.evidence.results import HostReport, RunReport
from opsfix.playbook.binding import Target
from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult, Connection
from opsfix.transport.spec import ConnectionSpec

__all__ = [
    "PEER_LIMIT",
    "Engine",
    "EngineOptions",
    "Event",
    "FlapGuard",
    "Gate",
    "Job",
    "Mode",
    "Record",
    "Verifier",
]

# structured progress, for --format jsonl: ("host_started", name), ("host_done", HostReport:
# checks and repairs done), ("verified", HostReport with its verify results)
Record = Callable[[str, Any], None]
VerifyItem = tuple[Target, ConnectionSpec, Connection]


class Verifier(Protocol):
    """Asserts the state of hosts after their run (testinfra suites, see opsfix.verify.suite)."""

    def begin(self, hosts: list[tuple[Target, ConnectionSpec]]) -> None:
        """A batch of hosts starts; `__call__` ends it (with the hosts to verify, or none)."""

    def riders(self, target: Target, spec: ConnectionSpec) -> list[tuple[str, bool]]:
        """Commands (script, become) verify expects to run on this host, runnable with the
        host's own `become`: they may ride along with its check scripts."""
        ...

    def ahead(self, item: VerifyItem, done: dict[tuple[str, bool], CommandResult]) -> None:
        """One host's run is done: verify may start its work there while others still run.
        `done`: the riders' results from a script no change followed (else empty)."""

    def __call__(self, items: list[VerifyItem]) -> dict[str, list[Any]]:
        """Each host's outcomes, once every host of the batch is done."""
        ...


_OK = ("healthy", "repaired")


PEER_LIMIT = 8  # peers asked at most, in inventory order, when a repair needs them


@dataclass
class EngineOptions:
    forks: int = 50
    serial: list[rollout.SerialItem] | None = None
    max_fail_percentage: float | None = None
    check_timeout: float = 30.0  # per check command: one hung probe fails alone
    show_diff: bool = False  # diffs in real runs too (dry runs always have them)
    sensitive_files: tuple[str, ...] = ()  # globs whose diffs are never shown
    gate: Gate | None = None  # may defer a disruptive remediation, saying why
    override_reason: str | None = None  # run deferred steps anyway, recording why
    lock: LockSettings = field(default_factory=LockSettings)
    run_id: str | None = None
    flap_guard: FlapGuard | None = None  # may refuse to repair a step that keeps breaking


class Engine:
    def __init__(
        self,
        mode: Mode,
        connect: Callable[[ConnectionSpec], Connection],
        *,
        options: EngineOptions | None = None,
        verifier: Verifier | None = None,
        on_event: Event | None = None,
        on_record: Record | None = None,
    ) -> None:
        self.mode = mode
        self.connect = connect
        self.options = options or EngineOptions()
        self.verifier = verifier
        self.on_event = on_event or (lambda host, text: None)
        self.on_record = on_record or (lambda kind, data: None)
        self.holder = Holder.me(self.options.run_id)
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[Connection, HostRun | None] = {}
        self.policy = self._policy()

    def _policy(self) -> HostPolicy:
        """What every host's run is given (it never sees the engine itself)."""
        options, verifier = self.options, self.verifier
        return HostPolicy(
            mode=self.mode,
            holder=self.holder,
            check_timeout=options.check_timeout,
            lock=options.lock,
            gate=options.gate,
            override_reason=options.override_reason,
            flap_guard=options.flap_guard,
            show_diff=options.show_diff,
            sensitive_files=options.sensitive_files,
            verify_riders=verifier.riders if verifier is not None else None,
            ask_peers=self.ask_peers,
            cancelled=self._cancelled.is_set,
            on_event=self.on_event,
        )

    def ask_peers(self, job: Job, commands: Sequence[str]) -> dict[str, list[CommandResult]]:
        """Run read-only `commands` on the job's first PEER_LIMIT peers, each over a
        connection of its own, closed afterwards. A peer that could not be reached (or
        whose commands did not run) gets an empty list: asked, but no answer."""
        peers = job.peers()[:PEER_LIMIT]

        def one(spec: ConnectionSpec) -> list[CommandResult]:
            try:
                conn = self.connect(spec)
            except Exception:
                return []
            try:
                return unbatch(commands, conn.run(batch(commands, parallel=False)))
            except Exception:
                return []
            finally:
                _close(conn)

        if not peers:
            return {}
        with ThreadPoolExecutor(max_workers=len(peers)) as pool:
            answers = list(pool.map(one, peers))
        return {spec.host: answer for spec, answer in zip(peers, answers, strict=True)}

    def run(self, playbook_name: str, jobs: Sequence[Job]) -> RunReport:
        report = RunReport(playbook=playbook_name, mode=self.mode, started=time.time())
        batches = rollout.split(list(jobs), self.options.serial)
        workers = min(self.options.forks, max(1, max((len(b) for b in batches), default=1)))
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            stop_reason = ""
            for number, batch in enumerate(batches, start=1):
                if stop_reason:
                    report.hosts += [
                        HostReport(j.target.host.name, "not_attempted", reason=stop_reason)
                        for j in batch
                    ]
                    continue
                results = self._run_batch(pool, batch)
                report.hosts += results
                failed = sum(1 for h in results if h.status not in _OK)
                if len(batches) > 1 and rollout.exceeds(
                    failed, len(batch), self.options.max_fail_percentage
                ):
                    stop_reason = self._stop_reason(number, failed, len(batch))
        except KeyboardInterrupt:
            # Ctrl-C: hosts in the middle of a change finish it (or roll it back) and
            # release their lock; the others are cut off now. A second Ctrl-C stops at once.
            self._cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        report.finished = time.time()
        return report

    def _baseline(
        self,
        pool: ThreadPoolExecutor,
        reports: list[HostReport],
        connections: dict[str, Connection],
    ) -> None:
        """Healthy and verified hosts let remediations remember their state as known-good."""

        def one(report: HostReport) -> None:
            conn = connections.get(report.host)
            host_run = self._open.get(conn) if conn is not None else None
            if host_run is None or report.status not in _OK:
                return
            try:
                host_run.baseline()
            except Exception as exc:  # never turn a good run bad over a snapshot
                report.notes.append(f"could not record a known-good baseline: {exc}")

        list(pool.map(one, reports))

    def _stop_reason(self, number: int, failed: int, size: int) -> str:
        limit = self.options.max_fail_percentage
        rule = f"max_fail_percentage {limit:g}" if limit is not None else "every host failed"
        return f"not attempted: batch {number} had {failed} of {size} host(s) failing ({rule})"

    def _run_batch(self, pool: ThreadPoolExecutor, batch: list[Job]) -> list[HostReport]:
        verifying = self.mode == "apply" and self.verifier is not None
        if verifying:
            assert self.verifier is not None
            self.verifier.begin([(job.target, job.spec) for job in batch])
        try:
            return self._run_hosts(pool, batch)
        finally:
            if verifying:  # cut short (Ctrl-C): verify ends too, whatever it had started
                assert self.verifier is not None
                self.verifier([])  # after the batch's own verify, a no-op

    def _run_hosts(self, pool: ThreadPoolExecutor, batch: list[Job]) -> list[HostReport]:
        futures = [pool.submit(self._run_host, job) for job in batch]
        results = [future.result() for future in futures]
        connections = {
            job.target.host.name: conn
            for job, (_, conn) in zip(batch, results, strict=True)
            if conn is not None
        }
        reports = [host_report for host_report, _ in results]
        try:
            if self.mode == "apply" and self.verifier is not None:
                self._verify(batch, reports, connections)
            if self.mode == "apply":
                self._baseline(pool, reports, connections)
        finally:
            for conn in connections.values():
                _close(conn)
            with self._lock:
                for conn in connections.values():
                    self._open.pop(conn, None)
        return reports

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _cancel(self) -> None:
        """Start no new host or step; cut the connections of hosts not in a change."""
        self._cancelled.set()
        with self._lock:
            idle = [conn for conn, run in self._open.items() if run is None or run.may_be_cut]
        for conn in idle:
            _close(conn)

    def _run_host(self, job: Job) -> tuple[HostReport, Connection | None]:
        name = job.target.host.name
        started = time.monotonic()
        report = HostReport(host=name, status="healthy")
        conn: Connection | None = None
        try:
            if self._cancelled.is_set():
                raise ConnectionFailed(name, "not started: run interrupted")
            self.on_event(name, "connecting")
            self.on_record("host_started", name)
            conn = self.connect(job.spec)
            self.on_event(name, "checking")
            host_run = HostRun(self.policy, conn, job, report)
            with self._lock:
                self._open[conn] = host_run
            host_run.run()
            if self._verifies(report):
                assert self.verifier is not None
                self.verifier.ahead((job.target, job.spec, conn), host_run.ridden)
            elif not (self.mode == "apply" and report.status in _OK and host_run.wants_baseline):
                self._release(conn)  # nothing more to do there: its batch need not hold it
                conn = None
        except (Interrupted, ConnectionFailed) as exc:
            if self.cancelled:
                report.status, report.reason = "failed", f"interrupted: {exc}"
                return self._finish(report, started, conn)
            assert isinstance(exc, ConnectionFailed)
            report.status, report.reason = "unreachable", exc.reason
            if conn is not None:
                _close(conn)
                conn = None
        except (HostLocked, CommandTimeout, BecomeRefused) as exc:
            report.status, report.reason = "failed", str(exc)
        except Exception as exc:  # a plugin bug must not take the other hosts down
            report.status, report.reason = "failed", f"internal error: {type(exc).__name__}: {exc}"
        return self._finish(report, started, conn)

    def _verifies(self, report: HostReport) -> bool:
        return self.mode == "apply" and self.verifier is not None and bool(report.steps)

    def _release(self, conn: Connection) -> None:
        with self._lock:
            self._open.pop(conn, None)
        _close(conn)

    def _finish(
        self, report: HostReport, started: float, conn: Connection | None
    ) -> tuple[HostReport, Connection | None]:
        report.duration = time.monotonic() - started
        self.on_event(report.host, report.status)
        self.on_record("host_done", report)
        return report, conn

    def _verify(
        self, jobs: Sequence[Job], reports: list[HostReport], connections: dict[str, Connection]
    ) -> None:
        by_name = {h.host: h for h in reports}
        targets = [  # a host never checked (sudo refused, a hung probe) is not verified either
            (job.target, job.spec, connections[job.target.host.name])
            for job in jobs
            if job.target.host.name in connections
            and by_name[job.target.host.name].status != "unreachable"
            and by_name[job.target.host.name].steps
        ]
        assert self.verifier is not None
        outcomes = self.verifier(targets)  # also when empty: it ends the batch's verify
        for host, results in outcomes.items():
            host_report = by_name[host]
            host_report.verify = list(results)
            if any(r.outcome in ("failed", "error") for r in results):
                host_report.status = "failed"
                host_report.reason = host_report.reason or "verify failed"
            self.on_record("verified", host_report)


def _close(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()
