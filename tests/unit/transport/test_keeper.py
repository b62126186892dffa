"""Kept connections: what a connection is keyed by, what the keeper may remember, and how
requests and errors cross the socket (the real keeper against lab hosts is in
tests/integration/test_keeper.py)."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from opsfix.errors import CommandTimeout, ConnectionFailed, HostKeyError, OptionsError
from opsfix.secret import Secret
from opsfix.transport import wire
from opsfix.transport.base import CommandResult
from opsfix.transport.keeper import daemon as keeper
from opsfix.transport.keeper.link import (
    DEFAULT_MAX_AGE,
    DEFAULT_PERSIST,
    KeeperLink,
    KeptConnection,
    _private_folder,
    connection_key,
    connector,
    keeper_environment,
    kept_spec,
    max_age_seconds,
    persist_seconds,
)
from opsfix.transport.spec import ConnectionSpec


@pytest.fixture
def spec(tmp_path: Path) -> ConnectionSpec:
    key = tmp_path / "id_ed25519"
    key.write_text("key\n")
    known = tmp_path / "known_hosts"
    known.write_text("web1 ssh-ed25519 AAAA\n")
    return ConnectionSpec(
        host="web1",
        hostname="10.0.0.1",
        user="ops",
        key_file=str(key),
        known_hosts_files=(str(known),),
        become=True,
        become_password=Secret("hunter2"),
    )


# --- the key: whom a connection reaches, and how it was trusted ------------------------


def test_the_key_ignores_what_each_command_brings(spec: ConnectionSpec) -> None:
    other = dataclasses.replace(
        spec, host="alias", become=False, become_password=None, command_timeout=5.0
    )
    assert connection_key(other) == connection_key(spec)


@pytest.mark.parametrize(
    "change",
    [
        {"hostname": "10.0.0.2"},
        {"port": 2222},
        {"user": "root"},
        {"trust_new_host_keys": True},
        {"proxy_jump": "bastion"},
        {"proxy_command": "nc %h %p"},
    ],
)
def test_the_key_changes_with_whom_and_how_it_connects(
    spec: ConnectionSpec, change: dict[str, Any]
) -> None:
    assert connection_key(dataclasses.replace(spec, **change)) != connection_key(spec)


def test_an_edited_known_hosts_file_or_a_new_key_file_means_a_new_connection(
    spec: ConnectionSpec,
) -> None:
    before = connection_key(spec)
    known = Path(spec.known_hosts_files[0])
    known.write_text("web1 ssh-ed25519 BBBB\n")  # a key replaced (same size, new mtime)
    os.utime(known, ns=(1, 1))
    assert connection_key(spec) != before
    edited = connection_key(spec)
    assert spec.key_file is not None
    Path(spec.key_file).write_text("rotated key\n")
    assert connection_key(spec) != edited


def test_a_kept_spec_holds_no_become_password(spec: ConnectionSpec) -> None:
    kept = kept_spec(spec)
    assert kept.become_password is None
    assert dataclasses.replace(kept, become_password=spec.become_password) == spec


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, {}, DEFAULT_PERSIST),
        (None, {"OPSFIX_PERSIST": "0"}, 0.0),
        (None, {"OPSFIX_PERSIST": " 300 "}, 300.0),
        (15.0, {"OPSFIX_PERSIST": "0"}, 15.0),
    ],
)
def test_persist_comes_from_the_option_then_the_environment(
    given: float | None, env: dict[str, str], expected: float
) -> None:
    assert persist_seconds(given, env) == expected


@pytest.mark.parametrize(
    ("given", "env", "named"),
    [
        (None, {"OPSFIX_PERSIST": "soon"}, "OPSFIX_PERSIST='soon'"),
        (None, {"OPSFIX_PERSIST": "-5"}, "OPSFIX_PERSIST='-5'"),
        (None, {"OPSFIX_PERSIST": "nan"}, "OPSFIX_PERSIST='nan'"),
        (-1.0, {}, "--persist -1"),
    ],
)
def test_a_bad_persist_value_is_an_options_error_naming_it(
    given: float | None, env: dict[str, str], named: str
) -> None:
    with pytest.raises(OptionsError, match=re.escape(named)):
        persist_seconds(given, env)


def test_without_a_key_file_hosts_connect_per_run(spec: ConnectionSpec) -> None:
    """ssh-agent and ~/.ssh/id_* are the run's own environment: the keeper has another."""
    opened: list[ConnectionSpec] = []

    class Link:
        max_age = DEFAULT_MAX_AGE

        def usable(self) -> bool:
            return True

        def call(self, host: str, op: str, *args: Any, **kwargs: Any) -> Any:
            opened.append(args[1])
            return False

    connect = connector(Link())  # type: ignore[arg-type]
    assert isinstance(connect(dataclasses.replace(spec, become_password=None)), KeptConnection)
    with pytest.raises(ConnectionFailed):  # in-process: no such host
        connect(dataclasses.replace(spec, key_file=None, hostname="127.0.0.1", port=1))


