"""The opsfix benchmark: opsfix against ansible-playbook, pyinfra and the SSH floor.

    sudo .venv/bin/python bench/run.py                  # everything (about 10 minutes)
    sudo .venv/bin/python bench/run.py --quick          # 20 hosts, 3 rounds, no ansible
    sudo .venv/bin/python bench/run.py --workloads health4 --sizes 20 --rounds 7
    sudo .venv/bin/python bench/run.py --workloads health4 --sizes 100,250,500,1000  # scale

Brings up lab hosts (namespaces with real sshd and nginx), installs the contenders into
bench/.venv if they are missing, runs every contender on the same hosts, alternating
them round by round, prints medians and ratios, and tears the hosts down. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import contenders as C
import measure
import scale
import workloads as W

LAB_NAME = "obench"
MIB = 1024 * 1024


@dataclass
class Series:
    """Every timed sample of one contender on one workload and size."""

    workload: str
    size: int
    contender: str
    samples: list[measure.Sample] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)  # round of each sample
    tree_pss: int | None = None
    threads: int | None = None
    fds: int | None = None
    failures: list[str] = field(default_factory=list)

    def median(self, attr: str = "wall") -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def paired(self, other: Series) -> float | None:
        """Median over the rounds both ran of this one's wall time over the other's."""
        theirs = dict(zip(other.rounds, other.samples, strict=True))
        ratios = [
            mine.wall / theirs[r].wall
            for r, mine in zip(self.rounds, self.samples, strict=True)
            if r in theirs
        ]
        return statistics.median(ratios) if ratios else None

    def summary(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "size": self.size,
            "contender": self.contender,
            "rounds": len(self.samples),
            "wall_median": self.median() if self.samples else None,
            "wall_min": min(s.wall for s in self.samples) if self.samples else None,
            "wall_max": max(s.wall for s in self.samples) if self.samples else None,
            "cpu_median": self.median("cpu") if self.samples else None,
            "peak_rss_max": max(s.peak_rss for s in self.samples) if self.samples else None,
            "tree_pss": self.tree_pss,
            "threads": self.threads,
            "fds": self.fds,
            "walls": [round(s.wall, 4) for s in self.samples],
            "cpus": [round(s.cpu, 4) for s in self.samples],
            "failures": self.failures,
        }


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.series: dict[tuple[str, int, str], Series] = {}
        self.lab = None
        self.fleets: dict[int, C.Fleet] = {}
        self.idle: list[float] = []  # CPU idle fraction just before each round
        self.loads: dict[int, list[float]] = {}  # size -> 1-min load average at each round

    # --- plumbing -------------------------------------------------------------------------

    def fresh(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.scratch / "runs"))

    def controller_home(self) -> Path:
        """One home for opsfix's runs of a workload: the state folder of one controller."""
        return Path(tempfile.mkdtemp(prefix="controller-", dir=self.scratch))

    def record(self, workload: str, size: int, name: str) -> Series:
        key = (workload, size, name)
        if key not in self.series:
            self.series[key] = Series(workload, size, name)
        return self.series[key]

    def measure(
        self,
        build: Callable[[C.Fleet, Path], C.Command],
        fleet: C.Fleet,
        *,
        sample_memory: bool = False,
        keep_orphans: bool = False,
    ) -> measure.Sample:
        command = build(fleet, self.fresh())
        return measure.run(
            command.argv,
            env=command.env,
            cwd=command.cwd,
            sample_memory=sample_memory,
            keep_orphans=keep_orphans,
        )

    def timed(
        self,
        series: Series,
        build: Callable[[C.Fleet, Path], C.Command],
        fleet: C.Fleet,
        ok: Callable[[measure.Sample], str | None],
        keeper_home: Path | None = None,
    ) -> None:
        """With `keeper_home`, the CPU of that home's connection keeper during the run
        counts too (it is not the run's child: it stays for the next run)."""
        before = _keeper_cpu(keeper_home)
        sample = self.measure(build, fleet, keep_orphans=keeper_home is not None)
        if keeper_home is not None:
            sample = replace(sample, cpu=sample.cpu + _keeper_cpu(keeper_home) - before)
        problem = ok(sample)
        if problem:
            series.failures.append(problem)
            print(f"    {series.contender}: FAILED: {problem}", file=sys.stderr)
            return
        series.samples.append(sample)
        series.rounds.append(len(self.idle))  # the round it belongs to
        print(
            f"    {series.workload}@{series.size} {series.contender:<16} "
            f"{sample.wall:7.3f} s wall {sample.cpu:7.3f} s cpu "
            f"{sample.peak_rss / MIB:6.1f} MiB",
            flush=True,
        )

    def quiet(self, label: str) -> None:
        """Other work on this machine skews a round: wait a little for the CPUs to settle."""
        idle = measure.wait_for_quiet(self.args.idle, self.args.wait)
        self.idle.append(idle)
        print(f"{label} (CPU idle {idle:.0%})", flush=True)

    # --- workloads ------------------------------------------------------------------------

    def health4(self) -> None:
        for size in self.args.sizes:
            names = [
                n
                for n in self.args.contenders
                if n in C.HEALTH4
                and not (n.startswith("ansible") and size > self.args.ansible_max_hosts)
            ]
            fleet = self.fleets[size]
            print(f"health-4 on {size} hosts: warm-up and memory pass", flush=True)
            for name in names:
                if name == "ansible-f5":
                    continue  # slow; ansible at forks=hosts warms the same caches
                sample = self.measure(C.HEALTH4[name].build, fleet, sample_memory=True)
                series = self.record("health4", size, name)
                series.tree_pss = sample.tree_pss
                series.threads, series.fds = sample.threads, sample.fds
                if problem := _exit_ok(sample):
                    series.failures.append(f"warm-up: {problem}")
            rounds = scale.rounds_at(
                size, self.args.rounds, self.args.large_rounds, self.args.large_from
            )
            for r in range(rounds):
                self.quiet(f"  round {r + 1}/{rounds}")
                self.loads.setdefault(size, []).append(os.getloadavg()[0])
                order = names[r % len(names) :] + names[: r % len(names)]
                for name in order:
                    if name == "ansible-f5" and r >= self.args.slow_rounds:
                        continue
                    if name == "ansible" and r >= self.args.ansible_rounds:
                        continue
                    series = self.record("health4", size, name)
                    self.timed(series, C.HEALTH4[name].build, fleet, _exit_ok)

    def recover1(self) -> None:
        fleet = self.fleets[20]
        with_verify, _ = W.recovery_copies(self.scratch / "playbooks")
        apply = C.opsfix_run("apply", with_verify, home=self.controller_home())
        cold = C.opsfix_run("apply", with_verify)
        kept_home = self.controller_home()
        kept = C.opsfix_run("apply", with_verify, home=kept_home, persist=60)
        print("recover-1 on 20 hosts: warm-up (records the known-good configs)", flush=True)
        series = self.record("recover1", 20, "opsfix apply")
        first = self.record("recover1", 20, "opsfix apply, empty state folder")
        kept_series = self.record("recover1", 20, "opsfix apply, kept connections")
        for which, build in ((series, apply), (kept_series, kept)):
            warm = self.measure(build, fleet, keep_orphans=build is kept)
            if problem := _exit_ok(warm):
                which.failures.append(f"warm-up: {problem}")
        try:
            for r in range(self.args.rounds):
                runs = [
                    (series, apply, f"web{r % 6 + 1}", None),
                    (first, cold, f"web{r % 6 + 7}", None),
                    (kept_series, kept, f"web{r % 6 + 13}", kept_home),
                ]
                for which, build, host, home in runs[r % 3 :] + runs[: r % 3]:
                    self.lab.exec(host, W.BREAK_CONFIG)  # type: ignore[attr-defined]
                    self.quiet(f"  round {r + 1}/{self.args.rounds}: {host} broken")
                    self.timed(which, build, fleet, _repaired(self.lab, host), keeper_home=home)
        finally:
            C.close_kept(kept_home)
            measure.reap()

    def verify(self) -> None:
        fleet = self.fleets[20]
        with_verify, without = W.recovery_copies(self.scratch / "playbooks")
        home = self.controller_home()
        runs = {
            "apply (verify)": C.opsfix_run("apply", with_verify, home=home),
            "apply (no verify)": C.opsfix_run("apply", without, home=home),
            "check": C.opsfix_run("check", with_verify, home=home),
        }
        print("verify on 20 hosts: warm-up", flush=True)
        for name, build in runs.items():
            if problem := _exit_ok(self.measure(build, fleet)):
                self.record("verify", 20, name).failures.append(f"warm-up: {problem}")
        for r in range(self.args.rounds):
            self.quiet(f"  round {r + 1}/{self.args.rounds}")
            names = list(runs)
            for name in names[r % 3 :] + names[: r % 3]:
                self.timed(self.record("verify", 20, name), runs[name], fleet, _exit_ok)

    # --- report -----------------------------------------------------------------------------

    def table(self) -> str:
        rows = [
            "| workload | hosts | contender | wall median (s) | min-max (s) | vs floor | "
            "CPU median (s) | peak RSS (MiB) | tree PSS (MiB) | threads | fds | rounds |",
            "| --- | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
        ]
        for (workload, size, name), s in self.series.items():
            if not s.samples:
                rows.append(f"| {workload} | {size} | {name} | FAILED: {s.failures[:1]} |")
                continue
            floor = self.series.get((workload, size, "floor"))
            ratio = f"{s.median() / floor.median():.2f}x" if floor and floor.samples else ""
            tree = f"{s.tree_pss / MIB:.0f}" if s.tree_pss else ""
            walls = [x.wall for x in s.samples]
            rows.append(
                f"| {workload} | {size} | {name} | {s.median():.3f} | "
                f"{min(walls):.2f}-{max(walls):.2f} | {ratio} | {s.median('cpu'):.2f} | "
                f"{max(x.peak_rss for x in s.samples) / MIB:.0f} | {tree} | {s.threads or ''} | "
                f"{s.fds or ''} | {len(s.samples)} |"
            )
        return "\n".join(rows)

    def targets(self) -> list[tuple[str, str, bool]]:
        """(target, measured, met) for every target the collected series can judge."""
        found: list[tuple[str, str, bool]] = []
        med = {k: s.median() for k, s in self.series.items() if s.samples}

        def h4(size: int, name: str) -> float | None:
            return med.get(("health4", size, name))

        for size, limit in ((20, 1.5), (100, 1.3)):
            o, f, p, a = (h4(size, n) for n in ("opsfix", "floor", "pyinfra", "ansible"))
            if o and f:
                what = f"health-4 @{size} <= {limit}x floor"
                mine = self.series[("health4", size, "opsfix")]
                paired = mine.paired(self.series[("health4", size, "floor")])
                text = (
                    f"{o / f:.2f}x (per-round pairs: {paired:.2f}x)" if paired else f"{o / f:.2f}x"
                )
                found.append((what, text, o / f <= limit))
            if o and p:
                found.append((f"health-4 @{size} faster than pyinfra", f"{p / o:.2f}x", o < p))
            if o and a:
                what = f"health-4 @{size} >= 10x faster than ansible (forks=hosts)"
                found.append((what, f"{a / o:.1f}x", a / o >= 10))
        r = med.get(("recover1", 20, "opsfix apply"))
        if r:
            what = "recover-1 < 2 s including verify (connecting anew)"
            found.append((what, f"{r:.2f} s", r < 2))
        k = med.get(("recover1", 20, "opsfix apply, kept connections"))
        if k:
            what = "recover-1 < 2 s including verify (connections kept from the last run)"
            found.append((what, f"{k:.2f} s", k < 2))
        v = med.get(("verify", 20, "apply (verify)"))
        nv = med.get(("verify", 20, "apply (no verify)"))
        o = h4(20, "opsfix")
        if v and nv and o:
            cost = v - nv
            what = "verify @20 adds <= 50% to health-4"
            found.append((what, f"+{cost:.2f} s = {cost / o:.0%}", cost <= 0.5 * o))
        found += scale.targets(self.series, sorted(self.args.sizes))
        s = self.series.get(("health4", 100, "opsfix"))
        if s and s.samples:
            peak = max(x.peak_rss for x in s.samples)
            found.append(("peak memory @100 < 150 MiB", f"{peak / MIB:.0f} MiB", peak < 150 * MIB))
        return found


