"""The capacity report: forecasts from stored /var samples, first to fill first; a chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.reports import capacity
from opsfix.state import GrowthSample, Store, open_store

DAY, GIB = 86400.0, 2**30
NOW = 1_700_000_000.0


def fill(store: Store, host: str, per_day: float, avail: float, days: int = 5) -> None:
    for i in range(days + 1):
        grown = per_day * i
        t = NOW - (days - i) * DAY
        store.add_growth_sample(
            GrowthSample(host, "/var", t, int(2 * GIB + grown), int(40 * GIB), int(avail - grown))
        )


@pytest.fixture
def store(tmp_path) -> Store:
    s = open_store(tmp_path / "opsfix.db")
    fill(s, "slow", 0.1 * GIB, 20 * GIB)  # 195 days left at the end
    fill(s, "fast", 1.0 * GIB, 10 * GIB)  # 5 days left
    fill(s, "flat", 0.0, 20 * GIB)
    s.add_growth_sample(GrowthSample("new", "/var", NOW, GIB, 40 * GIB, 30 * GIB))
    return s


def test_the_host_that_fills_first_comes_first(store):
    items = capacity.forecasts(store)
    assert [f.host for f in items] == ["fast", "slow", "flat", "new"]
    fast = items[0]
    assert fast.days_left == pytest.approx(5.0)
    assert fast.full_at == pytest.approx(NOW + 5 * DAY)
    assert fast.per_day == pytest.approx(GIB, rel=1e-6)
    assert items[2].status() == "not growing" and items[3].status().startswith("collecting")


def test_the_forecast_uses_the_window_like_the_check(store):
    # an old burst outside the 7-day window does not count
    store.add_growth_sample(GrowthSample("slow", "/var", NOW - 30 * DAY, 0, int(40 * GIB), 0))
    [slow] = capacity.forecasts(store, hosts=["slow"])
    assert slow.per_day == pytest.approx(0.1 * GIB, rel=1e-6)
    assert len(slow.samples) == 7  # the chart still shows all of them


def test_the_table_has_one_row_per_host_in_order(store):
    lines = capacity.table(capacity.forecasts(store)).splitlines()
    assert lines[0].split()[:3] == ["HOST", "PATH", "SIZE"]
    assert [ln.split()[0] for ln in lines[1:]] == ["fast", "slow", "flat", "new"]
    assert "5.0 days" in lines[1] and "2023-11-19" in lines[1]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_chart_is_written(store, tmp_path, suffix):
    out = tmp_path / f"capacity{suffix}"
    capacity.chart(capacity.forecasts(store), out)
    head = out.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in out.read_bytes()


def test_the_command_prints_the_table_and_refuses_other_chart_formats(
    store, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path))  # the store's folder
    out = tmp_path / "c.png"
    assert main(["report", "capacity", "--host", "fast", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in printed] == ["HOST", "fast"]
    assert out.stat().st_size > 1000
    assert main(["report", "capacity", "-o", str(tmp_path / "c.pdf")]) == 5


def test_no_samples_is_said_plainly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "empty"))
    assert main(["report", "capacity"]) == 0
    assert "No samples of /var yet" in capsys.readouterr().err
    assert not Path(tmp_path / "empty").exists()
