"""The coordinator: a run's hosts as tasks to the workers, reported as a local run.

Everything is loaded and checked here first, as for a local run (bad input: exit 4,
nothing is sent). Then each host becomes one signed task on its site's queue, batch by
batch: `serial` and `max_fail_percentage` are judged here, across all workers, exactly
as the engine judges them, so a failing canary batch stops the rollout everywhere.
Ctrl-C revokes the tasks no worker has started; hosts already running finish there.
"""

from __future__ import annotations

import contextlib
import secrets as random
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from opsfix.cluster import bundle, message, routing
from opsfix.cluster.signing import ClusterKey, load_key
from opsfix.engine import rollout
from opsfix.errors import OptionsError
from opsfix.evidence.results import HostReport, RunReport

_OK = ("healthy", "repaired")
QUICK_INSPECT_SECONDS = 0.3  # how long workers have to say which queues they serve,
INSPECT_SECONDS = 2.0  # and, when one the run needs is missing, the longer second asking
TASK_LIFETIME = 6 * 3600.0  # a task not started by then is refused as expired


@dataclass(frozen=True)
class ClusterOptions:
    broker: str  # redis://host:port/db or amqp://user@host//: passed to Celery as it is
    key_file: Path | None = None  # else $OPSFIX_CLUSTER_KEY_FILE / $OPSFIX_CLUSTER_KEY


@dataclass
class _Task:
    name: str
    queue: str
    body: dict[str, Any]


def run_cluster(
    request: Any,
    cluster: ClusterOptions,
    on_event: Callable[[str, str], None] | None = None,
    on_bound: Callable[[], None] | None = None,
    on_record: Callable[[str, Any], None] | None = None,
) -> tuple[RunReport, list[str], list[str]]:
    """Like opsfix.runner.run_playbook, with the hosts run by workers: the report,
    warnings, and the secret values to mask."""
    from opsfix.runner import prepare, secret_values

    if request.become_password is not None:
        raise OptionsError(
            "--cluster: a become password never travels through the broker; give it to "
            "each worker (OPSFIX_BECOME_PASSWORD or `opsfix worker --become-password-file`)"
        )
    key = load_key(cluster.key_file)
    workers = _Workers(cluster.broker)  # Celery loads and workers answer while hosts bind
    playbook, jobs, warnings = prepare(request)
    if on_bound is not None:
        on_bound()
    secrets = secret_values(playbook, jobs, request)
    if on_record is not None:
        on_record("secrets", secrets)
    tasks = _tasks(request, playbook, jobs, key)
    app, quick = workers.serving({task.queue for task in tasks})
    served = _served(app, quick, tasks)
    sender = _Sender(app, served, on_event or (lambda host, text: None), on_record)
    report = RunReport(playbook=playbook.name, mode=request.mode, started=time.time())
    serial = request.serial or playbook.serial
    limit = request.max_fail_percentage
    if limit is None:
        limit = playbook.max_fail_percentage
    report.hosts = _rollout(sender, rollout.split(tasks, serial), limit)
    report.finished = time.time()
    return report, warnings, secrets


def _tasks(request: Any, playbook: Any, jobs: list[Any], key: ClusterKey) -> list[_Task]:
    """One signed task per host, in the run's host order."""
    from opsfix.engine.fleet import PEER_LIMIT
    from opsfix.inventory import load_inventory
    from opsfix.playbook.variables import parse_extra_vars
    from opsfix.runner import peers_of

    paths = controller_paths(jobs, playbook.base_dir)
    made = bundle.collect(playbook.path, playbook.verify, request.plugin_dirs, paths)
    doc, sha = made.doc(), made.sha256
    if not jobs:
        return []
    inventory = load_inventory(request.inventory)
    extra = parse_extra_vars(request.extra_vars)
    options = {k: getattr(request, k) for k in message.OPTIONS}
    run_id = random.token_hex(6)
    tasks = []
    for job in jobs:
        host = job.target.host
        direct = [n for n, g in inventory.groups.items() if host.name in g.hosts]
        peers = [
            message.entry(p, [g for g in direct if p.name in inventory.groups[g].hosts])
            for p in peers_of(inventory, host)[:PEER_LIMIT]
        ]
        envelope = message.envelope(
            run_id=run_id,
            mode=request.mode,
            host=message.entry(host),
            peers=peers,
            extra_vars=extra,
            options=options,
            bundle_sha256=sha,
            lifetime=TASK_LIFETIME,
        )
        body = {"envelope": envelope, "signature": key.sign(envelope), "bundle": doc}
        tasks.append(_Task(host.name, routing.queue_of(host), body))
    return tasks


