"""The benchmark's own pieces, without lab hosts (bench/run.py itself needs root and time)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from opsfix.playbook.parse import load_playbook
from opsfix.registry import load_registry

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_modules():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import contenders
        import measure
        import workloads

        yield contenders, measure, workloads
    finally:
        sys.path.remove(str(BENCH))


def test_the_opsfix_health4_playbook_loads_with_four_checks() -> None:
    path = BENCH / "playbooks" / "health4.yml"
    registry = load_registry([path.parent, BENCH / "plugins"])
    playbook = load_playbook(path, registry)
    assert len(playbook.steps) == 4


def test_ansible_and_pyinfra_do_the_same_four_commands(bench_modules) -> None:  # type: ignore[no-untyped-def]
    contenders, _, _ = bench_modules
    play = yaml.safe_load((BENCH / "playbooks" / "health4-ansible.yml").read_text())[0]
    assert play["gather_facts"] is False
    commands = [next(v for k, v in t.items() if k.startswith("ansible.")) for t in play["tasks"]]
    assert tuple(commands) == contenders.HEALTH4_COMMANDS
    pyinfra = (BENCH / "playbooks" / "health4_pyinfra.py").read_text()
    assert all(repr(c).strip("'") in pyinfra for c in contenders.HEALTH4_COMMANDS)


def test_every_contender_builds_a_command(bench_modules, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    contenders, _, _ = bench_modules
    fleet = contenders.write_fleet_files(
        tmp_path, 2, ["10.0.0.1", "10.0.0.2"], tmp_path / "key", tmp_path / "known_hosts"
    )
    assert "web2: {ansible_host: 10.0.0.2}" in fleet.inventory.read_text()
    compile(fleet.pyinfra_inventory.read_text(), "pyinfra", "exec")
    for contender in contenders.HEALTH4.values():
        command = contender.build(fleet, tmp_path)
        assert command.argv and command.env["HOME"] == str(tmp_path)
        # opsfix connects anew in every health-4 run, as the others do: no kept connections
        assert command.env["OPSFIX_PERSIST"] == "0"
    kept = contenders.opsfix_run("apply", tmp_path / "book.yml", home=tmp_path, persist=60)
    assert kept(fleet, tmp_path / "scratch").env["OPSFIX_PERSIST"] == "60"
    assert contenders.keeper_pid(tmp_path) is None  # no keeper serves this home


def test_the_recovery_copies_differ_only_in_verify(bench_modules, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, workloads = bench_modules
    with_verify, without = workloads.recovery_copies(tmp_path)
    a, b = yaml.safe_load(with_verify.read_text()), yaml.safe_load(without.read_text())
    assert a.pop("verify") and a == b
    assert all(Path(p).is_file() for p in yaml.safe_load(with_verify.read_text())["verify"])


def test_a_measured_run_counts_its_children(bench_modules) -> None:  # type: ignore[no-untyped-def]
    _, measure, _ = bench_modules
    busy = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(range(10**6))'])"
    sample = measure.run([sys.executable, "-c", busy], env={"PATH": "/usr/bin:/bin"})
    assert sample.exit_status == 0
    assert sample.wall > 0 and sample.cpu > 0 and sample.peak_rss > 1 << 20


def test_latency_times_each_phase_of_a_connection() -> None:
    """bench/latency.py's timing, on a connection that takes known times."""
    import time

    sys.path.insert(0, str(BENCH))
    try:
        import latency
    finally:
        sys.path.remove(str(BENCH))

    class Slow:
        def __init__(self) -> None:
            time.sleep(0.03)  # the handshake
            self.runs = 0

        def run(self, command: str) -> None:
            self.runs += 1
            time.sleep(0.04 if self.runs == 1 else 0.01)

        def close(self) -> None:
            pass

    ms = latency.measure(Slow, 3)  # a sleep never ends early; late, it may on a busy machine
    assert ms["handshake"] >= 30 and ms["first command"] >= 40 and ms["second command"] >= 10
    assert ms["first command"] > ms["second command"]


def test_the_scale_series_gets_a_subnet_that_holds_it(bench_modules) -> None:  # type: ignore[no-untyped-def]
    import scale

    assert scale.default_subnet(100) == "10.240.0.0/24"
    assert scale.default_subnet(243) == "10.240.0.0/24"
    assert scale.default_subnet(250) == "10.240.0.0/23"
    assert scale.default_subnet(1000) == "10.240.0.0/22"
    assert [scale.rounds_at(n, 7, 3, 500) for n in (100, 250, 500, 1000)] == [7, 7, 3, 3]


def test_growth_is_opsfix_over_the_floor_per_round_against_the_first_size(bench_modules) -> None:  # type: ignore[no-untyped-def]
    """Load that slows a whole round cancels out: each round's ratio is taken first."""
    import run
    import scale

    def series(size: int, name: str, walls: list[float]) -> run.Series:
        s = run.Series("health4", size, name, rounds=list(range(len(walls))))
        s.samples = [run.measure.Sample(w, w / 2, 100 * scale.MIB, 0) for w in walls]
        return s

    found = {
        ("health4", 100, "floor"): series(100, "floor", [4.0, 8.0, 4.0]),
        ("health4", 100, "opsfix"): series(100, "opsfix", [4.0, 8.0, 4.0]),
        ("health4", 1000, "floor"): series(1000, "floor", [40.0, 80.0, 40.0]),
        ("health4", 1000, "opsfix"): series(1000, "opsfix", [60.0, 80.0, 44.0]),
    }
    verdicts = {
        target: (measured, met) for target, measured, met in scale.targets(found, [100, 1000])
    }
    assert verdicts["health-4 @1000: growth of opsfix/floor since @100 <= 1.2"] == ("1.10", True)
    assert verdicts["health-4 @1000 <= 1.2x floor (paired rounds)"] == ("1.10x", True)
    assert verdicts["controller RSS @1000 < 500 MiB"] == ("100 MiB", True)
    found[("health4", 1000, "opsfix")].failures.append("exit 3")
    lost = {t: met for t, _, met in scale.targets(found, [100, 1000])}
    assert lost["no host lost to a limit (every opsfix and floor run exit 0)"] is False
    row = scale.growth(found, [100, 1000])[-1]
    assert row.startswith("| 1000 | 40.00 | 60.00 | 40.0 | 60.0 | 1.10x | 1.10 | 30.00 | 100 |")
    assert row.endswith("| 1 |")  # the failed run