# --- the wire ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        CommandTimeout("web1", "sleep 9", 2.0, "partial out", "partial err"),
        HostKeyError("web1", "host key changed"),
        ConnectionFailed("web1", "connection lost"),
    ],
)
def test_errors_come_back_as_the_types_the_transport_raises(error: Exception) -> None:
    back = wire.decode_error(wire.encode_error(error), "web1")
    assert type(back) is type(error)
    assert vars(back) == vars(error)
    assert str(back) == str(error)


def test_an_unexpected_error_comes_back_as_a_failed_connection() -> None:
    back = wire.decode_error(wire.encode_error(KeyError("x")), "web1")
    assert isinstance(back, ConnectionFailed)
    assert "KeyError" in back.reason


def test_messages_cross_whole_and_a_closed_end_is_seen() -> None:
    a, b = socket.socketpair()
    big = CommandResult("cat big", 0, "x" * 3_000_000)
    sender = threading.Thread(target=wire.send, args=(a, threading.Lock(), (7, True, big)))
    sender.start()
    assert wire.receive(b) == (7, True, big)
    sender.join()
    a.close()
    with pytest.raises(wire.Closed):
        wire.receive(b)


def test_an_oversized_message_is_refused() -> None:
    a, b = socket.socketpair()
    a.sendall((wire.MAX_MESSAGE + 1).to_bytes(4, "big"))
    with pytest.raises(wire.Closed):
        wire.receive(b)


# --- the keeper's bookkeeping, with a stand-in for SSHConnection -------------------------


class FakeSSH:
    made: ClassVar[list[FakeSSH]] = []

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self.host = spec.host
        self.login_user = spec.user or "root"
        self.alive = False
        self.answers = True
        self.ran: list[tuple[str, ConnectionSpec | None]] = []
        FakeSSH.made.append(self)

    def responds(self, timeout: float) -> bool:
        return self.answers

    def open(self) -> None:
        self.alive = True

    def close(self) -> None:
        self.alive = False

    def run(self, script: str, **kwargs: Any) -> CommandResult:
        self.ran.append((script, kwargs.get("settings")))
        return CommandResult(script, 0, "ok")


@pytest.fixture
def fake_keeper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> keeper.Keeper:
    FakeSSH.made = []
    monkeypatch.setattr(keeper, "SSHConnection", FakeSSH)
    return keeper.Keeper(tmp_path / "keeper.sock", persist=60)


