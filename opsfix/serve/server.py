"""Putting the server together and running it under uvicorn (TLS when given a cert/key).

uvicorn turns SIGTERM and SIGINT into a graceful shutdown: it stops accepting, lets the
requests in flight finish, then the application's shutdown cuts the queued runs
(recorded in history as not attempted, with the reason) and waits for the run under way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsfix.errors import InputError, OptionsError
from opsfix.serve.answer import Answers
from opsfix.serve.app import Guards, build_app
from opsfix.serve.dispatch import Dispatcher
from opsfix.serve.execute import EngineExecutor, RunSettings
from opsfix.serve.logs import JsonLog
from opsfix.serve.metrics import ServeMetrics
from opsfix.serve.reportfiles import ReportFiles
from opsfix.serve.rules import Rule, Rules
from opsfix.serve.targets import inventory_host

__all__ = ["Listen", "Server", "assemble", "serve"]


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @classmethod
    def parse(cls, text: str, cert: Path | None, key: Path | None) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise OptionsError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9095")
        if (cert is None) != (key is None):
            raise OptionsError("--tls-cert and --tls-key go together")
        for option, path in (("--tls-cert", cert), ("--tls-key", key)):
            if path is not None and not path.is_file():
                raise OptionsError(f"{option} {path}: no such file")
        return cls(host.strip("[]") or "127.0.0.1", int(port), cert, key)


@dataclass
class Server:
    """Everything `opsfix serve` runs: the app and the parts tests reach into."""

    app: Any
    dispatcher: Dispatcher
    metrics: ServeMetrics
    log: Any


def assemble(rules: Rules, settings: RunSettings, guards: Guards, log: Any = None) -> Server:
    log = log or JsonLog()
    metrics: ServeMetrics | None = None

    def emit(event: str, **fields: Any) -> None:
        log(event, **fields)
        if metrics is not None:
            metrics.event(event, fields)

    answers = Answers(rules, emit) if (rules.alertmanager or rules.notify) else None
    reports = ReportFiles(rules.reports_dir, rules.report_url) if rules.reports_dir else None
    executor = EngineExecutor(settings, answers, emit=emit, reports=reports)
    dispatcher = Dispatcher(rules, executor, _resolver(settings.inventory, emit), emit=emit)
    metrics = ServeMetrics(dispatcher.depth)
    app = build_app(dispatcher, metrics, guards, emit)
    return Server(app, dispatcher, metrics, log)


def _resolver(inventory: tuple[Path, ...], emit: Any) -> Any:
    """An alert's host label to the name of a host the rule may target: in the playbook's
    hosts and the rule's `limit`. The inventory is read anew for each alert."""

    def resolve(rule: Rule, value: str) -> str | None:
        from opsfix.inventory import load_inventory

        try:
            inv = load_inventory(list(inventory))
            hosts = inv.select(rule.hosts)
            if rule.limit:
                hosts = inv.select(rule.limit, within=hosts)
        except InputError as exc:
            emit("inventory_error", rule=rule.name, error=str(exc))
            return None
        return inventory_host(value, hosts)

    return resolve


def serve(server: Server, listen: Listen) -> None:
    """Run until SIGTERM/SIGINT."""
    import uvicorn

    config = uvicorn.Config(
        server.app,
        host=listen.host,
        port=listen.port,
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    scheme = "https" if listen.tls_cert else "http"
    server.log("listening", url=f"{scheme}://{listen.host}:{listen.port}/alerts")
    uvicorn.Server(config).run()
