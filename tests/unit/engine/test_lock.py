"""Host locks, run for real in the local shell with flock."""

import os

import pytest

from opsfix.engine.lock import LOCK_PATH, Holder, HostLock, HostLocked, LockSettings

from ..localsh import LocalShell


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


def test_the_lease_lives_in_a_folder_of_its_own_never_in_the_world_writable_one():
    assert LOCK_PATH.startswith("/run/lock/opsfix/")


def test_a_lock_folder_planted_as_a_symlink_is_refused_and_nothing_written_through_it(
    tmp_path,
):
    victim = tmp_path / "etc"
    victim.mkdir()
    (tmp_path / "lock").symlink_to(victim)  # what a user of a world-writable /run/lock could do
    settings = LockSettings(wait=0.1, path=str(tmp_path / "lock" / "opsfix.lock"))
    with pytest.raises(HostLocked, match=r"lock folder .*/lock is not a folder of this user"):
        HostLock(LocalShell(), Holder.me("run-a"), settings).acquire()
    assert list(victim.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder to another user needs root")
def test_a_lock_folder_another_user_owns_is_refused(tmp_path):
    (tmp_path / "lock").mkdir()
    os.chown(tmp_path / "lock", 65534, 65534)
    settings = LockSettings(wait=0.1, path=str(tmp_path / "lock" / "opsfix.lock"))
    with pytest.raises(HostLocked, match=r"is not a folder of this user: refused"):
        HostLock(LocalShell(), Holder.me("run-a"), settings).acquire()
    assert list((tmp_path / "lock").iterdir()) == []


def test_a_try_cut_short_may_have_taken_the_lease_and_release_gives_it_back(settings):
    from opsfix.transport.base import CommandResult

    shell = LocalShell()
    lock = HostLock(shell, Holder.me("run-a"), settings)
    shell.run(lock.try_script())  # the try ran, but its answer never came back
    assert not lock.tried(CommandResult("try", -1)) and not lock.held
    lock.release()
    assert not os.path.exists(settings.path)
    other = HostLock(LocalShell(), Holder.me("run-b"), settings)
    assert other.acquire() is False  # free at once: no wait for a lease nobody holds
    other.release()
