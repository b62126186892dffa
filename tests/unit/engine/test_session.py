"""HostSession on its own: scripts really run in the local shell, no engine involved."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from opsfix.engine.session import BecomeRefused, HostSession
from opsfix.errors import CommandTimeout, ConnectionFailed
from opsfix.transport.base import CommandResult
from opsfix.transport.become import SUDO_WRONG_PASSWORD
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec


class Shell:
    """The local shell with a real transport's limits; notes every script it ran."""

    def __init__(self, command_timeout: float = 20) -> None:
        spec = ConnectionSpec("h1", "127.0.0.1", command_timeout=command_timeout)
        self.inner = LocalConnection(spec)
        self.scripts: list[str] = []
        self.down = False

    def run(self, script: str, **kw: Any) -> CommandResult:
        if self.down:
            raise ConnectionFailed("h1", "connection lost")
        self.scripts.append(script)
        return self.inner.run(script, **kw)


def session(shell: Shell, check_limit: float = 30) -> HostSession:
    return HostSession(
        shell, check_limit=check_limit, command_limit=shell.inner.spec.command_timeout
    )


def test_commands_riding_together_take_one_round_trip_and_each_gets_its_own_result():
    shell = Shell()
    s = session(shell)
    one = s.ride("echo one")
    two = s.ride("echo two >&2; exit 3")
    [checked] = s.check(["printf x"])

    assert len(shell.scripts) == 1
    assert (one.result.exit_status, one.result.stdout) == (0, "one\n")
    assert (two.result.exit_status, two.result.stderr) == (3, "two\n")
    assert checked.stdout == "x"
    assert one.result.command == "echo one"


def test_a_result_is_not_there_before_its_round_trip():
    s = session(Shell())
    pending = s.ride("true")
    assert not pending.ran and not pending.fresh
    with pytest.raises(RuntimeError, match="not sent yet"):
        _ = pending.result


def test_an_optional_command_repeating_an_earlier_one_shares_its_result(tmp_path: Path):
    shell = Shell()
    s = session(shell)
    log = tmp_path / "log"
    probe = f"echo run >> {log}; echo probe"
    needed = s.ride(probe)
    again = s.ride(probe)  # needed: runs again (a check's own view of the host)
    rider = s.ride(probe, optional=True)
    s.send()

    assert log.read_text() == "run\nrun\n"
    assert rider.result.stdout == needed.result.stdout == again.result.stdout == "probe\n"


@pytest.mark.parametrize("status, runs", [(0, False), (1, True)])
def test_if_failed_runs_a_command_only_where_the_one_it_names_failed(status: int, runs: bool):
    s = session(Shell())
    probe = s.ride(f"exit {status}")
    s.ride("echo between")
    follow = s.ride("echo followed", optional=True, if_failed=probe)
    s.send()

    assert follow.result.stdout == ("followed\n" if runs else "")
    assert follow.result.exit_status == 0


def test_if_failed_must_name_a_command_of_the_same_round_trip():
    s = session(Shell())
    earlier = s.ride("false")
    s.send()
    with pytest.raises(ValueError, match="same trip"):
        s.ride("echo x", if_failed=earlier)


def test_a_result_stays_fresh_until_a_round_trip_that_may_change_the_host(tmp_path: Path):
    s = session(Shell())
    first = s.ride("echo a")
    s.send()
    s.run("true")  # read-only: the host is as it was
    s.check(["true"])
    assert first.fresh

    s.changing.run(f"touch {tmp_path / 'changed'}")
    assert first.ran and not first.fresh
    later = s.ride("echo b")
    s.send()
    assert later.fresh

    s.host_changed()  # another run held the host meanwhile
    assert not later.fresh


def test_a_held_script_goes_in_front_of_the_next_round_trip_once(tmp_path: Path):
    shell = Shell()
    s = session(shell)
    mark = tmp_path / "committed"
    s.before_next_change(f"echo committed >> {mark}")
    assert not mark.exists()  # held: no round trip of its own

    [probe] = s.check([f"cat {mark}"])
    assert probe.stdout == "committed\n"  # it ran first, in that same round trip
    s.changing.run("true")
    s.close()
    assert mark.read_text() == "committed\n" and len(shell.scripts) == 2


def test_a_held_script_in_front_of_a_plain_script_keeps_that_scripts_output(tmp_path: Path):
    s = session(Shell())
    s.before_next_change(f"echo noise; echo held > {tmp_path / 'held'}")
    done = s.changing.run("echo mine")
    assert done.stdout == "mine\n"
    assert (tmp_path / "held").read_text() == "held\n"


def test_close_sends_what_is_held_and_a_lost_round_trip_keeps_it_held(tmp_path: Path):
    shell = Shell()
    s = session(shell)
    mark = tmp_path / "committed"
    s.before_next_change(f"echo committed > {mark}")
    shell.down = True
    with pytest.raises(ConnectionFailed):
        s.check(["true"])
    shell.down = False
    s.close()
    assert mark.read_text() == "committed\n"
    s.close()  # nothing left: no round trip
    assert len(shell.scripts) == 1


def test_probes_the_check_limit_cut_run_again_alone_and_optional_ones_do_not(tmp_path: Path):
    shell = Shell(command_timeout=20)
    s = session(shell, check_limit=1.0)
    log = tmp_path / "log"
    fast = s.ride(f"echo fast >> {log}")
    hung = s.ride(f"echo hung >> {log}; sleep 60")
    after = s.ride(f"echo after >> {log}")
    rider = s.ride(f"echo rider >> {log}; sleep 60", optional=True)
    began = time.monotonic()
    s.send()

    assert time.monotonic() - began < 8  # two limits of 1 s and the kill grace
    assert fast.result.ok and after.result.ok
    assert hung.result.exit_status not in (0, -1)  # bounded on its own: timeout's status
    assert rider.result.exit_status == -1  # no answer: its reader runs it live
    assert sorted(log.read_text().split()) == ["after", "fast", "hung", "hung"]  # rider: never
    assert len(shell.scripts) == 2


def test_without_a_shorter_check_limit_a_hung_script_is_a_timeout():
    shell = Shell(command_timeout=1)
    s = session(shell, check_limit=30)
    s.ride("sleep 60")
    with pytest.raises(CommandTimeout):
        s.send()


class Refusing:
    """sudo's answer to a wrong become password, for every script."""

    def run(self, script: str, **kw: Any) -> CommandResult:
        return CommandResult(script, 1, "", SUDO_WRONG_PASSWORD)


def test_a_refused_become_password_stops_the_session():
    s = HostSession(Refusing(), check_limit=30, command_limit=60)
    s.ride("true")
    with pytest.raises(BecomeRefused, match="incorrect password"):
        s.send()
