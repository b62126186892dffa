"""var_growth: real df and du output from a lab host, judged against samples seeded in a
real state database at chosen times (the clock is injected)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from opsfix.checks.var_growth import DAY, VarGrowth, fastest, slope
from opsfix.evidence.state import GrowthSample, Store, open_store
from opsfix.plugin import CheckContext
from opsfix.transport.base import CommandResult

from .helpers import assert_harmless, hostile, load, make
from .throwaway import run_local

NOW = 1_800_000_000.0
GIB = 1024**3


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "opsfix.db")


def growth(store: Store, case: str = "lab", now: float = NOW, host: str = "web1", **params):
    """The verdict on a captured case at time `now`, with the store as the state."""
    captured, results = load("var_growth", case)
    check = VarGrowth(
        VarGrowth.Params(**{**captured, **params}),
        CheckContext(host, state=lambda: store, clock=lambda: now),
    )
    return check.evaluate(results)


def seed(store: Store, *points: tuple[float, float], host: str = "web1", **folders_at) -> None:
    """Samples of /var: (days before NOW, size in GiB)."""
    for days, size in points:
        folders = {}
        if folders_at:  # the captured subfolders, unchanged, as every real sample has them
            folders = {k.replace("/", "__")[2:]: v for k, v in captured_folders().items()}
        folders.update({name: int(f(days)) for name, f in folders_at.items()})
        store.add_growth_sample(
            GrowthSample(
                host,
                "/var",
                NOW - days * DAY,
                int(size * GIB),
                250 * GIB,
                80 * GIB,
                {"/" + k.replace("__", "/"): v for k, v in folders.items()},
            )
        )


def captured_folders() -> dict[str, int]:
    _, results = load("var_growth", "lab")
    lines = (line.split("\t") for line in results[1].stdout.splitlines()[1:])
    return {folder: int(size) * 1024 for size, folder in lines}


def captured_total() -> float:
    _, results = load("var_growth", "lab")
    return int(results[1].stdout.split("\t")[0]) * 1024 / GIB


def test_the_first_run_records_a_baseline(store):
    verdict = growth(store)
    assert verdict.ok and verdict.summary == "baseline recorded: /var 2.3 GiB"
    [sample] = store.growth_samples("web1", "/var")
    free_kib = int(load("var_growth", "lab")[1][0].stdout.splitlines()[1].split()[3])
    assert sample.taken_at == NOW and sample.fs_avail == free_kib * 1024
    assert sample.folders["/var/cache/apt"] == 2310492 * 1024
    assert growth(store, now=NOW + 60).summary.startswith("collecting samples: 2 over 1.0 min")


def test_samples_are_kept_per_host(store):
    growth(store, host="web1")
    assert growth(store, host="web2").summary.startswith("baseline recorded")


def test_a_steady_growth_is_forecast(store):
    now = captured_total()
    seed(store, *[(d, now - 0.5 * d) for d in (6, 5, 4, 3, 2, 1)])  # +0.5 GiB/day
    verdict = growth(store)
    assert verdict.ok
    assert verdict.evidence["growth"] == "+512.0 MiB/day"
    free_kib = int(load("var_growth", "lab")[1][0].stdout.splitlines()[1].split()[3])
    assert verdict.evidence["days_left"] == pytest.approx(free_kib / 1024 / 1024 / 0.5, abs=0.2)
    assert verdict.evidence["samples"] == 7 and verdict.evidence["span"] == "6.0 days"


def test_filling_sooner_than_the_forecast_threshold_fails(store):
    now = captured_total()
    seed(store, (3, now - 30), (2, now - 20), (1, now - 10))  # +10 GiB/day, 79 GiB free
    verdict = growth(store)
    assert verdict.status == "failed"
    assert verdict.summary == "/var fills its filesystem in 7.9 days at +10.0 GiB/day"
    assert growth(store, now=NOW + 1, forecast_days=7).ok


def test_a_rate_limit_fails_on_its_own(store):
    now = captured_total()
    seed(store, (2, now - 1), (1, now - 0.5))
    verdict = growth(store, max_growth_mib_per_day=100)
    assert (
        verdict.status == "failed"
        and verdict.summary == "/var grows +512.0 MiB/day, over 100 MiB/day"
    )


def test_only_the_window_counts(store):
    now = captured_total()
    seed(store, (30, now - 300), (20, now - 200), (2, now), (1, now))
    verdict = growth(store, window_days=7)
    assert verdict.summary == "/var is not growing (+0 B/day)"
    assert verdict.evidence["samples"] == 3


def test_a_shrinking_folder_has_no_forecast(store):
    now = captured_total()
    seed(store, (2, now + 2), (1, now + 1))
    verdict = growth(store)
    assert verdict.ok and verdict.summary == "/var is not growing (-1.0 GiB/day)"
    assert "days_left" not in verdict.evidence


def test_samples_from_the_future_are_left_out(store):
    now = captured_total()
    seed(store, (2, now - 2), (1, now - 1), (-3, now + 100), (-1, now + 50))
    verdict = growth(store)
    assert verdict.evidence["ignored_future_samples"] == 2
    assert verdict.evidence["growth"] == "+1.0 GiB/day"


def test_out_of_order_and_duplicate_times_fit_the_same(store):
    now = captured_total()
    seed(store, (1, now - 1), (3, now - 3), (2, now - 2), (2, now - 2))
    assert growth(store).evidence["growth"] == "+1.0 GiB/day"


def test_too_short_a_span_keeps_collecting(store):
    seed(store, (0.01, 1.0))
    verdict = growth(store, min_span_hours=1)
    assert verdict.ok and verdict.summary.startswith("collecting samples: 2 over 14.4 min")
    assert growth(store, now=NOW + 1, min_span_hours=0).evidence["growth"]


def test_the_fastest_growing_folders_are_named_without_redundant_parents(store):
    now = captured_total()
    seed(
        store,
        (2, now - 2),
        (1, now - 1),
        var__log=lambda d: 5 * GIB - d * GIB,
        var__lib=lambda d: 3 * GIB - d * 0.5 * GIB,
        var__lib__docker=lambda d: 2 * GIB - d * 0.45 * GIB,
    )
    _, results = load("var_growth", "lab")
    sizes = "\n".join(
        [
            f"{5 * GIB // 1024}\t/var/log",
            f"{3 * GIB // 1024}\t/var/lib",
            f"{2 * GIB // 1024}\t/var/lib/docker",
        ]
    )
    du = dataclasses.replace(results[1], stdout=results[1].stdout + sizes + "\n")
    check = VarGrowth(VarGrowth.Params(), CheckContext("web1", lambda: store, lambda: NOW))
    verdict = check.evaluate([results[0], du])
    assert verdict.evidence["fastest_growing"][:2] == [
        "/var/log +1.0 GiB/day",
        "/var/lib/docker +460.8 MiB/day",
    ]


def test_slope_is_least_squares():
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2
    assert slope([(0, 0), (1, 2), (2, 1)]) == 0.5
    assert slope([(5, 1), (5, 9)]) is None and slope([(1, 1)]) is None
    assert fastest([GrowthSample("h", "/var", 0, 1, 1, 1, {"/var/a": 1})], 5) == []


def test_du_that_runs_out_of_time_is_could_not_tell(store):
    verdict = growth(store, "du_timeout")
    assert verdict.status == "error" and verdict.summary == "du /var did not finish in 0.001s"
    assert store.growth_sample_count("web1", "/var") == 0


def test_a_missing_folder_is_could_not_tell(store):
    verdict = growth(store, "missing_path")
    assert verdict.status == "error" and "No such file" in verdict.evidence["stderr"]


def test_without_a_state_database_it_cannot_tell():
    _, results = load("var_growth", "lab")
    assert make(VarGrowth).evaluate(results).status == "error"


@pytest.mark.parametrize(
    "params",
    [
        {"path": "var"},
        {"path": "/var/../etc"},
        {"depth": 3},
        {"window_days": 0},
        {"forecast_days": -1},
        {"timeout": 0},
        {"max_growth_mib_per_day": 0},
    ],
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        make(VarGrowth, **params)


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, _ = hostile(tmp_path)
    value = f"/tmp/x; touch {marker}"
    assert_harmless(make(VarGrowth, path=value), marker, value)


def test_real_commands_here(tmp_path, store):
    (tmp_path / "data/a").mkdir(parents=True)
    (tmp_path / "data/a/f").write_bytes(b"x" * 100_000)
    check = VarGrowth(
        VarGrowth.Params(path=str(tmp_path / "data")),
        CheckContext("local", lambda: store, lambda: NOW),
    )
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.summary.startswith("baseline recorded")
    [sample] = store.growth_samples("local", str(tmp_path / "data"))
    assert sample.folders[str(tmp_path / "data/a")] >= 100_000


def test_results_must_parse(store):
    bad = [CommandResult("df", 0, "junk\n"), CommandResult("du", 0, "", "du-exit 0")]
    check = VarGrowth(VarGrowth.Params(), CheckContext("h", lambda: store, lambda: NOW))
    assert check.evaluate(bad).status == "error"
