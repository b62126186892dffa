"""A rule's run: the same engine as `opsfix apply`, in this process, recorded in history.

The run takes the host locks, asks the flap guard and the maintenance windows, and keeps
its evidence exactly as `opsfix apply --limit HOST` would; history records it with the
alerts that started it (labels, fingerprint, `startsAt`, when opsfix received it, the
time from `startsAt` to repaired) under `options.alerts`, and `opsfix show` lists them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsfix.errors import InputError, NoHostsError
from opsfix.evidence.results import HostReport, RunReport
from opsfix.secret import Secret
from opsfix.serve.answer import Answers, summary
from opsfix.serve.dispatch import Emit, HostResult, Work
from opsfix.serve.reportfiles import ReportFiles
from opsfix.serve.rules import Rule

__all__ = ["EngineExecutor", "RunSettings"]


@dataclass(frozen=True)
class RunSettings:
    """What every run of the server connects with (the options `opsfix apply` takes)."""

    inventory: tuple[Path, ...]
    plugin_dirs: tuple[Path, ...] = ()
    ssh_config: Path | None = None
    known_hosts: tuple[str, ...] = ()
    trust_new_host_keys: bool = False
    become_password: Secret | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    rules_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class EngineExecutor:
    def __init__(
        self,
        settings: RunSettings,
        answers: Answers | None = None,
        *,
        emit: Emit | None = None,
        reports: ReportFiles | None = None,
    ) -> None:
        self.settings = settings
        self.answers = answers
        self.emit = emit or (lambda event, **fields: None)
        self.reports = reports

    def run(self, rule: Rule, works: list[Work]) -> dict[str, HostResult]:
        from opsfix.runner import RunRequest, run_playbook

        limit = ":".join(w.host for w in works)
        request = RunRequest(
            playbook=rule.playbook,
            inventory=list(self.settings.inventory),
            mode=rule.mode,
            limit=limit,
            forks=len(works),
            plugin_dirs=list(self.settings.plugin_dirs),
            ssh_config=self.settings.ssh_config,
            known_hosts=list(self.settings.known_hosts),
            trust_new_host_keys=self.settings.trust_new_host_keys,
            become_password=self.settings.become_password,
            connect_timeout=self.settings.connect_timeout,
            command_timeout=self.settings.command_timeout,
            lock_wait=rule.lock_wait,
        )
        silences = _Silences(self.answers, rule, works)
        try:
            report, _warnings, secrets = run_playbook(request, on_event=silences.on_event)
        except (InputError, NoHostsError) as exc:  # the playbook or inventory changed
            return {w.host: HostResult("error", f"nothing ran: {exc}") for w in works}
        finally:
            silences.end()
        run_id, safe, where = self._record(rule, works, report, secrets, limit)
        results = {h.host: _result(h, works, report, run_id, where) for h in safe.hosts}
        if self.answers:
            for work in works:
                host = next((h for h in safe.hosts if h.host == work.host), None)
                result = results.get(work.host)
                if host and result:
                    self.answers.notify(summary(rule, work, host, result))
        return results

    def cut(self, rule: Rule, works: list[Work], reason: str) -> None:
        """Record runs that never started (not_attempted, with the reason)."""
        now = time.time()
        hosts = [HostReport(w.host, "not_attempted", reason) for w in works]
        report = RunReport(rule.playbook.stem, rule.mode, hosts, started=now, finished=now)
        self._record(rule, works, report, [], ":".join(w.host for w in works))

    def _record(
        self, rule: Rule, works: list[Work], report: RunReport, secrets: list[str], limit: str
    ) -> tuple[str | None, RunReport, str | None]:
        """Record the run in history (secrets masked), and write its incident report when
        the rules ask for report files: the run id, the masked report, the report's place."""
        from opsfix.commands.run import exit_code
        from opsfix.evidence import history
        from opsfix.evidence.state import StateError, open_store

        run_id = history.new_run_id(report.started)
        safe = history.masked(report, secrets)
        doc = history.bundle_doc(
            report,
            run_id=run_id,
            playbook_path=rule.playbook,
            options=self._options(rule, works, safe, limit),
            exit_code=exit_code(report),
            secrets=secrets,
        )
        try:
            store = open_store()
            try:
                digest = history.record(store, doc).bundle_sha256
            finally:
                store.close()
        except (StateError, OSError, ValueError) as exc:
            self.emit("history_failed", run_id=run_id, error=str(exc)[:300])
            return None, safe, None
        where = self.reports.write(doc, digest, self.emit) if self.reports else None
        return run_id, safe, where

    def _options(
        self, rule: Rule, works: list[Work], report: RunReport, limit: str
    ) -> dict[str, Any]:
        names = ", ".join(f"{w.alert.name or '?'} on {w.host}" for w in works)
        return {
            "command": "serve",
            "rule": rule.name,
            "rules_file": self.settings.rules_file,
            "limit": limit,
            "dry_run": rule.mode == "dry-run",
            "reason": f"alert firing: {names} (rule {rule.name})",
            "inventory": [str(p) for p in self.settings.inventory],
            "alerts": [_alert_doc(w, report) for w in works],
        }


