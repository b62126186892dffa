"""The dispatcher's semantics, with an executor that records what it was asked to run
(the runs themselves are tested on lab hosts: tests/integration/test_serve_*.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from opsfix.serve.dispatch import Dispatcher, HostResult, Work
from opsfix.serve.limits import Limits
from opsfix.serve.payload import Notification
from opsfix.serve.rules import Rule, Rules, load_rules

REPO = Path(__file__).parents[3]


class Recorder:
    """Runs nothing: blocks each run until released, and answers with `status`."""

    def __init__(self, status: str = "repaired") -> None:
        self.status = status
        self.runs: list[tuple[str, list[str]]] = []
        self.cut_hosts: list[str] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def run(self, rule: Rule, works: list[Work]) -> dict[str, HostResult]:
        self.runs.append((rule.name, [w.host for w in works]))
        self.started.set()
        self.release.wait(10)
        return {w.host: HostResult(self.status, run_id="r1") for w in works}

    def cut(self, rule: Rule, works: list[Work], reason: str) -> None:
        self.cut_hosts += [w.host for w in works]


def rules(tmp_path: Path, concurrency: int = 4, per_hour: int = 3) -> Rules:
    path = tmp_path / "alerts.yml"
    path.write_text(
        f"playbook_dirs: [{REPO / 'playbooks'}]\n"
        "rules:\n"
        "  - name: web-down\n"
        "    match: {alertname: Down}\n"
        "    playbook: nginx_recovery.yml\n"
        f"    limits: {{concurrency: {concurrency}, runs_per_host_per_hour: {per_hour},"
        " cooldown: 1m}\n"
    )
    return load_rules(path)


def note(*alerts: tuple[str, str, str]) -> Notification:
    """Alerts as (host, fingerprint, status)."""
    return Notification.model_validate(
        {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "Down", "instance": f"{host}:80"},
                    "startsAt": "2026-01-01T00:00:00Z",
                    "fingerprint": fp,
                }
                for host, fp, status in alerts
            ],
        }
    )


def dispatcher(tmp_path: Path, executor: Recorder, **kw: Any) -> Dispatcher:
    clock = [1000.0]
    d = Dispatcher(
        rules(tmp_path, **kw),
        executor,
        lambda rule, value: value.split(":")[0] if value.startswith("web") else None,
        limits=Limits(clock=lambda: clock[0]),
    )
    d.start()
    return d


def actions(d: Dispatcher, *alerts: tuple[str, str, str]) -> list[str]:
    return [x.action for x in d.receive(note(*alerts))]


def test_repeats_join_and_one_run_takes_many_hosts(tmp_path: Path) -> None:
    ex = Recorder()
    d = dispatcher(tmp_path, ex, concurrency=1)
    assert actions(d, ("web1", "a", "firing")) == ["queued"]
    assert ex.started.wait(5)
    assert actions(d, ("web1", "a", "firing")) == ["joined"]
    assert actions(d, ("web1", "other", "firing")) == ["joined"]  # same rule and host
    assert actions(d, ("web2", "b", "firing"), ("web3", "c", "firing")) == ["queued", "queued"]
    assert d.depth() == 2
    ex.release.set()
    assert d.wait_idle(5)
    assert ex.runs == [("web-down", ["web1"]), ("web-down", ["web2"]), ("web-down", ["web3"])]


def test_a_run_takes_queued_hosts_up_to_the_concurrency(tmp_path: Path) -> None:
    ex = Recorder()
    d = dispatcher(tmp_path, ex, concurrency=2)
    actions(d, ("web1", "a", "firing"))
    assert ex.started.wait(5)
    actions(d, ("web2", "b", "firing"), ("web3", "c", "firing"), ("web4", "d", "firing"))
    ex.release.set()
    assert d.wait_idle(5)
    assert ex.runs == [
        ("web-down", ["web1"]),
        ("web-down", ["web2", "web3"]),
        ("web-down", ["web4"]),
    ]


def test_resolved_cancels_only_a_queued_run(tmp_path: Path) -> None:
    ex = Recorder()
    d = dispatcher(tmp_path, ex, concurrency=1)
    actions(d, ("web1", "a", "firing"), ("web2", "b", "firing"))
    assert ex.started.wait(5)
    assert actions(d, ("web2", "b", "resolved")) == ["cancelled"]
    assert actions(d, ("web1", "a", "resolved")) == ["ignored"]  # under way: it finishes
    ex.release.set()
    assert d.wait_idle(5)
    assert ex.runs == [("web-down", ["web1"])]


def test_a_repaired_alert_resent_runs_nothing_and_limits_refuse(tmp_path: Path) -> None:
    ex = Recorder()
    ex.release.set()
    d = dispatcher(tmp_path, ex, per_hour=2)
    actions(d, ("web1", "a", "firing"))
    assert d.wait_idle(5)
    assert actions(d, ("web1", "a", "firing")) == ["done"]
    actions(d, ("web1", "b", "firing"))
    assert d.wait_idle(5)
    refused = d.receive(note(("web1", "c", "firing")))[0]
    assert refused.action == "refused" and "runs_per_host_per_hour: 2" in refused.detail
    assert len(ex.runs) == 2


def test_unmatched_and_unknown_hosts_are_ignored(tmp_path: Path) -> None:
    d = dispatcher(tmp_path, Recorder())
    decision = d.receive(note(("db1", "z", "firing")))[0]
    assert decision.action == "ignored" and "names no host" in decision.detail
    other = note(("web1", "a", "firing")).model_dump()
    other["alerts"][0]["labels"]["alertname"] = "Other"
    decision = d.receive(Notification.model_validate(other))[0]
    assert decision.action == "ignored" and "no rule" in decision.detail


def test_stop_cuts_the_queue_and_lets_the_run_finish(tmp_path: Path) -> None:
    ex = Recorder()
    d = dispatcher(tmp_path, ex, concurrency=1)
    actions(d, ("web1", "a", "firing"), ("web2", "b", "firing"))
    assert ex.started.wait(5)
    threading.Timer(0.3, ex.release.set).start()
    cut = d.stop(5, "stopping")
    assert [w.host for w in cut] == ["web2"] and ex.cut_hosts == ["web2"]
    assert ex.runs == [("web-down", ["web1"])]
    assert actions(d, ("web3", "c", "firing")) == ["refused"]


def test_a_failed_run_cools_down(tmp_path: Path) -> None:
    ex = Recorder("failed")
    ex.release.set()
    d = dispatcher(tmp_path, ex)
    actions(d, ("web1", "a", "firing"))
    assert d.wait_idle(5)
    refused = d.receive(note(("web1", "b", "firing")))[0]
    assert refused.action == "refused" and "cool-down" in refused.detail


def test_truncated_alerts_are_logged(tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    d = Dispatcher(
        rules(tmp_path),
        Recorder(),
        lambda rule, value: None,
        emit=lambda event, **fields: events.append((event, fields)),
    )
    doc = note(("db1", "z", "firing")).model_dump(mode="json")
    d.receive(Notification.model_validate({**doc, "truncatedAlerts": 3}))
    assert events[0][0] == "alerts_truncated" and events[0][1]["count"] == 3
