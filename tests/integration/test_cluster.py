"""Cluster runs with real parts: Debian's redis-server on loopback, `opsfix worker`s as
separate processes serving two sites, the lab's hosts split between the sites.

Each test judges what an operator sees (the coordinator's report and exit code, the
workers' logs) and the hosts' real state, read through `lab.exec`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.engine.lock import LOCK_PATH
from opsfix.lab import Lab

from .helpers import (
    DATA,
    PLAYBOOK,
    REPO,
    Run,
    break_host,
    clean_env,
    opsfix_command,
    opsfix_with_env,
    reset_hosts,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server (setup.sh)"),
]

SITES = {"web1": "east", "web2": "east", "web3": "west", "web4": "west"}
SLOW_WRITE = DATA / "faults" / "slow_write.yml"
FAULT_DIR = "/var/lib/opsfix-faults"
TARGET, ACTS = f"{FAULT_DIR}/target.conf", f"{FAULT_DIR}/acts"
FORGET_FAULTS = f"rm -rf {FAULT_DIR} /var/lib/opsfix /var/backups/opsfix"


# -- real parts: redis, the key, workers ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis-server on a loopback port of its own, nothing kept on disk; stopped after."""
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert server.poll() is None, "redis-server ended at once"
            assert time.monotonic() < deadline, "redis-server never answered"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "cluster.key"
    path.write_bytes(base64.b64encode(os.urandom(48)))
    path.chmod(0o600)
    return path


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    state: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def hosts(self) -> list[str]:
        """The hosts this worker ran, from its log ("host web1: apply (run ...)")."""
        return [
            line.split("host ", 1)[1].split(":", 1)[0]
            for line in self.text().splitlines()
            if "] host " in line and "(run " in line
        ]

    def pool(self) -> list[int]:
        """The PIDs of its pool processes (the ones that run hosts)."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]


def start_worker(
    broker: str, key: Path, folder: Path, *queues: str, concurrency: int = 4
) -> Worker:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**clean_env(folder), "OPSFIX_STATE_DIR": str(folder / "state")}
    env["OPSFIX_CLUSTER_KEY_FILE"] = str(key)
    argv = [opsfix_command(), "worker", "--broker", broker, "-c", str(concurrency)]
    argv += [f"--queue={q}" for q in queues] + ["--name", f"w-{'-'.join(queues)}"]
    log = folder / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    worker = Worker(process, log, folder / "state")
    deadline = time.monotonic() + 60
    while " ready." not in worker.text():
        assert process.poll() is None, f"worker ended: {worker.text()}"
        assert time.monotonic() < deadline, f"worker never ready: {worker.text()}"
        time.sleep(0.1)
    return worker


def stop(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)  # warm shutdown: running hosts finish
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture(scope="module")
def sites(
    broker: str, key_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Worker]]:
    """One worker per site, each taking only its own site's queue."""
    base = tmp_path_factory.mktemp("workers")
    workers: dict[str, Worker] = {}
    try:
        for site in ("east", "west"):
            workers[site] = start_worker(broker, key_file, base / site, site)
        yield workers
    finally:
        for worker in workers.values():
            stop(worker)


