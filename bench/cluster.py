"""Cluster vs one controller: health-4 on 100 lab hosts through two Celery workers.

Brings up N lab hosts (`ocb`, 10.240.101.0/24), Debian's redis-server on a loopback port
of its own, and two `opsfix worker`s (sites `a` and `b`, half the hosts each); then, in
alternating rounds, times `opsfix check bench/playbooks/health4.yml` from one controller
(`-f N`, connecting anew, as bench/run.py does) and the same run with `--cluster`.
Prints the medians, the ratio, and the CPU the workers spent; takes everything down.

    sudo .venv/bin/python bench/cluster.py [--hosts 100] [--rounds 7] [--concurrency 25]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import contenders as C
import measure

LAB_NAME, LAB_SUBNET = "ocb", "10.240.101.0/24"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(root: int) -> float:
    """utime + stime of a process and its live descendants (the workers' pools)."""
    total = 0
    for pid in [root, *measure._descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def sited_inventory(fleet: C.Fleet, folder: Path) -> Path:
    """The fleet's inventory with the first half of the hosts in site a, the rest in b."""
    lines = fleet.inventory.read_text().splitlines()
    half = fleet.size // 2
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("web") and "ansible_host" in stripped:
            index = int(stripped.split(":", 1)[0].removeprefix("web"))
            site = "a" if index <= half else "b"
            line = line.replace("}", f", opsfix_site: {site}}}")
        out.append(line)
    path = folder / "inventory-sites.yml"
    path.write_text("\n".join(out) + "\n")
    return path


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server never answered")


def start_worker(
    broker: str, key: Path, folder: Path, site: str, concurrency: int
) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    env = C.base_env(folder) | {
        "OPSFIX_STATE_DIR": str(folder / "state"),
        "OPSFIX_CLUSTER_KEY_FILE": str(key),
    }
    log = folder / "worker.log"
    argv = [str(C.OPSFIX), "worker", "--broker", broker, "--queue", site]
    argv += ["--concurrency", str(concurrency), "--name", f"bench-{site}"]
    with open(log, "wb") as out:
        worker = subprocess.Popen(argv, env=env, stdout=out, stderr=out, cwd=folder)
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker {site} did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return worker


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=C.REPO)
    wall = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exit {done.returncode}:\n{done.stderr[-3000:]}")
    return wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--concurrency", type=int, default=25, help="processes per worker")
    p.add_argument("--keep-lab", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root: sudo .venv/bin/python bench/cluster.py", file=sys.stderr)
        return 2
    sys.path.insert(0, str(C.REPO))
    from opsfix import lab as lablib

    measure.become_subreaper()
    scratch = Path(tempfile.mkdtemp(prefix="opsfix-bench-cluster-"))
    lab_dir = scratch / "lab"
    started: list[subprocess.Popen[bytes]] = []
    try:
        lab = lablib.up(args.hosts, state_dir=lab_dir, name=LAB_NAME, subnet=LAB_SUBNET)
        fleet = C.write_fleet_files(
            scratch / "fleet",
            args.hosts,
            list(lab.hosts.values()),
            lab.private_key_path,
            lab.known_hosts_path,
        )
        inventory = sited_inventory(fleet, scratch / "fleet")
        key = scratch / "cluster.key"
        key.write_bytes(base64.b64encode(os.urandom(48)))
        key.chmod(0o600)
        (scratch / "redis").mkdir()
        server, broker = start_redis(scratch / "redis")
        started.append(server)
        workers = [
            start_worker(broker, key, scratch / f"worker-{s}", s, args.concurrency)
            for s in ("a", "b")
        ]
        started += workers
        home = scratch / "controller"
        home.mkdir()
        env = C.base_env(home) | {"OPSFIX_CLUSTER_KEY_FILE": str(key)}
        base = [str(C.OPSFIX), "check", str(C.BENCH / "playbooks" / "health4.yml")]
        base += ["-i", str(inventory), "-f", str(args.hosts), "--plugins", str(C.BENCH / "plugins")]
        runs = {"one controller": base, "two workers": [*base, "--cluster", broker]}
        walls: dict[str, list[float]] = {name: [] for name in runs}
        worker_cpu: list[float] = []
        for argv in runs.values():  # warm-up: caches, bundles unpacked once
            timed(argv, env)
        for r in range(args.rounds):
            idle = measure.wait_for_quiet(0.9, 30)
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in order:
                before = sum(cpu_seconds(w.pid) for w in workers)
                walls[name].append(timed(runs[name], env))
                if name == "two workers":
                    worker_cpu.append(sum(cpu_seconds(w.pid) for w in workers) - before)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{n} {w[-1]:.2f} s" for n, w in walls.items())
                + f" (CPU idle before: {idle:.0%})",
                flush=True,
            )
        local = statistics.median(walls["one controller"])
        cluster = statistics.median(walls["two workers"])
        print(f"\nhealth-4 on {args.hosts} hosts, {args.rounds} rounds, medians:")
        print(f"- one controller (-f {args.hosts}): {local:.2f} s wall")
        print(
            f"- two workers (--concurrency {args.concurrency} each): {cluster:.2f} s wall, "
            f"workers' CPU {statistics.median(worker_cpu):.2f} s"
        )
        print(f"- ratio: {cluster / local:.2f}x (target: at most 1.5x)")
        return 0 if cluster <= 1.5 * local else 1
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep_lab:
            lablib.down(lab_dir)
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
