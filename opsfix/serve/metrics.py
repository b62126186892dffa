"""The server's Prometheus metrics, on `/metrics`.

- `opsfix_serve_alerts_received_total{status,action}`: alerts by their status (firing,
  resolved) and what opsfix did (queued, joined, cancelled, ignored, refused, done)
- `opsfix_serve_runs_total{rule,outcome}`: hosts run by rule and outcome (repaired,
  healthy, failed, deferred, unreachable, not_attempted, error)
- `opsfix_serve_queue_depth`: alerts waiting for their run
- `opsfix_serve_time_to_repair_seconds{rule}`: from the alert's `startsAt` to the host
  repaired and verified
- `opsfix_serve_requests_total{code}`: webhook requests by HTTP status (401, 413, 429 ...)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServeMetrics"]

BUCKETS = (1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, float("inf"))


class ServeMetrics:
    def __init__(self, depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "opsfix_serve_alerts_received",
            "Alerts received, by status and what opsfix did",
            ["status", "action"],
            registry=self.registry,
        )
        self.runs = Counter(
            "opsfix_serve_runs",
            "Hosts run by rule and outcome",
            ["rule", "outcome"],
            registry=self.registry,
        )
        self.queue = Gauge(
            "opsfix_serve_queue_depth", "Alerts waiting for their run", registry=self.registry
        )
        self.queue.set_function(lambda: float(depth()))
        self.repair = Histogram(
            "opsfix_serve_time_to_repair_seconds",
            "From the alert's startsAt to the host repaired and verified",
            ["rule"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "opsfix_serve_requests",
            "Webhook requests by HTTP status",
            ["code"],
            registry=self.registry,
        )

    def event(self, event: str, fields: dict[str, Any]) -> None:
        if event == "alert":
            self.alerts.labels(fields["status"], fields["action"]).inc()
        elif event == "run_finished":
            self.runs.labels(fields["rule"], fields["status"]).inc()
            if fields.get("time_to_repair") is not None:
                self.repair.labels(fields["rule"]).observe(fields["time_to_repair"])
        elif event == "runs_cut":
            self.runs.labels(fields["rule"], "not_attempted").inc(len(fields["hosts"]))

    def text(self) -> bytes:
        return generate_latest(self.registry)