def _keeper_cpu(home: Path | None) -> float:
    """CPU seconds the connection keeper of `home` has used so far (0 without one)."""
    pid = C.keeper_pid(home) if home is not None else None
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _exit_ok(sample: measure.Sample) -> str | None:
    if sample.exit_status != 0:
        return f"exit {sample.exit_status}: {sample.output[-400:]!r}"
    return None


def _repaired(lab: object, host: str) -> Callable[[measure.Sample], str | None]:
    def ok(sample: measure.Sample) -> str | None:
        if sample.exit_status != 0:
            return f"exit {sample.exit_status}: {sample.output[-400:]!r}"
        if "repaired=1" not in sample.output:
            return f"no host repaired: {sample.output[-300:]!r}"
        done = lab.exec(host, "nginx -t", check=False)  # type: ignore[attr-defined]
        return None if done.returncode == 0 else f"{host} still broken: {done.stderr[-300:]}"

    return ok


def machine() -> dict[str, str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in lines if "model name" in x), "unknown")
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
    }
    versions = {
        "paramiko": (sys.executable, "import paramiko; print(paramiko.__version__)"),
        "ansible-core": (str(C.bench_python()), "import ansible; print(ansible.__version__)"),
        "pyinfra": (str(C.bench_python()), "from pyinfra import __version__; print(__version__)"),
    }
    for name, (python, code) in versions.items():
        if not Path(python).exists():
            info[name] = "missing"
            continue
        done = subprocess.run([python, "-c", code], capture_output=True, text=True)
        info[name] = done.stdout.strip() or "missing"
    return info