def controller_paths(jobs: list[Any], base: Path) -> set[Path]:
    """The controller paths the bound steps' parameters name relative to the playbook's
    folder (a release folder, say): they travel in the bundle. Absolute ones elsewhere
    must exist on the workers at the same place (docs/scale.md)."""
    found: set[Path] = set()
    prefix = str(base) + "/"
    for job in jobs:
        for step in job.target.steps:
            for plugin in (step.check, *step.remediations):
                found.update(p for p in _paths(plugin.params) if str(p).startswith(prefix))
    return {p for p in found if p.exists()}


def _paths(value: Any) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields for p in _paths(getattr(value, name))]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _paths(item)]
    if isinstance(value, list | tuple):
        return [p for item in value for p in _paths(item)]
    return []


class _Workers:
    """Which queues the live workers serve, asked once at start-up (a broadcast their
    answers reach within QUICK_INSPECT_SECONDS) in a thread of its own, while the
    playbook loads. The run starts as soon as every queue it needs has answered, not
    when the broadcast's wait ends."""

    def __init__(self, broker: str) -> None:
        self._served: dict[str, set[str]] = {}
        self._changed = threading.Condition()
        self._app: Any = None
        self._error: Exception | None = None
        self._done = False
        threading.Thread(target=self._ask, args=(broker,), daemon=True).start()

    def _ask(self, broker: str) -> None:
        from opsfix.cluster.app import make_app

        try:
            app = make_app(broker)
            with self._changed:
                self._app = app
            served_queues(app, QUICK_INSPECT_SECONDS, on_answer=self._heard)
        except Exception as exc:  # the broker cannot be reached: said once the hosts are bound
            self._error = OptionsError(f"--cluster: cannot reach the broker: {exc}")
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def _heard(self, served: dict[str, set[str]]) -> None:
        with self._changed:
            for queue, names in served.items():
                self._served.setdefault(queue, set()).update(names)
            self._changed.notify_all()

    def serving(self, needed: set[str]) -> tuple[Any, dict[str, set[str]]]:
        """The app and the queues served so far, once all of `needed` are or the quick
        asking is over."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._done or (self._app is not None and needed <= set(self._served))
            )
            if self._error is not None:
                raise self._error
            return self._app, {q: set(names) for q, names in self._served.items()}


def _served(app: Any, found: dict[str, set[str]], tasks: list[_Task]) -> dict[str, set[str]]:
    """The queues served, asked again for longer when a quick first answer lacked one
    the run needs (a busy worker may answer late: never call its site unserved early)."""
    if {task.queue for task in tasks} <= set(found):
        return found
    later = served_queues(app, INSPECT_SECONDS)
    return {q: found.get(q, set()) | later.get(q, set()) for q in {*found, *later}}


def served_queues(
    app: Any, timeout: float, on_answer: Callable[[dict[str, set[str]]], None] | None = None
) -> dict[str, set[str]]:
    """Queue -> the workers that consume it, as the live workers answer within `timeout`
    (of silence); `on_answer` hears each worker's answer as it comes."""

    def served(answers: dict[str, Any]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for worker, queues in answers.items():
            for queue in queues or []:
                found.setdefault(str(queue.get("name")), set()).add(worker)
        return found

    def heard(answer: Any) -> None:
        if on_answer is not None and isinstance(answer, dict):
            on_answer(served(answer))

    with warnings.catch_warnings():  # two workers of one name: said by the workers' logs
        warnings.simplefilter("ignore")
        answers = app.control.inspect(timeout=timeout, callback=heard).active_queues() or {}
    return served(answers)


def _rollout(sender: _Sender, batches: list[list[_Task]], limit: float | None) -> list[HostReport]:
    hosts: list[HostReport] = []
    stop_reason = ""
    for number, batch in enumerate(batches, start=1):
        if stop_reason:
            hosts += [HostReport(t.name, "not_attempted", reason=stop_reason) for t in batch]
            continue
        results = sender.run_batch(batch)
        hosts += results
        failed = sum(1 for h in results if h.status not in _OK)
        if len(batches) > 1 and rollout.exceeds(failed, len(batch), limit):
            rule = f"max_fail_percentage {limit:g}" if limit is not None else "every host failed"
            stop_reason = (
                f"not attempted: batch {number} had {failed} of {len(batch)} host(s) "
                f"failing ({rule})"
            )
    return hosts


class _Sender:
    """Sends a batch's tasks and gathers their answers as they come."""

    def __init__(
        self,
        app: Any,
        served: dict[str, set[str]],
        on_event: Callable[[str, str], None],
        on_record: Callable[[str, Any], None] | None,
    ) -> None:
        self.app, self.served, self.on_event = app, served, on_event
        self.on_record = on_record or (lambda kind, data: None)

    def run_batch(self, batch: list[_Task]) -> list[HostReport]:
        done: dict[str, HostReport] = {}
        sent: dict[str, _Task] = {}
        for task in batch:
            if task.queue not in self.served:
                done[task.name] = _unserved(task)
                self._done(done[task.name])
            else:
                sent[uuid.uuid4().hex] = task
        try:
            self._send(sent)
            self._gather(sent, done)
        except KeyboardInterrupt:
            self._interrupted(sent, done)
            raise
        return [done[task.name] for task in batch]

    def _send(self, tasks: dict[str, _Task]) -> None:
        """Publish the tasks in the run's order, as one batch: each publish on its own
        waits for the broker's answer, and on a machine busy with the first hosts' work
        100 of them one after another left the last host's task queued 2 s after the
        first. kombu pipelines a batch to Redis in one round trip, in order (a transport
        that cannot batch publishes each at once); a Ctrl-C before it is flushed sends
        none of it."""
        from opsfix.cluster.app import TASK

        if not tasks:
            return
        with self.app.producer_or_acquire() as producer:
            batch = getattr(producer, "batch", None)  # kombu >= 5.7
            with batch() if batch is not None else contextlib.nullcontext():
                for task_id, task in tasks.items():
                    self.app.send_task(
                        TASK, args=[task.body], queue=task.queue, task_id=task_id, producer=producer
                    )
        for task in tasks.values():
            self.on_record("host_started", task.name)
            self.on_event(task.name, f"queued for {task.queue}")

    def _gather(self, sent: dict[str, _Task], done: dict[str, HostReport]) -> None:
        from celery.result import AsyncResult, ResultSet

        def answered(task_id: str, value: Any) -> None:
            task = sent[task_id]
            done[task.name] = host_report(task.name, value)
            self._done(done[task.name])

        results = ResultSet([AsyncResult(i, app=self.app) for i in sent])
        if sent:
            results.join_native(propagate=False, callback=answered, interval=0.05)

    def _done(self, host: HostReport) -> None:
        self.on_event(host.host, host.status)
        self.on_record("host_done", host)

    def _interrupted(self, sent: dict[str, _Task], done: dict[str, HostReport]) -> None:
        """Ctrl-C: tasks not started never will be; those running finish on their
        worker (a change is never cut in the middle). A second Ctrl-C stops waiting."""
        from celery.result import AsyncResult

        waiting = [i for i, t in sent.items() if t.name not in done]
        if not waiting:
            return
        self.app.control.revoke(waiting)
        running = [AsyncResult(i, app=self.app) for i in waiting]
        with contextlib.suppress(KeyboardInterrupt):
            while any(r.state == "STARTED" for r in running):
                time.sleep(0.2)


def _unserved(task: _Task) -> HostReport:
    return HostReport(
        task.name,
        "unreachable",
        reason=f"no worker serves queue {task.queue!r} (opsfix_site); start "
        f"`opsfix worker --queue {task.queue}` where its hosts can be reached",
    )


def host_report(name: str, value: Any) -> HostReport:
    """A worker's answer as the host's report (a refusal or an error: failed)."""
    from opsfix.evidence import history

    if isinstance(value, dict) and isinstance(value.get("host"), dict):
        data = {"playbook": "", "mode": "check", "hosts": [value["host"]]}
        [host] = history.report_from_dict(data).hosts
        return host
    if isinstance(value, dict) and "refused" in value:
        why = f"worker {value.get('worker')} refused the task: {value['refused']}"
        return HostReport(name, "failed", reason=why)
    if isinstance(value, dict) and "error" in value:
        return HostReport(name, "failed", reason=f"worker {value.get('worker')}: {value['error']}")
    return HostReport(name, "failed", reason=f"the task ended without a report: {value!r}")
