"""A worker's side of a task: check it, unpack its bundle, run its one host, answer.

The host runs through the runner's normal path (opsfix.runner.run_playbook), with the
playbook from the bundle and an inventory of that host and its peers, so it is checked,
repaired, re-checked and verified exactly as a local run would: the same transaction
journal and host lock, the same recovery of a run that died mid-change. The answer is
the host's report in the JSON form history keeps, secrets masked on the worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsfix.cluster import bundle
from opsfix.cluster.bundle import TaskRefused
from opsfix.cluster.message import FORMAT, OPTIONS, inventory_doc
from opsfix.cluster.signing import ClusterKey
from opsfix.secret import Secret

log = logging.getLogger("opsfix.worker")


@dataclass
class WorkerSettings:
    """What a worker knows of its own: never sent by the coordinator."""

    key: ClusterKey
    cache: Path  # unpacked bundles, by sha256
    name: str = field(default_factory=socket.gethostname)
    ssh_config: Path | None = None
    known_hosts: list[str] = field(default_factory=list)
    trust_new_host_keys: bool = False
    become_password: Secret | None = None


def run_task(settings: WorkerSettings, message: Any) -> dict[str, Any]:
    """One task to its answer: {"host": report data} or {"refused": why}, with the
    worker's name. Never raises for a bad task: the coordinator must hear why."""
    try:
        env, made = _accepted(settings, message)
    except TaskRefused as exc:
        log.warning("task refused: %s", exc)
        return {"refused": str(exc), "worker": settings.name}
    name = env["host"]["name"]
    log.info("host %s: %s (run %s)", name, env["mode"], env["run_id"])
    try:
        data = _run_host(settings, env, made, bundle.unpack(made, settings.cache))
    except Exception as exc:  # bad input that passed the coordinator, a full disk...
        log.warning("host %s: %s", name, _masked(settings, f"{type(exc).__name__}: {exc}"))
        return {"error": _masked(settings, str(exc)), "worker": settings.name}
    log.info("host %s: %s", name, data["status"])
    return {"host": data, "worker": settings.name}


def _masked(settings: WorkerSettings, text: str) -> str:
    from opsfix.evidence.output import redact

    secret = settings.become_password
    return redact(text, [secret.reveal()] if secret else [])


def _accepted(settings: WorkerSettings, message: Any) -> tuple[dict[str, Any], bundle.Bundle]:
    if not isinstance(message, dict):
        raise TaskRefused("the task is not an opsfix task")
    env = message.get("envelope")
    settings.key.verify(env, message.get("signature"))
    assert isinstance(env, dict)
    if env.get("format") != FORMAT:
        raise TaskRefused(f"task format {env.get('format')!r} is not {FORMAT!r}")
    return env, bundle.load(message.get("bundle"), str(env.get("bundle_sha256")))


def _run_host(
    settings: WorkerSettings, env: dict[str, Any], made: bundle.Bundle, root: Path
) -> dict[str, Any]:
    from opsfix.evidence import history, output
    from opsfix.runner import RunRequest, run_playbook

    options = env["options"]
    request = RunRequest(
        playbook=root / made.playbook,
        inventory=[],  # the task's own, below
        mode=env["mode"],
        limit=env["host"]["name"],
        forks=1,
        extra_vars=[json.dumps(env["extra_vars"])] if env["extra_vars"] else [],
        plugin_dirs=[root / d for d in made.plugin_dirs],
        ssh_config=settings.ssh_config,
        known_hosts=settings.known_hosts,
        trust_new_host_keys=settings.trust_new_host_keys,
        become_password=settings.become_password,
        **{key: options[key] for key in OPTIONS},
    )
    report, _warnings, secrets = run_playbook(
        request, loaded=_loaded(request, made.sha256), inventory=task_inventory(env)
    )
    [host] = output.to_data(history.masked(report, secrets))["hosts"]
    return dict(host)


_LOADED: dict[str, Any] = {}  # bundle sha256 -> its runner.Loaded, in this pool process
LOADED_KEPT = 4  # bundles whose playbooks stay loaded (one per concurrent run, roughly)


def _loaded(request: Any, sha256: str) -> Any:
    """The bundle's plugins, playbook and templates, loaded once per pool process: a
    bundle is content named by its hash, so what loads from it never changes."""
    from opsfix.runner import load

    if sha256 not in _LOADED:
        while len(_LOADED) >= LOADED_KEPT:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[sha256] = load(request)
    return _LOADED[sha256]


def task_inventory(env: dict[str, Any]) -> Any:
    """The inventory of the task's host and its peers, read from the envelope as an
    inventory file of that content would be (nothing else is read with it: no
    group_vars/ or host_vars/ of anyone else's)."""
    from opsfix.inventory.draft import InventoryDraft
    from opsfix.inventory.resolve import resolve
    from opsfix.inventory.yaml_source import read_yaml

    draft = InventoryDraft()
    read_yaml(inventory_doc(env), f"task of run {env['run_id']}", draft)
    return resolve(draft)


def default_cache() -> Path:
    from opsfix.evidence.statedir import state_dir

    return state_dir() / "cluster" / "bundles"


PRELOAD = (
    "opsfix.runner",
    "opsfix.inventory",
    "opsfix.inventory.targeting",
    "opsfix.transport.ssh",
    "opsfix.transport.settings",
    "opsfix.transport.connection_vars",
    "opsfix.evidence.history",
    "opsfix.verify",
)


def preload() -> None:
    """What a host's run imports, imported once in the worker's main process: Celery
    forks its pool from it, so no pool process pays for paramiko, pydantic, pytest and
    the built-in plugins again (about a second of CPU each)."""
    import importlib

    from opsfix.registry import freeze_packages, load_registry

    for module in PRELOAD:
        importlib.import_module(module)
    freeze_packages()
    load_registry([])


_SETTINGS: list[WorkerSettings] = []  # set before Celery forks its pool: children inherit


POOL_NICENESS = 5


def _yield_to_the_dispatcher(**_: Any) -> None:
    """Pool processes run below the worker's main process: on a busy machine the one
    process that fetches tasks and hands them out must not wait behind the hosts' work,
    or the pool idles while tasks wait in the broker."""
    os.nice(POOL_NICENESS)


def serve(broker: str, settings: WorkerSettings, queues: list[str], concurrency: int) -> None:
    """Run the Celery worker until it is stopped (SIGTERM: running hosts finish first)."""
    from celery.signals import worker_process_init

    from opsfix.cluster.app import TASK, make_app
    from opsfix.evidence.statedir import private_folder

    private_folder(settings.cache)  # bundles are code this worker runs: its folder alone
    _SETTINGS[:] = [settings]
    preload()
    app = make_app(broker)
    worker_process_init.connect(_yield_to_the_dispatcher, weak=False)
    # the host's outcome is logged as one line (run_task); Celery's own "succeeded" line
    # would format the whole report again for every task, and paramiko's INFO lines
    # (connected, authenticated) add three more per host
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("paramiko").setLevel(logging.WARNING)

    @app.task(name=TASK)
    def run_host(message: Any) -> dict[str, Any]:
        return run_task(_SETTINGS[0], message)

    app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            f"--concurrency={concurrency}",
            f"--hostname={settings.name}@{socket.gethostname()}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
