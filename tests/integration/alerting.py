"""A real alerting stack on loopback for `opsfix serve`'s end-to-end test and bench:
Debian's `prometheus-blackbox-exporter` probing lab hosts' HTTP, `prometheus` evaluating
`probe_success == 0 for 5s`, `prometheus-alertmanager` routing to `opsfix serve`, and a
small webhook receiver standing in for Slack. Each daemon runs in the foreground on a
free loopback port, with its config and data in a folder of the test's; all stop at the
end (`Stack.stop`). Short intervals: scrape and evaluation 1 s, group_wait 0 s.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

DAEMONS = ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter")
ALERT = "HttpProbeFailing"


def missing_daemons() -> list[str]:
    return [d for d in DAEMONS if shutil.which(d) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
    context: ssl.SSLContext | None = None,
) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return json.loads(response.read())


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """`probe()`'s first true value within `timeout` seconds (errors count as false)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:  # a daemon still starting
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Receiver:
    """A webhook receiver (a Slack stand-in): keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                received.append(json.loads(self.rfile.read(size) or b"null"))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    folder: Path
    targets: dict[str, str]  # lab host -> probed URL
    opsfix_port: int
    token_file: Path
    for_: str = "5s"
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def alertmanager(self) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def start(self) -> None:
        for name in ("blackbox", "alertmanager", "prometheus"):
            self.ports[name] = free_port()
        self._write_configs()
        self._spawn(
            "blackbox",
            "prometheus-blackbox-exporter",
            f"--config.file={self.folder / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{self.ports['blackbox']}",
        )
        self._spawn(
            "alertmanager",
            "prometheus-alertmanager",
            f"--config.file={self.folder / 'alertmanager.yml'}",
            f"--storage.path={self.folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
            "--cluster.listen-address=",
        )
        self._spawn(
            "prometheus",
            "prometheus",
            f"--config.file={self.folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.folder / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
        )
        wait_for("alertmanager", lambda: get_json(f"{self.alertmanager}/api/v2/status"), 30)
        wait_for("every probe to succeed once", self._all_probed_up, 60)

    def _all_probed_up(self) -> bool:
        data = get_json(f"{self.prometheus}/api/v1/query?query=probe_success")
        values = {r["metric"]["instance"]: r["value"][1] for r in data["data"]["result"]}
        return all(values.get(url) == "1" for url in self.targets.values())

    def _spawn(self, name: str, *argv: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # -- what the alerting world says ------------------------------------------------

    def alerts(self, host: str) -> list[dict[str, Any]]:
        """Alertmanager's alerts (active, silenced or not) for one lab host's probe."""
        url = f"{self.alertmanager}/api/v2/alerts?active=true&silenced=true&inhibited=true"
        wanted = self.targets[host]
        return [a for a in get_json(url) if a["labels"].get("instance") == wanted]

    def silences(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.alertmanager}/api/v2/silences"))

    def _write_configs(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        blackbox = {
            "modules": {
                "http_2xx": {
                    "prober": "http",
                    "timeout": "1s",
                    "http": {"preferred_ip_protocol": "ip4"},
                }
            }
        }
        rules = {
            "groups": [
                {
                    "name": "web",
                    "rules": [
                        {
                            "alert": ALERT,
                            "expr": "probe_success == 0",
                            "for": self.for_,
                            "labels": {"severity": "page"},
                            "annotations": {
                                "summary": "{{ $labels.instance }} does not answer HTTP"
                            },
                        }
                    ],
                }
            ]
        }
        prometheus = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "1s",
            },
            "rule_files": [str(self.folder / "rules.yml")],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "blackbox",
                    "metrics_path": "/probe",
                    "params": {"module": ["http_2xx"]},
                    "static_configs": [{"targets": list(self.targets.values())}],
                    "relabel_configs": [
                        {"source_labels": ["__address__"], "target_label": "__param_target"},
                        {"source_labels": ["__param_target"], "target_label": "instance"},
                        {
                            "target_label": "__address__",
                            "replacement": f"127.0.0.1:{self.ports['blackbox']}",
                        },
                    ],
                }
            ],
        }
        alertmanager = {
            "route": {
                "receiver": "opsfix",
                "group_by": ["alertname", "instance"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "opsfix",
                    "webhook_configs": [
                        {
                            "url": f"http://127.0.0.1:{self.opsfix_port}/alerts",
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials_file": str(self.token_file),
                                }
                            },
                        }
                    ],
                }
            ],
        }
        for name, doc in (
            ("blackbox.yml", blackbox),
            ("rules.yml", rules),
            ("prometheus.yml", prometheus),
            ("alertmanager.yml", alertmanager),
        ):
            (self.folder / name).write_text(yaml.safe_dump(doc))


@contextlib.contextmanager
def running_stack(
    folder: Path, targets: dict[str, str], opsfix_port: int, token_file: Path, for_: str = "5s"
) -> Iterator[Stack]:
    stack = Stack(folder, targets, opsfix_port, token_file, for_)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def opsfix_serve(
    argv: Sequence[str],
    env: dict[str, str],
    port: int,
    token: str,
    log: Path,
    tls: ssl.SSLContext | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`opsfix serve ...` as a user starts it, until its /healthz answers; SIGTERM after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        wait_for("opsfix serve", lambda: _healthy(process, port, log, tls), 30)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(
    process: subprocess.Popen[bytes], port: int, log: Path, tls: ssl.SSLContext | None
) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"opsfix serve exited {process.returncode}:\n{log.read_text()}")
    scheme = "https" if tls else "http"
    return get_json(f"{scheme}://127.0.0.1:{port}/healthz", context=tls)["status"] == "ok"


# -- talking to `opsfix serve` as Alertmanager does ----------------------------------------


def alert(
    instance: str,
    fingerprint: str,
    status: str = "firing",
    starts_at: str = "2026-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    """One alert of a v4 notification, as Alertmanager sends it."""
    return {
        "status": status,
        "labels": {"alertname": ALERT, "severity": "page", "instance": instance, **labels},
        "annotations": {"summary": f"{instance} does not answer HTTP"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else starts_at,
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HttpProbeFailing"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "opsfix",
        "groupLabels": {"alertname": ALERT},
        "commonLabels": {"alertname": ALERT},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


def post(
    url: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    """POST to `url`; the status and the decoded JSON answer (errors included)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers=headers or {})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
