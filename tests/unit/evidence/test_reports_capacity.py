"""The capacity report: forecasts from stored /var samples, first to fill first; a chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.evidence.reports import capacity
from opsfix.evidence.state import GrowthSample, Store, open_store

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
    assert [ln.split()[:2] for ln in printed[:2]] == [["HOST", "PATH"], ["!", "fast"]]
    assert printed[2:] == ["! 1 host(s) fill within 14 days (--warn-days)"]
    assert out.stat().st_size > 1000
    assert main(["report", "capacity", "-o", str(tmp_path / "c.pdf")]) == 5


def test_no_samples_is_said_plainly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "empty"))
    assert main(["report", "capacity"]) == 0
    assert "No samples of /var yet" in capsys.readouterr().err
    assert not Path(tmp_path / "empty").exists()


def _drawn(items, warn_days=14.0):
    """What the bars encode: per host, where its bar ends (days) and its length on screen."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = capacity.figure(items, warn_days)
    try:
        bars = fig.axes[0]
        fig.canvas.draw()
        hosts = [t.get_text() for t in bars.get_yticklabels()]
        drawn = {}
        for patch in bars.patches:
            if isinstance(patch, Rectangle) and patch.get_height() < 1:
                y = round(patch.get_y() + patch.get_height() / 2)
                x0, x1 = patch.get_x(), patch.get_x() + patch.get_width()
                (p0, _), (p1, _) = bars.transData.transform([(x0, y), (x1, y)])
                drawn[hosts[y]] = (x1, p1 - p0)
        return drawn, bars.get_xlim()
    finally:
        plt.close(fig)


def test_the_bars_fit_the_data_and_hosts_of_different_growth_differ(tmp_path):
    """60, 120 and 365 days to full once drew three identical bars, clipped at 56 days."""
    s = open_store(tmp_path / "opsfix.db")
    for host, days in (("week", 5), ("two_months", 60), ("four_months", 120), ("year", 365)):
        fill(s, host, 0.1 * GIB, days * 0.1 * GIB + 5 * 0.1 * GIB)  # `days` left at the end
    items = capacity.forecasts(s)
    assert [round(f.days_left or 0) for f in items] == [5, 60, 120, 365]
    drawn, (_, right) = _drawn(items)
    for f in items:
        end, _ = drawn[f.host]
        assert end == pytest.approx(f.days_left) and end < right  # true length, not clipped
    lengths = [drawn[f.host][1] for f in items]
    assert lengths == sorted(lengths) and len(set(map(round, lengths))) == 4  # all told apart
    assert lengths[0] > 20  # the week host is not squashed to nothing by the year host


def test_days_of_one_order_keep_a_linear_scale(store):
    drawn, (left, right) = _drawn([f for f in capacity.forecasts(store) if f.host == "fast"])
    end, pixels = drawn["fast"]
    assert left == 0 and end == pytest.approx(5.0) and right >= 14.0 and pixels > 0


def test_warn_days_marks_the_hosts_that_fill_sooner(store, tmp_path, monkeypatch, capsys):
    lines = capacity.table(capacity.forecasts(store), warn_days=200).splitlines()
    marks = {ln.split()[1]: ln.split()[0] for ln in lines[1:-1] if ln.startswith("!")}
    assert marks == {"fast": "!", "slow": "!"}  # 5 and 195 days; flat and new never fill
    assert lines[-1] == "! 2 host(s) fill within 200 days (--warn-days)"
    assert [ln.split()[0] for ln in capacity.table(capacity.forecasts(store)).splitlines()] == [
        "HOST",
        "fast",
        "slow",
        "flat",
        "new",
    ]
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path))
    assert main(["report", "capacity", "--warn-days", "3"]) == 0
    assert "!" not in capsys.readouterr().out  # nothing fills within 3 days