@pytest.fixture
def sited(lab: Lab, tmp_path: Path) -> Path:
    """The lab's inventory with each host given its site (opsfix_site)."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    hosts = inventory["all"]["children"]["web"]["hosts"]
    for name, site in SITES.items():
        hosts[name]["opsfix_site"] = site
    path = tmp_path / "sites.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def coordinator(tmp_path: Path, key: Path, *args: str | Path, timeout: float = 180) -> Run:
    """`opsfix ARGS` with its own HOME and history, as a pipe."""
    home = tmp_path / "coordinator"
    home.mkdir(exist_ok=True)
    env = {**clean_env(home), "OPSFIX_STATE_DIR": str(home / "state")}
    env["OPSFIX_CLUSTER_KEY_FILE"] = str(key)
    return opsfix_with_env(*args, env=env, timeout=timeout)


def essence(report: dict[str, Any]) -> list[Any]:
    """What a run found and did per host, without timings and paths that differ by run."""
    return [
        (
            host["host"],
            host["status"],
            [
                (
                    step["name"],
                    step["before"]["status"],
                    (step["after"] or {}).get("status"),
                    [(r["remediation"], r["status"]) for r in step["remediations"]],
                )
                for step in host["steps"]
            ],
            [(v["test"], v["outcome"]) for v in host["verify"]],
        )
        for host in report["hosts"]
    ]


# -- the same report as a local run ---------------------------------------------------------

BREAKS = {
    "web1": ("nginx_stopped", "conf_d_syntax", "index_deleted", "site_removed"),
    "web2": ("index_deleted",),
    "web3": ("nginx_conf_syntax",),
    "web4": ("log_dir_missing",),  # nginx -t fails outside /etc/nginx: refused, failed
}


def broken(lab: Lab) -> None:
    reset_hosts(lab)
    for host, breaks in BREAKS.items():
        break_host(lab, host, breaks)


def test_a_cluster_run_reports_what_a_local_run_does_on_the_same_broken_hosts(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, key_file: Path, sited: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    lab = clean_lab
    try:
        broken(lab)
        local = coordinator(tmp_path, key_file, "apply", PLAYBOOK, "-i", sited, "--format", "json")
        broken(lab)
        cluster = coordinator(
            tmp_path, key_file, "apply", PLAYBOOK, "-i", sited, "--format", "json",
            "--cluster", broker,
        )  # fmt: skip
    finally:
        lab.exec("web4", "mv /var/log/nginx.moved /var/log/nginx", check=False)
        reset_hosts(lab)

    assert local.returncode == 2, str(local)
    assert cluster.returncode == local.returncode, str(cluster)
    assert essence(cluster.report) == essence(local.report), str(cluster)
    statuses = {h["host"]: h["status"] for h in cluster.report["hosts"]}
    assert statuses == {"web1": "repaired", "web2": "repaired", "web3": "repaired",
                        "web4": "failed"}  # fmt: skip
    # recorded in the coordinator's history like any run, the broker named, never a password
    history = coordinator(tmp_path, key_file, "show", cluster.report["run_id"], "--format", "json")
    assert history.returncode == 0, str(history)
    assert json.loads(history.stdout)["options"]["cluster"] == broker


def test_each_site_s_hosts_go_only_to_its_own_workers(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, key_file: Path, sited: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    before = {site: len(w.hosts()) for site, w in sites.items()}
    run = coordinator(
        tmp_path, key_file, "check", PLAYBOOK, "-i", sited, "--format", "json",
        "--cluster", broker,
    )  # fmt: skip
    assert run.returncode == 0, str(run)
    ran = {site: w.hosts()[before[site] :] for site, w in sites.items()}
    assert sorted(ran["east"]) == ["web1", "web2"], sites["east"].text()
    assert sorted(ran["west"]) == ["web3", "web4"], sites["west"].text()


def test_a_site_no_worker_serves_is_reported_unreachable_and_never_sent(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, key_file: Path, sited: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    inventory = yaml.safe_load(sited.read_text())
    inventory["all"]["children"]["web"]["hosts"]["web4"]["opsfix_site"] = "north"
    sited.write_text(yaml.safe_dump(inventory))
    before = {site: len(w.hosts()) for site, w in sites.items()}
    run = coordinator(
        tmp_path, key_file, "check", PLAYBOOK, "-i", sited, "--format", "json",
        "--cluster", broker,
    )  # fmt: skip
    assert run.returncode == 3, str(run)
    web4 = run.host("web4")
    assert web4["status"] == "unreachable"
    assert "no worker serves queue 'north'" in web4["reason"]
    assert {h["host"]: h["status"] for h in run.report["hosts"][:3]} == dict.fromkeys(
        ("web1", "web2", "web3"), "healthy"
    )
    assert all("web4" not in w.hosts()[before[s] :] for s, w in sites.items())


# -- refusals ----------------------------------------------------------------------------------


def test_a_coordinator_with_another_key_is_refused_and_nothing_runs(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, sited: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(base64.b64encode(os.urandom(48)))
    other.chmod(0o600)
    lab = clean_lab
    break_host(lab, "web1", ["index_deleted"])
    try:
        run = coordinator(
            tmp_path, other, "apply", PLAYBOOK, "-i", sited, "--limit", "web1",
            "--format", "json", "--cluster", broker,
        )  # fmt: skip
        assert run.returncode == 2, str(run)
        web1 = run.host("web1")
        assert web1["status"] == "failed"
        assert "refused the task: signature does not match" in web1["reason"]
        assert lab.exec("web1", "test -e /var/www/html/index.html", check=False).returncode == 1
    finally:
        reset_hosts(lab)
    assert "task refused: signature does not match" in sites["east"].text()


def test_a_tampered_bundle_is_refused_even_under_a_good_signature(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, key_file: Path, tmp_path: Path
) -> None:
    """Someone who can write to the broker swaps the playbook in a task for their own."""
    from opsfix.cluster import bundle, message
    from opsfix.cluster.app import TASK, make_app
    from opsfix.cluster.signing import load_key

    lab = clean_lab
    evil = tmp_path / "evil.yml"
    evil.write_text(SLOW_WRITE.read_text().replace("new\\n", "evil\\n"))
    made = bundle.collect(SLOW_WRITE, [], [])
    host = {"name": "web1", "groups": ["web"], "vars": {"opsfix_site": "east"}}
    host["vars"].update(
        yaml.safe_load(lab.inventory_path.read_text())["all"]["children"]["web"]["vars"]
    )
    host["vars"]["ansible_host"] = lab.hosts["web1"]
    options = dict.fromkeys(message.OPTIONS, None) | {
        "connect_timeout": 10.0, "command_timeout": 60.0, "output_limit": 1 << 20,
        "show_diff": False, "lock_wait": 10.0, "flap_guard": False,
    }  # fmt: skip
    envelope = message.envelope(
        run_id="tampered", mode="apply", host=host, peers=[], extra_vars={"act_seconds": 0},
        options=options, bundle_sha256=made.sha256, lifetime=300,
    )  # fmt: skip
    doc = made.doc()
    playbook = next(iter(p for p in doc["files"] if p.endswith("slow_write.yml")))
    doc["files"][playbook] = base64.b64encode(evil.read_bytes()).decode()
    signature = load_key(key_file).sign(envelope)
    app = make_app(broker)
    lab.exec("web1", f"{FORGET_FAULTS}; mkdir -p {FAULT_DIR} && echo old > {TARGET}")
    try:
        answer = app.send_task(
            TASK, args=[{"envelope": envelope, "signature": signature, "bundle": doc}],
            queue="east",
        ).get(timeout=60)  # fmt: skip
        genuine = app.send_task(
            TASK, args=[{"envelope": envelope, "signature": signature, "bundle": made.doc()}],
            queue="east",
        ).get(timeout=60)  # fmt: skip
        assert answer == {
            "refused": f"content does not match its hash {made.sha256[:12]}",
            "worker": "w-east",
        }
        # the genuine task, signed the same way, runs: the refusal was the bundle's alone
        assert genuine["host"]["status"] == "repaired", genuine
        assert lab.exec("web1", f"cat {TARGET}").stdout == "new\n"
    finally:
        lab.exec("web1", FORGET_FAULTS, check=False)
        app.close()


# -- a worker dies mid-repair ----------------------------------------------------------------


def test_a_worker_killed_mid_repair_is_redelivered_and_the_host_recovered_once(
    clean_lab: Lab, broker: str, key_file: Path, tmp_path: Path
) -> None:
    lab = clean_lab
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["all"]["children"]["web"]["hosts"]["web2"]["opsfix_site"] = "doomed"
    sited = tmp_path / "doomed.yml"
    sited.write_text(yaml.safe_dump(inventory))
    lab.exec("web2", f"{FORGET_FAULTS}; mkdir -p {FAULT_DIR} && echo old > {TARGET}")
    worker = start_worker(broker, key_file, tmp_path / "doomed", "doomed", concurrency=1)
    home = tmp_path / "coordinator"
    home.mkdir()
    env = {**clean_env(home), "OPSFIX_STATE_DIR": str(home / "state")}
    env["OPSFIX_CLUSTER_KEY_FILE"] = str(key_file)
    argv = [opsfix_command(), "apply", str(SLOW_WRITE), "-i", str(sited), "--limit", "web2"]
    argv += ["--format", "json", "-e", "act_seconds=3", "--cluster", broker]
    began = time.monotonic()
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "start" not in lab.exec("web2", f"cat {ACTS} 2>/dev/null; true").stdout:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.05)
        [child] = worker.pool()
        os.kill(child, signal.SIGKILL)  # no finally, no lock release, no journal update
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        stop(worker)
    run = Run(argv, process.returncode, stdout, stderr, time.monotonic() - began)
    try:
        assert run.returncode == 0, f"{run}\n{worker.text()}"
        host = run.host("web2")
        assert host["status"] == "repaired"
        assert host["notes"][0].startswith("restored 1 path(s) of unfinished transaction ")
        # the dead attempt's act ended on the host, was rolled back, then acted once more
        assert lab.exec("web2", f"cat {ACTS}").stdout == "start\nend\nrollback\nstart\nend\n"
        assert lab.exec("web2", f"cat {TARGET}").stdout == "new\n"
        # the killed attempt's transaction was recovered, the next one committed, and the
        # lock the dead process held is gone (taken over as stale, then released)
        states = lab.exec(
            "web2", 'for d in /var/lib/opsfix/tx/*/; do cat "$d/state"; done'
        ).stdout.split()
        assert sorted(states) == ["committed", "recovered"], states
        assert lab.exec("web2", f"test -e {LOCK_PATH}", check=False).returncode == 1
        assert "WorkerLostError" in worker.text() or "exited with 'signal 9" in worker.text()
        assert worker.hosts() == ["web2", "web2"]  # the same task, delivered again
    finally:
        lab.exec("web2", FORGET_FAULTS, check=False)


# -- the rollout is the coordinator's: serial and max_fail_percentage across workers ---------


def test_a_failing_first_batch_stops_the_rollout_on_every_site_as_a_local_run_does(
    clean_lab: Lab, sites: dict[str, Worker], broker: str, key_file: Path, sited: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    lab = clean_lab
    rollout = ["--serial", "1,3", "--max-fail-percentage", "0", "--format", "json"]
    before = {site: len(w.hosts()) for site, w in sites.items()}
    try:
        break_host(lab, "web1", ["log_dir_missing"])  # batch 1 (east) fails: refused
        local = coordinator(tmp_path, key_file, "apply", PLAYBOOK, "-i", sited, *rollout)
        cluster = coordinator(
            tmp_path, key_file, "apply", PLAYBOOK, "-i", sited, *rollout, "--cluster", broker
        )
    finally:
        lab.exec("web1", "mv /var/log/nginx.moved /var/log/nginx", check=False)
        reset_hosts(lab)

    assert (local.returncode, cluster.returncode) == (2, 2), str(cluster)
    assert essence(cluster.report) == essence(local.report)
    reasons = [(h["host"], h["status"], h["reason"]) for h in cluster.report["hosts"][1:]]
    assert reasons == [(h["host"], h["status"], h["reason"]) for h in local.report["hosts"][1:]]
    assert {status for _, status, _ in reasons} == {"not_attempted"}
    assert "batch 1 had 1 of 1 host(s) failing (max_fail_percentage 0)" in reasons[0][2]
    # the west worker never got a host: its batch was never sent
    assert sites["west"].hosts()[before["west"] :] == []


# -- Ctrl-C on the coordinator ------------------------------------------------------------------


def test_ctrl_c_revokes_the_queued_hosts_and_lets_the_running_one_finish(
    clean_lab: Lab, broker: str, key_file: Path, tmp_path: Path
) -> None:
    lab = clean_lab
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    for name in ("web1", "web2"):
        inventory["all"]["children"]["web"]["hosts"][name]["opsfix_site"] = "single"
        lab.exec(name, f"{FORGET_FAULTS}; mkdir -p {FAULT_DIR} && echo old > {TARGET}")
    path = tmp_path / "single.yml"
    path.write_text(yaml.safe_dump(inventory))
    worker = start_worker(broker, key_file, tmp_path / "single", "single", concurrency=1)
    home = tmp_path / "coordinator"
    home.mkdir()
    env = {**clean_env(home), "OPSFIX_STATE_DIR": str(home / "state")}
    env["OPSFIX_CLUSTER_KEY_FILE"] = str(key_file)
    argv = [opsfix_command(), "apply", str(SLOW_WRITE), "-i", str(path), "--limit", "web1:web2"]
    argv += ["-e", "act_seconds=2", "--cluster", broker]
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "start" not in lab.exec("web1", f"cat {ACTS} 2>/dev/null; true").stdout:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 99, stderr
        assert "Interrupted." in stderr and "Traceback" not in stderr, stderr
        # the host under way finished its change (it ended before the coordinator did)
        assert lab.exec("web1", f"cat {ACTS}").stdout == "start\nend\n"
        assert lab.exec("web1", f"cat {TARGET}").stdout == "new\n"
        # the queued one was revoked: the worker takes it from the queue and drops it
        deadline = time.monotonic() + 30
        while "revoked" not in worker.text().lower():
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.1)
        assert worker.hosts() == ["web1"]
        assert lab.exec("web2", f"cat {TARGET}").stdout == "old\n"
        assert lab.exec("web2", f"test -e {ACTS}", check=False).returncode == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        stop(worker)
        for name in ("web1", "web2"):
            lab.exec(name, FORGET_FAULTS, check=False)