def test_a_host_whose_sudo_needs_a_password_never_goes_through_the_keeper(
    spec: ConnectionSpec,
) -> None:
    """The keeper outlives the run: a password sent through it would stay in its memory."""
    sent: list[tuple[Any, ...]] = []

    class Link:
        max_age = DEFAULT_MAX_AGE

        def usable(self) -> bool:
            return True

        def call(self, host: str, op: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(args)
            return CommandResult("id", 0, "ok") if op == "run" else False

    connect = connector(Link())  # type: ignore[arg-type]
    with pytest.raises(ConnectionFailed):  # in-process (the fake key is read here)
        connect(dataclasses.replace(spec, hostname="127.0.0.1", port=1))
    assert sent == []
    # logged in as the become user, sudo is never asked: the keeper serves, password-free
    as_root = dataclasses.replace(spec, user="root", become_user="root")
    conn = connect(as_root)
    assert isinstance(conn, KeptConnection) and conn.spec.become_password is None
    conn.run("id", become=True)
    assert "hunter2" not in repr(sent) and all(
        a.become_password is None for args in sent for a in args if isinstance(a, ConnectionSpec)
    )


def test_the_keeper_starts_with_none_of_the_runs_secrets() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/root", "OPSFIX_BECOME_PASSWORD": "hunter2"}
    env |= {"SSH_AUTH_SOCK": "/tmp/agent", "AWS_SECRET_ACCESS_KEY": "k", "PYTHONPATH": "/src"}
    assert keeper_environment(env) == {"PATH": "/usr/bin", "HOME": "/root", "PYTHONPATH": "/src"}


def test_the_keeper_uses_for_each_command_only_what_the_command_brings(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    key = connection_key(spec)
    assert fake_keeper.open(key, spec) is False
    conn = FakeSSH.made[-1]
    assert conn.spec.become_password is None
    result = fake_keeper.op_run(key, spec, "id", True, None)
    assert result.stdout == "ok"
    assert conn.ran == [("id", spec)]  # the password came with the command, for it alone
    assert all(c.spec.become_password is None for c in FakeSSH.made)


def test_a_live_connection_is_reused_and_a_dead_one_replaced(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    key = connection_key(spec)
    run = keeper._Client(socket.socket())
    fake_keeper.open(key, spec, client=run)
    assert fake_keeper.open(key, spec, client=run) is True
    assert len(FakeSSH.made) == 1
    FakeSSH.made[-1].alive = False  # the host rebooted
    assert fake_keeper.open(key, spec, client=run) is False
    assert len(FakeSSH.made) == 2
    assert fake_keeper.kept[key].users == 3 and run.held == {key: 3}
    fake_keeper.release(key, run)
    assert fake_keeper.kept[key].users == 2


def test_a_connection_opened_for_a_run_already_gone_is_not_held_for_it(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    """Else it would count as in use forever, and never close."""
    key = connection_key(spec)
    run = keeper._Client(socket.socket())
    run.gone = True
    fake_keeper.open(key, spec, client=run)
    assert fake_keeper.kept[key].users == 0 and run.held == {}


def test_an_idle_connection_that_no_longer_answers_is_replaced(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that rebooted sends no close: only a keepalive tells."""
    key = connection_key(spec)
    run = keeper._Client(socket.socket())
    fake_keeper.open(key, spec, client=run)
    fake_keeper.release(key, run)
    monkeypatch.setattr(keeper, "RECENT", 0.0)  # idle long enough to be asked
    assert fake_keeper.open(key, spec, client=run) is True  # it answers: reused
    fake_keeper.release(key, run)
    FakeSSH.made[-1].answers = False
    assert fake_keeper.open(key, spec, client=run) is False
    assert len(FakeSSH.made) == 2 and not FakeSSH.made[0].alive


def test_a_keeper_that_cannot_start_leaves_the_run_its_own_connections(
    spec: ConnectionSpec,
) -> None:
    class Broken:
        def usable(self) -> bool:
            return False

    connect = connector(Broken())  # type: ignore[arg-type]
    with pytest.raises(ConnectionFailed) as failed:  # in-process: the (fake) key is read here
        connect(dataclasses.replace(spec, hostname="127.0.0.1", port=1))
    assert "cannot load private key" in failed.value.reason


class _Leaving:
    """A keeper that exits (idling out) as the run asks it for a connection."""

    max_age = DEFAULT_MAX_AGE

    def __init__(self, leaves: bool) -> None:
        self.leaves = leaves
        self.gone = False

    def usable(self) -> bool:
        return not self.gone

    def call(self, host: str, *args: Any, **kwargs: Any) -> Any:
        self.gone = self.leaves
        raise ConnectionFailed(host, "host unreachable" if not self.leaves else "keeper exited")


def test_a_keeper_gone_as_the_run_came_leaves_the_run_its_own_connections(
    spec: ConnectionSpec,
) -> None:
    connect = connector(_Leaving(leaves=True))  # type: ignore[arg-type]
    with pytest.raises(ConnectionFailed) as failed:  # in-process: the (fake) key is read here
        connect(dataclasses.replace(spec, hostname="127.0.0.1", port=1))
    assert "cannot load private key" in failed.value.reason


def test_a_host_the_keeper_cannot_reach_is_reported_as_such(spec: ConnectionSpec) -> None:
    connect = connector(_Leaving(leaves=False))  # type: ignore[arg-type]
    with pytest.raises(ConnectionFailed, match="host unreachable"):
        connect(dataclasses.replace(spec, become_password=None))


def test_a_command_for_a_connection_never_opened_fails_cleanly(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    with pytest.raises(ConnectionFailed, match="not connected"):
        fake_keeper.op_run("no such key", spec, "id", None, None)


def test_a_second_keeper_on_the_same_socket_steps_aside(tmp_path: Path) -> None:
    path = tmp_path / "keeper.sock"
    first = keeper.listen(path)
    assert first is not None
    try:
        assert keeper.listen(path) is None
    finally:
        first.close()
    # a socket left by a keeper that died is taken over
    again = keeper.listen(path)
    assert again is not None
    again.close()


def test_the_socket_folder_is_made_private_and_must_be_ours(tmp_path: Path) -> None:
    folder = tmp_path / "control"
    folder.mkdir()
    folder.chmod(0o755)
    assert _private_folder(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    if os.geteuid() == 0:  # a folder someone else owns (made to catch us) is refused
        os.chown(folder, 65534, 65534)
        assert not _private_folder(folder)


def test_persist_zero_means_no_keeper() -> None:
    assert KeeperLink.start(0) is None


def test_a_state_folder_too_deep_for_a_unix_socket_means_no_keeper(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "keeper.sock"
    assert KeeperLink.start(60, deep) is None
    assert not deep.parent.exists()  # nothing made, nothing started


# --- a kept connection's age is bounded -------------------------------------------------


def test_a_connection_older_than_the_max_age_is_replaced_by_a_new_login(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    key = connection_key(spec)
    run = keeper._Client(socket.socket())
    fake_keeper.open(key, spec, client=run, max_age=600)
    fake_keeper.release(key, run)
    assert fake_keeper.open(key, spec, client=run, max_age=600) is True
    fake_keeper.release(key, run)
    fake_keeper.kept[key].opened -= 601  # ten minutes on
    assert fake_keeper.open(key, spec, client=run, max_age=600) is False
    old, new = FakeSSH.made
    assert not old.alive and new.alive and fake_keeper.kept[key].conn is new


def test_an_old_connection_another_run_is_using_closes_after_its_commands(
    fake_keeper: keeper.Keeper, spec: ConnectionSpec
) -> None:
    key = connection_key(spec)
    first, second = keeper._Client(socket.socket()), keeper._Client(socket.socket())
    fake_keeper.open(key, spec, client=first)
    old = FakeSSH.made[0]
    fake_keeper.kept[key].opened -= 601
    with fake_keeper._busy(old):  # a command of the first run is under way on it
        assert fake_keeper.open(key, spec, client=second, max_age=600) is False
        assert old.alive and fake_keeper.retired == [old]
    fake_keeper.close_all()
    assert not old.alive and fake_keeper.retired == []


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, {}, DEFAULT_MAX_AGE),
        (None, {"OPSFIX_PERSIST_MAX_AGE": "30"}, 30.0),
        (5.0, {"OPSFIX_PERSIST_MAX_AGE": "30"}, 5.0),
    ],
)
def test_the_max_age_comes_from_the_option_then_the_environment(
    given: float | None, env: dict[str, str], expected: float
) -> None:
    assert max_age_seconds(given, env) == expected


@pytest.mark.parametrize(
    ("given", "env", "named"),
    [
        (0.0, {}, "--persist-max-age 0"),
        (None, {"OPSFIX_PERSIST_MAX_AGE": "0"}, "OPSFIX_PERSIST_MAX_AGE='0'"),
        (None, {"OPSFIX_PERSIST_MAX_AGE": "long"}, "OPSFIX_PERSIST_MAX_AGE='long'"),
    ],
)
def test_a_bad_max_age_is_an_options_error_naming_it(
    given: float | None, env: dict[str, str], named: str
) -> None:
    with pytest.raises(OptionsError, match=re.escape(named)):
        max_age_seconds(given, env)
