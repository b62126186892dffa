"""The coordinator's side: workers' answers as host reports, and which sites are served."""

from __future__ import annotations

from typing import Any

from opsfix.cluster import coordinator
from opsfix.cluster.coordinator import _served, _Task, host_report


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

    def __call__(self, timeout: float) -> Inspect:
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
