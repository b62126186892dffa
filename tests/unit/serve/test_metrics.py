"""The server's metrics follow the dispatcher's events."""

from __future__ import annotations

from opsfix.serve.metrics import ServeMetrics


def test_events_count_and_time_to_repair_is_observed() -> None:
    metrics = ServeMetrics(depth=lambda: 3)
    metrics.event("alert", {"status": "firing", "action": "queued"})
    metrics.event("alert", {"status": "firing", "action": "queued"})
    metrics.event("alert", {"status": "resolved", "action": "cancelled"})
    metrics.event("run_finished", {"rule": "web-down", "status": "repaired", "time_to_repair": 8.5})
    metrics.event("run_finished", {"rule": "web-down", "status": "failed", "time_to_repair": None})
    metrics.event("runs_cut", {"rule": "web-down", "hosts": ["web1", "web2"]})
    metrics.requests.labels("401").inc()
    text = metrics.text().decode()
    assert 'opsfix_serve_alerts_received_total{action="queued",status="firing"} 2.0' in text
    assert 'opsfix_serve_alerts_received_total{action="cancelled",status="resolved"} 1.0' in text
    assert 'opsfix_serve_runs_total{outcome="repaired",rule="web-down"} 1.0' in text
    assert 'opsfix_serve_runs_total{outcome="not_attempted",rule="web-down"} 2.0' in text
    assert "opsfix_serve_queue_depth 3.0" in text
    assert 'opsfix_serve_time_to_repair_seconds_bucket{le="10.0",rule="web-down"} 1.0' in text
    assert 'opsfix_serve_time_to_repair_seconds_bucket{le="5.0",rule="web-down"} 0.0' in text
    assert 'opsfix_serve_time_to_repair_seconds_count{rule="web-down"} 1.0' in text
    assert 'opsfix_serve_requests_total{code="401"} 1.0' in text
