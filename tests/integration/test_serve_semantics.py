"""What an alert makes `opsfix serve` do, on real lab hosts: repeats join the run under
way, `resolved` cancels a queued run, the per-host hourly limit and the cool-down after a
failed run refuse, a freeze defers the repair (recorded and answered with the reason), a
request without the token or with a bad payload runs nothing.

The server runs as a user starts it (`opsfix serve`, a process of its own); the tests
post version-4 notifications to it as Alertmanager would (tests/integration/alerting.py
has the end-to-end test with the real Alertmanager).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.lab import Lab

from . import alerting
from .alerting import alert, notification, post
from .helpers import (
    REPO,
    break_host,
    clean_env,
    http_body,
    inventory_copy,
    opsfix_command,
    opsfix_with_env,
    unused_address,
)

pytestmark = pytest.mark.integration
EXPECTED = "opsfix practice app"


@dataclass
class Served:
    port: int
    token: str
    state: Path
    log: Path
    receiver: alerting.Receiver
    process: subprocess.Popen[bytes]
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/alerts"

    def send(self, *alerts: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        given = {"Authorization": f"Bearer {self.token}"} if headers is None else headers
        return post(self.url, notification(*alerts), given)

    def decisions(self, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
        code, answer = self.send(*alerts)
        assert code == 200, (code, answer)
        return list(answer["alerts"])

    def idle(self, timeout: float = 60) -> None:
        alerting.wait_for("the runs to finish", lambda: self._idle(), timeout)

    def _idle(self) -> bool:
        status = alerting.get_json(
            f"http://127.0.0.1:{self.port}/status",
            {"Authorization": f"Bearer {self.token}"},
        )
        return not status["queued"] and not status["running"]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics") as response:
            return str(response.read().decode())

    def history(self) -> list[dict[str, Any]]:
        env = {**clean_env(self.state), "OPSFIX_STATE_DIR": str(self.state)}
        listed = opsfix_with_env("history", "--limit", "0", "--format", "json", env=env)
        return [
            json.loads(opsfix_with_env("show", r["run_id"], "--format", "json", env=env).stdout)
            for r in json.loads(listed.stdout)
        ]


@contextlib.contextmanager
def serving(
    tmp: Path,
    inventory: Path,
    *extra: str,
    tls: ssl.SSLContext | None = None,
    playbooks: Path = REPO / "playbooks",
    auth: bool = True,
    reports: dict[str, str] | None = None,
    **rule: Any,
) -> Iterator[Served]:
    token = secrets.token_urlsafe(24)
    (tmp / "token").write_text(token)
    rule.setdefault("playbook", "nginx_recovery.yml")
    receiver = alerting.Receiver()
    doc = {
        "playbook_dirs": [str(playbooks)],
        "inventory": [str(inventory)],
        "notify": [{"url": receiver.url, "format": "json"}],
        **({"reports": reports} if reports else {}),
        "rules": [
            {
                "name": "web-down",
                "match": {"alertname": alerting.ALERT},
                **rule,
            }
        ],
    }
    (tmp / "alerts.yml").write_text(yaml.safe_dump(doc))
    port = alerting.free_port()
    state, log = tmp / "state", tmp / "serve.log"
    argv = [
        opsfix_command(),
        "serve",
        "--rules",
        str(tmp / "alerts.yml"),
        "--listen",
        f"127.0.0.1:{port}",
        *(["--token-file", str(tmp / "token")] if auth else []),
        *extra,
    ]
    env = {**clean_env(tmp), "OPSFIX_STATE_DIR": str(state)}
    try:
        with alerting.opsfix_serve(argv, env, port, token, log, tls) as process:
            yield Served(port, token, state, log, receiver, process, "https" if tls else "http")
    finally:
        receiver.stop()


def url(lab: Lab, host: str) -> str:
    return f"http://{lab.hosts[host]}/"


def stop_nginx(lab: Lab, *hosts: str) -> None:
    for host in hosts:
        break_host(lab, host, ["nginx_stopped"])
        assert not serves(lab, host)


def serves(lab: Lab, host: str) -> bool:
    try:
        return EXPECTED in http_body(lab, host)
    except Exception:
        return False


# -- section 3: semantics ------------------------------------------------------------


def test_repeats_join_and_resolved_cancels_queued(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web1", "web2")
    with serving(tmp_path, lab.inventory_path, limits={"concurrency": 1}) as served:
        first = served.decisions(alert(url(lab, "web1"), "aaa1"))
        again = served.decisions(alert(url(lab, "web1"), "aaa1"))  # Alertmanager resends
        other = served.decisions(alert(url(lab, "web2"), "bbb2"))  # waits: concurrency 1
        gone = served.decisions(alert(url(lab, "web2"), "bbb2", status="resolved"))
        served.idle()
        runs = served.history()
    assert first[0]["action"] == "queued" and first[0]["host"] == "web1"
    assert again[0]["action"] == "joined", again
    assert other[0]["action"] == "queued", other
    assert gone[0]["action"] == "cancelled", gone
    assert len(runs) == 1, runs  # web1's, once; web2's never started
    assert runs[0]["options"]["limit"] == "web1"
    assert runs[0]["options"]["alerts"][0]["joined"] == 1
    assert runs[0]["report"]["hosts"][0]["status"] == "repaired"
    assert serves(lab, "web1") and not serves(lab, "web2")


def test_hourly_limit_refuses_a_further_run(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web1")
    with serving(tmp_path, lab.inventory_path, limits={"runs_per_host_per_hour": 1}) as served:
        assert served.decisions(alert(url(lab, "web1"), "f1"))[0]["action"] == "queued"
        served.idle()
        stop_nginx(lab, "web1")  # it breaks again: flapping
        later = served.decisions(alert(url(lab, "web1"), "f2", starts_at="2026-01-01T00:10:00Z"))
        time.sleep(1)
        runs = served.history()
        metrics = served.metrics()
    assert later[0]["action"] == "refused", later
    assert "runs_per_host_per_hour: 1" in later[0]["detail"]
    assert len(runs) == 1
    assert not serves(lab, "web1")  # left for a person
    assert 'opsfix_serve_alerts_received_total{action="refused",status="firing"} 1.0' in metrics


NGINX_UP = """\
name: nginx_up
hosts: web
flap_guard: {max_repairs: 1, period: 1h}
checks:
  - name: nginx is running
    check: service_running
    with: {service: nginx}
    remediate:
      - remediation: service_start
        with: {service: nginx, validate: nginx -t}
