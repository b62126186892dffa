"""SSH transport pieces that need no server: key cache, hops, failure reasons, the factory."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opsfix.errors import ConnectionFailed
from opsfix.transport import ssh
from opsfix.transport.connect import make_connection
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec
from opsfix.transport.ssh import SSHConnection, _Hop, _login_reason, _parse_hop, _socket_reason

HOP = _Hop("192.0.2.1", 2222, "deploy")


def write_key(path: Path, password: bytes | None = None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )
    path.write_bytes(pem)
    return path


def test_each_key_file_is_loaded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = write_key(tmp_path / "id_ed25519")
    calls: list[str] = []
    real = paramiko.PKey.from_path

    def counting(path: str) -> paramiko.PKey:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(ssh, "_keys", {})
    monkeypatch.setattr(paramiko.PKey, "from_path", staticmethod(counting))
    first = ssh.load_private_key(str(key))
    assert ssh.load_private_key(str(key)) is first
    assert calls == [str(key)]


def test_a_bad_key_fails_before_connecting(tmp_path: Path) -> None:
    spec = ConnectionSpec(host="web1", hostname="192.0.2.1", key_file=str(tmp_path / "missing"))
    with pytest.raises(ConnectionFailed, match="web1: cannot load private key"):
        SSHConnection(spec).open()
    locked = write_key(tmp_path / "locked", password=b"pw")
    spec = ConnectionSpec(host="web1", hostname="192.0.2.1", key_file=str(locked))
    with pytest.raises(ConnectionFailed, match="is encrypted: add it to ssh-agent"):
        SSHConnection(spec).open()


def test_parse_hop() -> None:
    assert _parse_hop("jump@bastion:2200", "me") == _Hop("bastion", 2200, "jump")
    assert _parse_hop(" bastion ", "me") == _Hop("bastion", 22, "me")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused by 192.0.2.1:2222"),
        (TimeoutError("timed out"), "timed out after 10s connecting to 192.0.2.1:2222"),
        (socket.gaierror(-2, "Name or service not known"),
         "cannot resolve 192.0.2.1: Name or service not known"),
        (OSError(113, "No route to host"), "cannot connect to 192.0.2.1:2222: No route to host"),
    ],
)  # fmt: skip
def test_socket_reasons(error: OSError, expected: str) -> None:
    assert _socket_reason(error, "192.0.2.1", 2222, 10) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (paramiko.AuthenticationException("Authentication failed."),
         "authentication failed for user deploy"),
        (paramiko.BadAuthenticationType("bad", ["publickey"]),
         "authentication failed for user deploy (server allows: publickey)"),
        (paramiko.AuthenticationException("Authentication timeout."),
         "authentication timed out after 10s for user deploy"),
        (paramiko.SSHException("No authentication methods available"),
         "authentication failed for user deploy: no key given and no agent or default key"),
        (paramiko.SSHException("Error reading SSH protocol banner"),
         "no SSH banner from 192.0.2.1:2222 within 10s"),
        (EOFError(), "192.0.2.1:2222 closed the connection during the SSH handshake"),
    ],
)  # fmt: skip
def test_login_reasons(error: Exception, expected: str) -> None:
    assert _login_reason(error, HOP, 10) == expected


def test_factory_picks_the_transport() -> None:
    local = ConnectionSpec(host="ctl", hostname="localhost", connection="local")
    assert isinstance(make_connection(local), LocalConnection)
    assert isinstance(make_connection(ConnectionSpec(host="w", hostname="h")), SSHConnection)


def test_running_before_open_is_a_connection_error() -> None:
    with pytest.raises(ConnectionFailed, match="not connected"):
        SSHConnection(ConnectionSpec(host="w", hostname="h")).run("true")


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux only")
def test_quick_ack_socket_acks_after_every_read_and_keeps_the_connection() -> None:
    """sshd's two messages after a login would otherwise wait ~40 ms for our delayed ACK."""
    calls: list[tuple[int, int, int]] = []

    class Recording(ssh._QuickAckSocket):
        def setsockopt(self, level: int, option: int, value: int) -> None:  # type: ignore[override]
            calls.append((level, option, value))
            super().setsockopt(level, option, value)

    with socket.create_server(("127.0.0.1", 0)) as server:
        plain = socket.create_connection(server.getsockname(), timeout=3)
        peer, _ = server.accept()
        wrapped = ssh.quick_ack(plain)  # the same connection, timeout kept
        assert isinstance(wrapped, ssh._QuickAckSocket) and wrapped.gettimeout() == 3
        quick = Recording(wrapped.family, wrapped.type, wrapped.proto, fileno=wrapped.detach())
        with peer, quick:
            peer.sendall(b"one")
            assert quick.recv(16) == b"one"
            peer.sendall(b"two")
            assert quick.recv(16) == b"two"
            quick.sendall(b"back")
            assert peer.recv(16) == b"back"
    assert calls == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)] * 2