class _Silences:
    """A run's silences, one per alert: created before the run, each ended as soon as its
    host's run is done (before verify), the rest when the run ends.

    Alertmanager drops the `resolved` notification of an alert that resolves while it is
    silenced (receivers paged earlier would never hear it resolved), so a silence lasts
    no longer than the repair itself: the host's probe cannot succeed before the repair,
    and the next scrape and evaluation come after the host's run is done.
    """

    FINAL = frozenset(("healthy", "repaired", "failed", "unreachable", "deferred"))

    def __init__(self, answers: Answers | None, rule: Rule, works: list[Work]) -> None:
        self.answers = answers
        self.ids: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        if answers is not None:
            for work in works:
                self.ids[work.host] = answers.silence(rule, [work])

    def on_event(self, host: str, what: str) -> None:
        if what in self.FINAL:
            self._end(host)

    def end(self) -> None:
        for host in list(self.ids):
            self._end(host)

    def _end(self, host: str) -> None:
        with self._lock:
            ids = self.ids.pop(host, [])
        if ids and self.answers is not None:
            self.answers.unsilence(ids)


def _alert_doc(work: Work, report: RunReport) -> dict[str, Any]:
    host = next((h for h in report.hosts if h.host == work.host), None)
    starts = work.alert.startsAt.timestamp()
    repaired = host is not None and host.status == "repaired"
    return {
        "host": work.host,
        "alertname": work.alert.name,
        "fingerprint": work.fingerprint,
        "labels": dict(work.alert.labels),
        "starts_at": work.alert.startsAt.astimezone(UTC).isoformat(),
        "received_at": datetime.fromtimestamp(work.received, UTC).isoformat(),
        "seconds_from_received": round(report.finished - work.received, 3),
        "time_to_repair": round(report.finished - starts, 3) if repaired else None,
        "joined": work.joined,
        "status": host.status if host else "not_attempted",
    }


def _result(
    host: HostReport, works: list[Work], report: RunReport, run_id: str | None, where: str | None
) -> Any:
    work = next((w for w in works if w.host == host.host), None)
    ttr = None
    if work is not None and host.status == "repaired":
        ttr = report.finished - work.alert.startsAt.timestamp()
    status, reason = _outcome(host)
    return HostResult(status, reason, run_id, report.finished, ttr, where)


def _outcome(host: HostReport) -> tuple[str, str]:
    """The host's status, except that a host left unhealthy because its repairs wait for
    a maintenance window (or a freeze) is answered as `deferred`, with the gate's reason."""
    deferred = [
        rem.reason for step in host.steps for rem in step.remediations if rem.status == "deferred"
    ]
    if host.status == "failed" and deferred:
        return "deferred", deferred[0]
    return host.status, host.reason
