"""The coordinator's side: workers' answers as host reports, and which sites are served."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from opsfix.cluster import coordinator
from opsfix.cluster.coordinator import _served, _Task, host_report
from opsfix.errors import OptionsError


def test_a_worker_s_report_becomes_the_host_s_report() -> None:
    data = {
        "host": "web1", "status": "repaired", "reason": "", "duration": 1.5, "notes": ["n"],
        "steps": [{"name": "s", "before": {"check": "c", "status": "failed", "summary": "x",
                   "evidence": {}}, "after": None, "remediations": [], "duration": 0.1}],
        "verify": [],
    }  # fmt: skip
    host = host_report("web1", {"host": data, "worker": "w-east"})
    assert (host.host, host.status, host.notes, host.steps[0].before.status) == (
        "web1", "repaired", ["n"], "failed"
    )  # fmt: skip


def test_a_refusal_or_an_error_fails_the_host_naming_the_worker() -> None:
    refused = host_report("web1", {"refused": "signature does not match", "worker": "w1"})
    assert (refused.status, refused.reason) == (
        "failed", "worker w1 refused the task: signature does not match"
    )  # fmt: skip
    broken = host_report("web2", {"error": "disk full", "worker": "w2"})
    assert (broken.status, broken.reason) == ("failed", "worker w2: disk full")
    lost = host_report("web3", RuntimeError("revoked"))
    assert lost.status == "failed" and "without a report" in lost.reason


class Inspect:
    def __init__(self, answers: list[dict[str, Any]], asked: list[float]) -> None:
        self.answers, self.asked = answers, asked

    def __call__(self, timeout: float, callback: Any = None) -> Inspect:
        self.asked.append(timeout)
        return self

    def active_queues(self) -> dict[str, Any]:
        return self.answers.pop(0)


class App:
    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.asked: list[float] = []
        self.control = type("Control", (), {"inspect": Inspect(answers, self.asked)})()


def task(queue: str) -> _Task:
    return _Task("h", queue, {})


def test_sites_that_answered_at_once_are_not_asked_again() -> None:
    app = App([])
    assert _served(app, {"east": {"w1"}}, [task("east")]) == {"east": {"w1"}}
    assert app.asked == []


def test_a_site_missing_from_the_quick_answer_is_asked_for_longer() -> None:
    app = App([{"w2@m": [{"name": "west"}], "w1@m": [{"name": "east"}]}])
    served = _served(app, {"east": {"w1@m"}}, [task("east"), task("west")])
    assert served == {"east": {"w1@m"}, "west": {"w2@m"}}
    assert app.asked == [coordinator.INSPECT_SECONDS]


class SlowBroadcast:
    """A broadcast whose first worker answers at once and whose wait then lasts until
    the test lets it end."""

    def __init__(self, first: dict[str, Any], later: dict[str, Any]) -> None:
        self.first, self.later = first, later
        self.release = threading.Event()
        self.control = type("Control", (), {"inspect": self.inspect})()

    def inspect(self, timeout: float, callback: Any = None) -> Any:
        def active_queues() -> dict[str, Any]:
            callback(self.first)
            self.release.wait(10)
            callback(self.later)
            return {**self.first, **self.later}

        return type("Inspect", (), {"active_queues": staticmethod(active_queues)})()


def test_a_run_starts_when_its_queues_answered_not_when_the_broadcast_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = SlowBroadcast({"w1@m": [{"name": "east"}]}, {"w2@m": [{"name": "west"}]})
    monkeypatch.setattr("opsfix.cluster.app.make_app", lambda broker: app)
    workers = coordinator._Workers("redis://nowhere")
    got, served = workers.serving({"east"})  # returns while the broadcast still waits
    assert got is app and served == {"east": {"w1@m"}}
    app.release.set()
    assert workers.serving({"east", "north"})[1] == {"east": {"w1@m"}, "west": {"w2@m"}}


def test_a_broker_that_cannot_be_reached_is_said_when_the_run_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(broker: str) -> Any:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr("opsfix.cluster.app.make_app", refuse)
    with pytest.raises(OptionsError, match="cannot reach the broker: connection refused"):
        coordinator._Workers("redis://nowhere").serving({"east"})