def test_aes_gcm_is_preferred_and_the_rest_keep_their_order() -> None:
    offered = paramiko.Transport._preferred_ciphers
    preferred = ssh.preferred_ciphers(offered)
    assert preferred[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    assert sorted(preferred) == sorted(offered)
    assert [c for c in preferred if "gcm" not in c] == [c for c in offered if "gcm" not in c]
    assert ssh.preferred_ciphers(("aes128-ctr", "aes256-ctr")) == ("aes128-ctr", "aes256-ctr")


def test_waiting_for_output_works_past_descriptor_1023() -> None:
    """A run with hundreds of hosts open holds descriptors past select()'s FD_SETSIZE."""
    if ssh.raise_open_file_limit() < 2048:
        pytest.skip("the open file limit cannot be raised to 2048 here")
    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 1500)
    os.close(read_end)

    class Channel:
        def fileno(self) -> int:
            return high

    try:
        with pytest.raises(ValueError):
            select.select([Channel()], [], [], 0)  # what waiting did before
        started = time.monotonic()
        ssh._wait_readable(Channel(), 0.2)  # type: ignore[arg-type]
        assert time.monotonic() - started >= 0.15  # nothing to read: waited its time
        os.write(write_end, b"x")
        started = time.monotonic()
        ssh._wait_readable(Channel(), 5)  # type: ignore[arg-type]
        assert time.monotonic() - started < 1  # something to read: back at once
    finally:
        os.close(high)
        os.close(write_end)


def test_idle_connections_wake_once_a_second() -> None:
    """Each open connection's reader thread wakes on its socket timeout; paramiko's 0.1 s
    makes 1,000 idle connections 10,000 wake-ups a second."""
    conn = SSHConnection(ConnectionSpec(host="w", hostname="192.0.2.1"))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = conn._transport_factory(HOP)(ours)
        assert isinstance(transport, paramiko.Transport)
        assert transport.sock.gettimeout() == 1.0
        assert transport.get_security_options().ciphers[0] == "aes128-gcm@openssh.com"


def test_logins_under_way_at_once_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand handshakes at once on a few cores all pass their timeout together: the
    ones beyond the bound wait their turn, and their timeout starts with it."""
    monkeypatch.setattr(ssh, "_logins", threading.BoundedSemaphore(2))
    under_way, most = [0], [0]
    lock = threading.Lock()

    def login(self: SSHConnection, hop: _Hop, sock: object, auth: object) -> object:
        with lock:
            under_way[0] += 1
            most[0] = max(most[0], under_way[0])
        time.sleep(0.05)
        with lock:
            under_way[0] -= 1
        return object()

    monkeypatch.setattr(SSHConnection, "_login", login)
    monkeypatch.setattr(SSHConnection, "_first_socket", lambda self, auth: None)
    conns = [SSHConnection(ConnectionSpec(host=f"w{i}", hostname="192.0.2.1")) for i in range(6)]
    threads = [threading.Thread(target=c.open) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2
    assert all(c._client is not None for c in conns)


class _Refusing:
    """A transport whose sshd refuses `refusals` channels first (MaxSessions met)."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.asked = 0

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float) -> str:
        self.asked += 1
        if self.asked <= self.refusals:
            raise paramiko.ChannelException(2, "Connect failed")
        return "channel"


class _Client:
    def __init__(self, transport: _Refusing) -> None:
        self.transport = transport

    def get_transport(self) -> _Refusing:
        return self.transport


def test_a_channel_sshd_refuses_for_a_while_is_asked_for_again() -> None:
    """A busy sshd frees closed sessions late: ten refusals in a row still get a channel."""
    conn = SSHConnection(ConnectionSpec(host="w", hostname="h"))
    refusing = _Refusing(10)
    conn._client = _Client(refusing)  # type: ignore[assignment]
    assert conn._open_channel() == "channel"
    assert refusing.asked == 11


def test_a_channel_refused_for_good_fails_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "CHANNEL_WAIT", 0.3)
    conn = SSHConnection(ConnectionSpec(host="w", hostname="h"))
    conn._client = _Client(_Refusing(10**9))  # type: ignore[assignment]
    began = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot open a channel"):
        conn._open_channel()
    assert 0.3 <= time.monotonic() - began < 2