def install_contenders() -> None:
    if C.have_bench_tools():
        return
    print("installing ansible-core and pyinfra into bench/.venv", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(C.BENCH_VENV)], check=True)
    pip = [str(C.BENCH_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "-r", str(C.BENCH / "requirements.txt")], check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="20,100", help="host counts for health-4 (default 20,100)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per contender")
    p.add_argument(
        "--ansible-rounds", type=int, default=3, help="rounds of ansible (forks = hosts)"
    )
    p.add_argument(
        "--slow-rounds", type=int, default=1, help="rounds of ansible at default forks (slow)"
    )
    p.add_argument("--ansible-max-hosts", type=int, default=250, help="no ansible above this size")
    p.add_argument(
        "--large-rounds", type=int, default=3, help="rounds at sizes from --large-from on"
    )
    p.add_argument("--large-from", type=int, default=500, help="what counts as a large size")
    p.add_argument("--lab-name", default=LAB_NAME, help=f"the lab's name (default {LAB_NAME})")
    p.add_argument(
        "--subnet",
        help="the lab's subnet (default: the smallest at 10.240.0.0 that holds the hosts)",
    )
    p.add_argument("--workloads", default="health4,recover1,verify")
    p.add_argument("--contenders", default=",".join(C.HEALTH4))
    p.add_argument("--quick", action="store_true", help="20 hosts, 3 rounds, no ansible")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab hosts up")
    p.add_argument("--json", type=Path, help="also write every sample here")
    p.add_argument(
        "--idle", type=float, default=0.9, help="CPU idle fraction to wait for before a round"
    )
    p.add_argument("--wait", type=float, default=30, help="longest wait for it, seconds")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.workloads = args.workloads.split(",")
    args.contenders = args.contenders.split(",")
    if args.quick:
        args.sizes, args.rounds = [20], 3
        args.contenders = [c for c in args.contenders if not c.startswith("ansible")]
    unknown = set(args.contenders) - set(C.HEALTH4)
    if unknown:
        p.error(f"unknown contenders: {', '.join(sorted(unknown))}; known: {', '.join(C.HEALTH4)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the lab needs root: sudo .venv/bin/python bench/run.py", file=sys.stderr)
        return 2
    sys.path.insert(0, str(C.REPO))
    from opsfix import lab as lablib

    if any(c in args.contenders for c in ("ansible", "ansible-f5", "pyinfra")):
        install_contenders()
    measure.become_subreaper()
    scratch = Path(tempfile.mkdtemp(prefix="opsfix-bench-"))
    (scratch / "runs").mkdir()
    bench = Bench(args, scratch)
    count = max([*args.sizes, 20])
    subnet = args.subnet or scale.default_subnet(count)
    started = time.time()
    print(f"lab: {count} hosts ({args.lab_name}, {subnet})", flush=True)
    lab_dir = scratch / "lab"
    try:
        bench.lab = lablib.up(count, state_dir=lab_dir, name=args.lab_name, subnet=subnet)
        info_lab = f"{count} hosts up in {time.time() - started:.0f} s"
        print(info_lab, flush=True)
        addresses = list(bench.lab.hosts.values())
        for size in sorted({*args.sizes, 20}):
            bench.fleets[size] = C.write_fleet_files(
                scratch / "fleet",
                size,
                addresses[:size],
                bench.lab.private_key_path,
                bench.lab.known_hosts_path,
            )
        for workload in args.workloads:
            getattr(bench, workload)()
    finally:
        if not args.keep_lab:
            lablib.down(lab_dir)
            shutil.rmtree(scratch, ignore_errors=True)
    info = machine()
    info["lab"] = info_lab
    info["CPU idle before each round"] = " ".join(f"{x:.0%}" for x in bench.idle)
    for size, loads in bench.loads.items():
        info[f"load average (1 min) at rounds of {size} hosts"] = scale.load_text(loads)
    info["benchmark duration"] = f"{time.time() - started:.0f} s"
    print("\n## Machine\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    print("\n## Results (medians)\n")
    print(bench.table())
    sizes = sorted(args.sizes)
    if len(sizes) > 1 and "health4" in args.workloads:
        print("\n## Scale (health-4)\n")
        print("\n".join(scale.growth(bench.series, sizes)))
    print("\n## Targets\n")
    for target, measured, met in bench.targets():
        print(f"- {'MET   ' if met else 'MISSED'} {target}: {measured}")
    if args.json:
        data = {
            "machine": info,
            "series": [s.summary() for s in bench.series.values()],
            "targets": [asdict(_Target(*t)) for t in bench.targets()],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.keep_lab:
        print(f"\nlab left up in {lab_dir}: remove it with opsfix.lab.down({str(lab_dir)!r})")
    return 0 if all(s.samples for s in bench.series.values()) else 1


@dataclass
class _Target:
    target: str
    measured: str
    met: bool


if __name__ == "__main__":
    sys.exit(main())
