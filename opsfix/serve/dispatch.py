"""What an alert does: queue a run, join one, cancel one, or nothing (and why).

- A `firing` alert for which a rule matches and whose label names an inventory host
  queues a run of the rule's playbook on that host.
- One alert (by fingerprint) never runs twice at once: a repeat while its run is queued
  or under way joins it, as does another alert of the same rule for the same host.
- A repeat of an alert whose run already repaired it (same fingerprint and `startsAt`)
  runs nothing: Alertmanager resends until the next evaluation sees the host healthy.
- A `resolved` alert cancels its run while it is still queued; a run under way finishes.
- Per rule and host, `Limits` may refuse a run (runs per hour, cool-down after failure).

One run goes at a time, on one worker thread: the engine's verify step runs pytest
in-process, which is one per process. A run takes the queued alerts of its rule, up to
the rule's `concurrency` hosts, and repairs those hosts together (in parallel, as
`opsfix apply --limit a:b` does), so an outage of many hosts is one run, not a queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from opsfix.serve.limits import Limits
from opsfix.serve.payload import Alert, Notification
from opsfix.serve.rules import Rule, Rules

__all__ = ["Decision", "Dispatcher", "Executor", "HostResult", "Work"]

Action = Literal["queued", "joined", "cancelled", "ignored", "refused", "done"]
OK = ("healthy", "repaired")
DONE_FOR = 600.0  # seconds a repaired alert's repeats are answered from its run


@dataclass
class Work:
    """One alert asking for a run of `rule` on `host`."""

    rule: Rule
    host: str
    alert: Alert
    received: float
    joined: int = 0  # repeats (and same-host alerts) that joined this run

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint


@dataclass(frozen=True)
class HostResult:
    status: str  # a host status of the run (healthy, repaired, failed, deferred, ...)
    reason: str = ""
    run_id: str | None = None
    finished: float = field(default_factory=time.time)
    time_to_repair: float | None = None  # from the alert's startsAt, when repaired
    report: str | None = None  # the incident report's file or address, if written

    @property
    def ok(self) -> bool:
        return self.status in OK


@dataclass(frozen=True)
class Decision:
    fingerprint: str
    action: Action
    detail: str
    rule: str | None = None
    host: str | None = None


class Executor(Protocol):
    def run(self, rule: Rule, works: list[Work]) -> dict[str, HostResult]:
        """Run the rule's playbook on the works' hosts; a result per host."""
        ...

    def cut(self, rule: Rule, works: list[Work], reason: str) -> None:
        """Record runs that will not happen (the server stops)."""


Resolve = Callable[[Rule, str], "str | None"]
Emit = Callable[..., None]


class Dispatcher:
    def __init__(
        self,
        rules: Rules,
        executor: Executor,
        resolve: Resolve,
        *,
        limits: Limits | None = None,
        emit: Emit | None = None,
    ) -> None:
        self.rules, self.executor, self.resolve = rules, executor, resolve
        self.limits = limits or Limits()
        self.emit = emit or (lambda event, **fields: None)
        self._cond = threading.Condition()
        self._queue: list[Work] = []
        self._running: list[Work] = []
        self._done: dict[str, tuple[str, HostResult]] = {}  # fingerprint -> (startsAt, result)
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="serve-runs", daemon=True)

    def start(self) -> None:
        self._worker.start()

    # -- alerts in ------------------------------------------------------------------

    def receive(self, notification: Notification) -> list[Decision]:
        received = time.time()
        if notification.truncatedAlerts:
            self.emit(
                "alerts_truncated",
                count=notification.truncatedAlerts,
                hint="Alertmanager's max_alerts cut them; set it to 0 for opsfix",
            )
        decisions = [self._decide(alert, received) for alert in notification.alerts]
        for alert, d in zip(notification.alerts, decisions, strict=True):
            self.emit(
                "alert",
                status=alert.status,
                alertname=alert.name,
                fingerprint=d.fingerprint,
                action=d.action,
                detail=d.detail,
                rule=d.rule,
                host=d.host,
            )
        return decisions

    def _decide(self, alert: Alert, received: float) -> Decision:
        fp = alert.fingerprint
        rule = self.rules.rule_for(alert.labels)
        if rule is None:
            return Decision(fp, "ignored", "no rule matches the alert's labels")
        if alert.status == "resolved":
            return self._resolved(alert, rule)
        return self._firing(alert, rule, received)

    def _firing(self, alert: Alert, rule: Rule, received: float) -> Decision:
        fp = alert.fingerprint
        value = alert.labels.get(rule.host_label, "")
        host = self.resolve(rule, value)
        if host is None:
            why = f"label {rule.host_label}={value!r} names no host the rule may target"
            return Decision(fp, "ignored", why, rule.name)
        with self._cond:
            if self._stopping:
                return Decision(fp, "refused", "the server is stopping", rule.name, host)
            same = self._active(fp, rule.name, host)
            if same is not None:
                same.joined += 1
                state = "under way" if same in self._running else "queued"
                return Decision(
                    fp, "joined", f"joined the run {state} for {same.host}", rule.name, host
                )
            done = self._repaired(alert)
            if done is not None:
                why = f"already {done.status} by run {done.run_id}"
                return Decision(fp, "done", why, rule.name, host)
            refusal = self.limits.refusal(
                rule.name, host, rule.runs_per_host_per_hour, rule.cooldown
            )
            if refusal:
                return Decision(fp, "refused", refusal, rule.name, host)
            self._queue.append(Work(rule, host, alert, received))
            self._cond.notify_all()
        return Decision(fp, "queued", f"run of {rule.playbook.name} on {host}", rule.name, host)

    def _resolved(self, alert: Alert, rule: Rule) -> Decision:
        fp = alert.fingerprint
        with self._cond:
            queued = [w for w in self._queue if w.fingerprint == fp]
            for work in queued:
                self._queue.remove(work)
            running = any(w.fingerprint == fp for w in self._running)
        if queued:
            return Decision(
                fp, "cancelled", "resolved before its run started", rule.name, queued[0].host
            )
        if running:
            return Decision(
                fp, "ignored", "resolved while its run is under way (it finishes)", rule.name
            )
        return Decision(fp, "ignored", "resolved; no run queued", rule.name)

    def _repaired(self, alert: Alert) -> HostResult | None:
        """The result of the run that repaired this very alert lately (call locked)."""
        done = self._done.get(alert.fingerprint)
        if done is None or done[0] != alert.startsAt.isoformat() or not done[1].ok:
            return None
        return done[1] if time.time() - done[1].finished < DONE_FOR else None

    def _remember(self, work: Work, result: HostResult) -> None:
        """Keep the run's result for repeats of its alert (call locked); forget old ones."""
        stale = [fp for fp, (_, r) in self._done.items() if r.finished < result.finished - DONE_FOR]
        for fp in stale:
            del self._done[fp]
        self._done[work.fingerprint] = (work.alert.startsAt.isoformat(), result)

    def _active(self, fp: str, rule: str, host: str) -> Work | None:
        for work in (*self._running, *self._queue):
            if work.fingerprint == fp or (work.rule.name == rule and work.host == host):
                return work
        return None

    # -- runs -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                rule, batch = self._take()
                self._running = batch
            self._run(rule, batch)

    def _take(self) -> tuple[Rule, list[Work]]:
        """The oldest alert's rule, with its queued alerts on distinct hosts (at most the
        rule's concurrency). Call with the lock held."""
        rule = self._queue[0].rule
        batch: list[Work] = []
        for work in list(self._queue):
            fits = work.rule is rule and len(batch) < rule.concurrency
            if fits and all(w.host != work.host for w in batch):
                batch.append(work)
                self._queue.remove(work)
        for work in batch:
            self.limits.started(rule.name, work.host)
        return rule, batch

    def _run(self, rule: Rule, batch: list[Work]) -> None:
        self.emit("run_started", rule=rule.name, hosts=[w.host for w in batch])
        try:
            results = self.executor.run(rule, batch)
        except Exception as exc:  # a bug or a broken state folder: the server stays up
            results = {w.host: HostResult("error", f"{type(exc).__name__}: {exc}") for w in batch}
        with self._cond:
            for work in batch:
                result = results.get(work.host) or HostResult("error", "no result for the host")
                self.limits.finished(rule.name, work.host, result.ok)
                self._remember(work, result)
                self.emit(
                    "run_finished",
                    rule=rule.name,
                    host=work.host,
                    status=result.status,
                    reason=result.reason,
                    run_id=result.run_id,
                    fingerprint=work.fingerprint,
                    joined=work.joined,
                    time_to_repair=result.time_to_repair,
                    seconds_from_received=round(result.finished - work.received, 3),
                )
            self._running = []
            self._cond.notify_all()

    # -- state and shutdown -------------------------------------------------------------

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def snapshot(self) -> dict[str, Any]:
        def show(work: Work) -> dict[str, Any]:
            return {
                "rule": work.rule.name,
                "host": work.host,
                "fingerprint": work.fingerprint,
                "joined": work.joined,
            }

        with self._cond:
            return {
                "queued": [show(w) for w in self._queue],
                "running": [show(w) for w in self._running],
            }

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (tests, and the drain on shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, drain: float, reason: str) -> list[Work]:
        """Cut what is queued (recorded), let the run under way finish within `drain`
        seconds; the works that were cut."""
        with self._cond:
            self._stopping = True
            cut, self._queue = list(self._queue), []
            running = list(self._running)
            self._cond.notify_all()
        by_rule: dict[str, list[Work]] = {}
        for work in cut:
            by_rule.setdefault(work.rule.name, []).append(work)
        for works in by_rule.values():
            self.executor.cut(works[0].rule, works, reason)
            self.emit(
                "runs_cut", rule=works[0].rule.name, hosts=[w.host for w in works], reason=reason
            )
        if self._worker.is_alive():
            self._worker.join(drain)
            if self._worker.is_alive():
                self.emit("drain_timeout", hosts=[w.host for w in running], seconds=drain)
        return cut
