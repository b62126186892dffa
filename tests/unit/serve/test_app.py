"""The HTTP surface, in-process (Starlette's TestClient): refusals in order, answers, and
the endpoints beside the webhook. Runs are recorded, not made (tests/integration make
them on lab hosts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from opsfix.serve.app import Guards, build_app
from opsfix.serve.dispatch import Dispatcher
from opsfix.serve.guard import Credentials, RateLimiter
from opsfix.serve.metrics import ServeMetrics

from .test_dispatch import Recorder, rules

TOKEN = "t" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def body(fp: str = "a1", instance: str = "web1:80") -> dict[str, object]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Down", "instance": instance},
                "startsAt": "2026-01-01T00:00:00Z",
                "fingerprint": fp,
            }
        ],
    }


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Recorder]]:
    executor = Recorder()
    executor.release.set()
    dispatcher = Dispatcher(
        rules(tmp_path), executor, lambda rule, value: value.split(":")[0] or None
    )
    metrics = ServeMetrics(dispatcher.depth)
    guards = Guards(Credentials(f"Bearer {TOKEN}".encode(), "Bearer"), 2048, RateLimiter(50, 20))
    app = build_app(dispatcher, metrics, guards, lambda event, **fields: None)
    with TestClient(app) as test_client:
        yield test_client, executor


def test_an_alert_is_answered_with_its_decision(client: tuple[TestClient, Recorder]) -> None:
    http, _ = client
    answer = http.post("/alerts", json=body(), headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["alerts"][0] | {"detail": ""} == {
        "fingerprint": "a1",
        "action": "queued",
        "detail": "",
        "rule": "web-down",
        "host": "web1",
    }


def test_refusals_run_nothing(client: tuple[TestClient, Recorder]) -> None:
    http, executor = client
    assert http.post("/alerts", json=body()).status_code == 401
    assert (
        http.post("/alerts", json=body(), headers={"Authorization": "Bearer x"}).status_code == 401
    )
    challenge = http.post("/alerts", json=body()).headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert http.post("/alerts", content=b"{", headers=AUTH).status_code == 400
    big = json.dumps({**body(), "pad": "x" * 4096})
    assert http.post("/alerts", content=big, headers=AUTH).status_code == 413
    assert http.get("/status").status_code == 401
    assert executor.runs == []


def test_health_metrics_status_and_rate_limit(client: tuple[TestClient, Recorder]) -> None:
    http, _ = client
    assert http.get("/healthz").json() == {"status": "ok", "queued": 0, "running": 0}
    assert http.get("/status", headers=AUTH).json() == {"queued": [], "running": []}
    metrics = http.get("/metrics").text
    assert "opsfix_serve_queue_depth 0.0" in metrics
    codes = [http.post("/alerts", json=body()).status_code for _ in range(40)]
    assert 429 in codes
    assert 'opsfix_serve_requests_total{code="429"}' in http.get("/metrics").text
