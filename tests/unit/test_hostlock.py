"""Host locks, run for real in the local shell with flock."""

import pytest

from opsfix.hostlock import Holder, HostLock, HostLocked, LockSettings

from .localsh import LocalShell


@pytest.fixture
def settings(tmp_path):
    return LockSettings(
        wait=0.3, stale_after=600, path=str(tmp_path / "lock" / "opsfix.lock"), poll=0.05
    )


def test_second_run_waits_then_reports_the_holder(settings):
    first = HostLock(LocalShell(), Holder.me("run-a"), settings)
    assert first.acquire() is False
    second = HostLock(LocalShell(), Holder.me("run-b"), settings)
    with pytest.raises(HostLocked, match=r"locked by run run-a by .* since"):
        second.acquire()
    first.release()
    assert second.acquire() is False
    second.release()


def test_release_only_removes_our_own_lease(settings, tmp_path):
    first = HostLock(LocalShell(), Holder.me("run-a"), settings)
    first.acquire()
    other = HostLock(LocalShell(), Holder.me("run-b"), settings)
    other.held = True  # pretend, then release: must not steal run-a's lease
    other.release()
    assert "run-a" in (tmp_path / "lock" / "opsfix.lock").read_text()


def test_lease_of_a_dead_local_process_is_stale(settings):
    dead = Holder("run-dead", "root", Holder.me().controller, 2**22 + 12345, 2_000_000_000)
    HostLock(LocalShell(), dead, settings).acquire()
    assert HostLock(LocalShell(), Holder.me("run-new"), settings).acquire() is False


def test_old_lease_is_stale(settings):
    old = Holder("run-old", "root", "elsewhere", 1, 1000)
    HostLock(LocalShell(), old, settings).acquire()
    assert HostLock(LocalShell(), Holder.me("run-new"), settings).acquire() is False


def test_holder_line_round_trips():
    me = Holder.me("abc")
    assert Holder.parse(me.line()) == me
    assert Holder.parse("garbage") is None


def test_a_script_rides_with_the_lock_only_once_the_host_is_ours(settings, tmp_path):
    from opsfix.shell import batch, unbatch

    gather = ["echo gathered", f"touch {tmp_path}/rode"]
    shell = LocalShell()
    first = HostLock(shell, Holder.me("run-a"), settings)
    assert first.acquire(batch(gather)) is False
    assert len(shell.scripts) == 1  # lock and gather: one round trip
    assert first.ride_result is not None
    said, touched = unbatch(gather, first.ride_result)
    assert said.stdout == "gathered\n" and touched.exit_status == 0

    (tmp_path / "rode").unlink()
    second = HostLock(LocalShell(), Holder.me("run-b"), settings)
    with pytest.raises(HostLocked):
        second.acquire(batch(gather))
    assert second.ride_result is None and not (tmp_path / "rode").exists()  # never ran
    first.release()


def test_a_try_run_elsewhere_is_read_back(tmp_path):
    """try_script rides in another script (the first checks); tried reads what it printed."""
    from opsfix.transport.base import CommandResult

    shell = LocalShell()
    settings = LockSettings(path=str(tmp_path / "opsfix.lock"))
    mine = HostLock(shell, Holder.me("mine"), settings)
    ride = "echo gathered"
    assert mine.tried(shell.run(mine.try_script(ride)), ride) and mine.held
    assert mine.ride_result is not None and mine.ride_result.stdout == "gathered\n"

    theirs = HostLock(shell, Holder.me("theirs"), settings)
    assert not theirs.tried(shell.run(theirs.try_script(ride)), ride)  # held: no wait here
    assert not theirs.held and theirs.ride_result is None
    assert not theirs.tried(CommandResult("x", -1, "", "cut short"), ride)  # no answer
    mine.release()
    assert not (tmp_path / "opsfix.lock").exists()