"""


def test_the_playbooks_flap_guard_holds_for_alerts(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "nginx_up.yml").write_text(NGINX_UP)
    stop_nginx(lab, "web2")
    with serving(tmp_path, lab.inventory_path, playbooks=folder, playbook="nginx_up.yml") as served:
        served.decisions(alert(url(lab, "web2"), "h1"))
        served.idle()
        stop_nginx(lab, "web2")
        again = served.decisions(alert(url(lab, "web2"), "h2", starts_at="2026-01-01T01:00:00Z"))
        served.idle()
        alerting.wait_for("two notifications", lambda: len(served.receiver.bodies) == 2, 10)
        runs = sorted(served.history(), key=lambda r: r["report"]["started"])
    assert again[0]["action"] == "queued"  # the rule's own limit (3 an hour) allows it
    assert [r["report"]["hosts"][0]["status"] for r in runs] == ["repaired", "failed"]
    refused = runs[1]["report"]["hosts"][0]["steps"][0]["remediations"][0]
    assert refused["status"] == "refused" and "flap guard" in refused["reason"], refused
    said = served.receiver.bodies[1]
    assert said["outcome"] == "failed" and any("flap guard" in d for d in said["done"]), said
    assert not serves(lab, "web2")  # a person looks now


def test_cooldown_after_a_failed_run(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    gone = unused_address(lab)
    inventory = inventory_copy(lab, tmp_path / "inventory.yml", hosts={"web9": gone})
    with serving(tmp_path, inventory, "--timeout", "1", limits={"cooldown": "5m"}) as served:
        served.decisions(alert(f"http://{gone}/", "c1"))
        served.idle()
        again = served.decisions(alert(f"{gone}:9100", "c2", starts_at="2026-01-01T00:05:00Z"))
        runs = served.history()
    assert runs[0]["report"]["hosts"][0]["status"] == "unreachable"
    assert again[0]["action"] == "refused" and "cool-down" in again[0]["detail"], again
    assert len(runs) == 1


def test_freeze_defers_the_repair_and_says_why(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    freeze = {"start": "2020-01-01", "end": "2099-12-31", "reason": "release weekend"}
    inventory = inventory_copy(lab, tmp_path / "inventory.yml", opsfix_freezes=[freeze])
    stop_nginx(lab, "web3")
    with serving(tmp_path, inventory, reports={"dir": str(tmp_path / "reports")}) as served:
        served.decisions(alert(url(lab, "web3"), "d1"))
        served.idle()
        alerting.wait_for("the notification", lambda: served.receiver.bodies, 10)
        runs = served.history()
        said = served.receiver.bodies[0]
    host = runs[0]["report"]["hosts"][0]
    start = next(s for s in host["steps"] if s["name"] == "nginx is running")
    assert start["remediations"][0]["status"] == "deferred", host
    assert "release weekend" in start["remediations"][0]["reason"]
    assert said["outcome"] == "deferred" and "release weekend" in said["reason"], said
    assert "release weekend" in said["text"]
    assert said["report"] == str(tmp_path / "reports" / f"{runs[0]['run_id']}.md")
    assert "release weekend" in Path(said["report"]).read_text()
    assert not serves(lab, "web3")  # nothing disruptive ran


def test_healthy_host_and_unknown_host_run_nothing_more(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    with serving(tmp_path, lab.inventory_path, mode="dry-run") as served:
        unknown = served.decisions(alert("http://192.0.2.7/", "u1"))
        other = served.decisions({**alert(url(lab, "web1"), "o1"), "labels": {"alertname": "X"}})
        served.idle()
        runs = served.history()
    assert unknown[0]["action"] == "ignored" and "names no host" in unknown[0]["detail"]
    assert other[0]["action"] == "ignored" and "no rule" in other[0]["detail"]
    assert runs == []


def test_a_rule_on_trial_runs_dry(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web4")
    with serving(tmp_path, lab.inventory_path, mode="dry-run") as served:
        assert served.decisions(alert(url(lab, "web4"), "t9"))[0]["action"] == "queued"
        served.idle()
        alerting.wait_for("the notification", lambda: served.receiver.bodies, 10)
        runs = served.history()
    assert runs[0]["report"]["mode"] == "dry-run" and runs[0]["options"]["dry_run"] is True
    start = next(
        s
        for s in runs[0]["report"]["hosts"][0]["steps"]
        if s["before"]["check"] == "service_running"
    )
    assert start["remediations"][0]["status"] == "would_change", start
    assert served.receiver.bodies[0]["mode"] == "dry-run"
    assert not serves(lab, "web4")  # a dry run changes nothing


# -- section 5: security ---------------------------------------------------------------


def test_no_token_401_and_nothing_runs(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web1")
    firing = alert(url(lab, "web1"), "s1")
    wrong_basic = "Basic " + base64.b64encode(b"admin:admin").decode()
    with serving(tmp_path, lab.inventory_path) as served:
        answers = [
            served.send(firing, headers={}),
            served.send(firing, headers={"Authorization": "Bearer " + "x" * 32}),
            served.send(firing, headers={"Authorization": f"Bearer {served.token}x"}),
            served.send(firing, headers={"Authorization": wrong_basic}),
        ]
        time.sleep(1)
        runs = served.history()
        metrics = served.metrics()
    assert [code for code, _ in answers] == [401, 401, 401, 401]
    assert runs == []
    assert not serves(lab, "web1")
    assert 'opsfix_serve_requests_total{code="401"} 4.0' in metrics


def test_basic_auth_from_a_file(clean_lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "basic").write_text("alertmanager:correct horse battery\n")
    good = "Basic " + base64.b64encode(b"alertmanager:correct horse battery").decode()
    bad = "Basic " + base64.b64encode(b"alertmanager:correct horse").decode()
    extra = ["--basic-auth-file", str(tmp_path / "basic")]
    with serving(tmp_path, clean_lab.inventory_path, *extra, auth=False) as served:
        unknown = alert("http://192.0.2.1/", "b1")
        assert served.send(unknown, headers={"Authorization": bad})[0] == 401
        code, answer = served.send(unknown, headers={"Authorization": good})
    assert code == 200 and answer["alerts"][0]["action"] == "ignored"


def test_bad_payload_400_and_nothing_runs(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web1")
    good = alert(url(lab, "web1"), "p1")
    bad_bodies: list[Any] = [
        b"{not json",
        {**notification(good), "version": "3"},
        notification({**good, "labels": {**good["labels"], "severity": 5}}),
        notification({**good, "startsAt": "yesterday"}),
        notification({k: v for k, v in good.items() if k != "fingerprint"}),
        {**notification(good), "alerts": "all of them"},
    ]
    with serving(tmp_path, lab.inventory_path, "--max-body", "4096") as served:
        auth = {"Authorization": f"Bearer {served.token}"}
        answers = [post(served.url, body, auth) for body in bad_bodies]
        huge = post(served.url, {**notification(good), "pad": "x" * 5000}, auth)
        time.sleep(1)
        runs = served.history()
    assert [code for code, _ in answers] == [400] * len(bad_bodies), answers
    assert "severity" in answers[2][1]["error"]
    assert huge[0] == 413
    assert runs == []
    assert not serves(lab, "web1")


def test_unknown_fields_are_tolerated(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    stop_nginx(lab, "web2")
    extra = {**alert(url(lab, "web2"), "t1"), "silenceURL": "x", "new_field": {"a": 1}}
    with serving(tmp_path, lab.inventory_path) as served:
        code, answer = post(
            served.url,
            {**notification(extra), "futureField": [1, 2]},
            {"Authorization": f"Bearer {served.token}"},
        )
        served.idle()
        runs = served.history()
    assert code == 200 and answer["alerts"][0]["action"] == "queued"
    assert runs[0]["report"]["hosts"][0]["status"] == "repaired"
    assert serves(lab, "web2")


def test_rate_limit_answers_429(clean_lab: Lab, tmp_path: Path) -> None:
    with serving(tmp_path, clean_lab.inventory_path, "--rate-limit", "1") as served:
        codes = [served.send(headers={})[0] for _ in range(4)]
    assert codes[:2] == [401, 401] and codes[-1] == 429, codes


def test_tls_with_cert_and_key(clean_lab: Lab, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    with serving(tmp_path, clean_lab.inventory_path, *tls, tls=context) as served:
        code, answer = post(
            served.url,
            notification(alert("http://192.0.2.1/", "x1")),
            {"Authorization": f"Bearer {served.token}"},
            context=context,
        )
        with pytest.raises(Exception):  # noqa: B017 - plain HTTP to a TLS port: no answer
            post(served.url.replace("https:", "http:"), notification())
    assert code == 200 and answer["alerts"][0]["action"] == "ignored"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# -- section 6: graceful shutdown ---------------------------------------------------------


def test_sigterm_lets_the_run_finish_and_records_what_was_cut(
    clean_lab: Lab, tmp_path: Path
) -> None:
    lab = clean_lab
    stop_nginx(lab, "web1", "web2")
    with serving(tmp_path, lab.inventory_path, limits={"concurrency": 1}) as served:
        served.decisions(alert(url(lab, "web1"), "g1"), alert(url(lab, "web2"), "g2"))
        alerting.wait_for(
            "web1's run to start", lambda: "run_started" in served.log.read_text(), 10
        )
        served.process.send_signal(signal.SIGTERM)
        # uvicorn ends by the signal it handled, after the shutdown (systemd counts it clean)
        assert served.process.wait(60) in (0, -signal.SIGTERM)
        runs = {r["options"]["limit"]: r for r in served.history()}
    log = served.log.read_text()
    assert runs["web1"]["report"]["hosts"][0]["status"] == "repaired", log
    cut = runs["web2"]["report"]["hosts"][0]
    assert cut["status"] == "not_attempted" and "stopped before this run started" in cut["reason"]
    assert runs["web2"]["options"]["alerts"][0]["fingerprint"] == "g2"
    assert serves(lab, "web1") and not serves(lab, "web2")
    assert '"event": "runs_cut"' in log and '"event": "stopped"' in log
