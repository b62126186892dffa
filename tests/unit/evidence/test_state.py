"""The local state database: where it lives, its permissions, migrations, threads."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from opsfix.evidence import state
from opsfix.evidence.state import GrowthSample, StateError, lazy_store, open_store, state_dir


def test_location_follows_the_environment(tmp_path):
    assert state_dir({"OPSFIX_STATE_DIR": "/x/y", "XDG_STATE_HOME": "/z"}) == Path("/x/y")
    assert state_dir({"XDG_STATE_HOME": "/z", "HOME": "/h"}) == Path("/z/opsfix")
    assert state_dir({"HOME": "/h"}) == Path("/h/.local/state/opsfix")
    assert state_dir({"OPSFIX_STATE_DIR": "", "HOME": "/h"}) == Path("/h/.local/state/opsfix")


def test_created_private(tmp_path):
    path = tmp_path / "home/.local/state/opsfix/opsfix.db"
    store = open_store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "home/.local"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert store.version == state.SCHEMA_VERSION == len(state.MIGRATIONS)


def test_samples_round_trip_in_time_order(tmp_path):
    store = open_store(tmp_path / "s.db")
    for t in (30.0, 10.0, 20.0):
        store.add_growth_sample(GrowthSample("web1", "/var", t, int(t), 100, 50, {"/var/a": 1}))
    store.add_growth_sample(GrowthSample("web2", "/var", 15.0, 1, 100, 50))
    got = store.growth_samples("web1", "/var")
    assert [s.taken_at for s in got] == [10.0, 20.0, 30.0]
    assert got[0].folders == {"/var/a": 1}
    assert [s.taken_at for s in store.growth_samples("web1", "/var", since=20.0)] == [20.0, 30.0]
    assert store.growth_sample_count("web1", "/var") == 3
    assert store.growth_samples("web1", "/srv") == []


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path):
    path = tmp_path / "s.db"
    open_store(path).add_growth_sample(GrowthSample("h", "/var", 1.0, 1, 1, 1))
    again = open_store(path)
    assert again.growth_sample_count("h", "/var") == 1
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(state.SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StateError, match="schema version 99, newer than this opsfix knows"):
        open_store(path)


def test_a_migration_is_applied_in_one_transaction(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    open_store(path).add_growth_sample(GrowthSample("h", "/var", 1.0, 1, 1, 1))
    broken = (*state.MIGRATIONS, ("CREATE TABLE runs (id INTEGER)", "NOT SQL"))
    monkeypatch.setattr(state, "MIGRATIONS", broken)
    monkeypatch.setattr(state, "SCHEMA_VERSION", 2)
    with pytest.raises(StateError, match="syntax error"):
        open_store(path)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "runs" not in tables  # rolled back whole
    good = (*state.MIGRATIONS[:1], ("CREATE TABLE runs (id INTEGER)",))
    monkeypatch.setattr(state, "MIGRATIONS", good)
    store = open_store(path)
    assert store.version == 2 and store.growth_sample_count("h", "/var") == 1


def test_an_unusable_file_is_a_state_error(tmp_path):
    (tmp_path / "s.db").write_text("this is not a database, it is text" * 100)
    with pytest.raises(StateError, match="cannot open opsfix state"):
        open_store(tmp_path / "s.db")


def test_threads_share_one_store(tmp_path):
    store = open_store(tmp_path / "s.db")

    def write(host: str) -> None:
        for i in range(50):
            store.add_growth_sample(GrowthSample(host, "/var", float(i), i, 1, 1, {"/var/x": i}))
            store.growth_samples(host, "/var")

    threads = [threading.Thread(target=write, args=(f"web{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.growth_sample_count(f"web{n}", "/var") == 50 for n in range(8))


def test_two_processes_worth_of_connections(tmp_path):
    first, second = open_store(tmp_path / "s.db"), open_store(tmp_path / "s.db")
    first.add_growth_sample(GrowthSample("h", "/var", 1.0, 1, 1, 1))
    assert second.growth_sample_count("h", "/var") == 1


def test_the_lazy_store_opens_once_and_only_when_asked(tmp_path):
    path = tmp_path / "lazy/opsfix.db"
    get = lazy_store(path)
    assert not path.exists()
    assert get() is get()
    assert path.exists()


def test_the_default_location_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(tmp_path / "st"))
    assert open_store().path == tmp_path / "st" / "opsfix.db"
