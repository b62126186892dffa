"""The SSH transport: one verified, long-lived paramiko connection per host.

Why not fabric: fabric 3.2.3 hard-codes AutoAddPolicy and never loads known_hosts, and
what it would add (sudo watchers, gateways) is a few lines here, with host keys checked
on every hop. One connection serves many threads; each command gets its own channel.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import math
import os
import resource
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paramiko

from opsfix.errors import CommandTimeout, ConnectionFailed
from opsfix.shell import cmd
from opsfix.transport.base import BoundedOutput, CommandResult
from opsfix.transport.become import prompt_answerer, terminal_result
from opsfix.transport.hostkeys import KnownHosts, VerifyingPolicy, known_hosts_name
from opsfix.transport.hostkeys import preferred_key_types as _preferred_key_types
from opsfix.transport.settings import (
    MAX_INLINE_SCRIPT,
    command_result,
    invocation,
    script_file_mode,
)
from opsfix.transport.spec import ConnectionSpec

MAX_CHANNELS = 8  # sshd's default MaxSessions is 10; SFTP takes one more
CHANNEL_WAIT = 5.0  # seconds a refused channel is asked for again (sshd freeing sessions)
EXIT_GRACE = 0.25  # wait this long for EOF after the exit status (output still in flight)
_CHUNK = 65536
_DRAIN_MAX = 64  # chunks read per stream before the deadline is looked at again

_keys: dict[str, paramiko.PKey] = {}
_keys_lock = threading.Lock()
# Logins under way at once in this process. A login is CPU on both ends (key exchange,
# host key, signature): a thousand at once on a few cores all crawl past their timeout
# together (43 of 1,000 hosts lost on a busy 2-core machine), while a bounded number
# each finish in a fraction of a second, as many per second. A connection's timeout
# runs from its turn, not from its wait.
MAX_LOGINS = 32 * (os.cpu_count() or 1)
_logins = threading.BoundedSemaphore(MAX_LOGINS)


class _QuickAckSocket(socket.socket):
    """A TCP socket that acknowledges what it reads at once.

    sshd leaves Nagle's algorithm on for a session without a terminal, and right after a
    login it sends two messages back to back (the login's success, then its host keys).
    The reply to our first channel waits behind them for our ACK, which Linux delays up
    to 40 ms: each connection's first command took ~50 ms instead of ~10. TCP_QUICKACK
    does not stick, so it is set again after every read (one cheap syscall).
    """

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        with contextlib.suppress(OSError):
            self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return data


_TCP_QUICKACK: int = getattr(socket, "TCP_QUICKACK", 0)  # Linux only; 0: not here


def quick_ack(sock: socket.socket) -> socket.socket:
    """`sock` as a _QuickAckSocket (the same connection), where the system has TCP_QUICKACK."""
    if not _TCP_QUICKACK:
        return sock
    timeout = sock.gettimeout()
    quick = _QuickAckSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    quick.settimeout(timeout)
    return quick


# AES-GCM first: the cipher checks each packet's tag in C, where AES-CTR's HMAC is compared
# in Python, byte by byte (paramiko.util.constant_time_bytes_eq): ~2 ms of the
# controller's CPU per connection. The rest keep paramiko's order, for servers without it.
_AEAD_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def preferred_ciphers(offered: Sequence[str]) -> tuple[str, ...]:
    """paramiko's ciphers with the AES-GCM ones it has moved to the front."""
    first = tuple(c for c in _AEAD_FIRST if c in offered)
    return first + tuple(c for c in offered if c not in first)


def raise_open_file_limit() -> int:
    """Lift the soft limit on open files to the hard one; returns the limit now in force.

    Each open connection holds about three descriptors (its socket, and a pipe per channel
    being read), so the usual soft limit of 1024 stops a run near 300 hosts at once.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
    return soft


_raise_open_file_limit_once = functools.cache(raise_open_file_limit)


def load_private_key(path: str) -> paramiko.PKey:
    """Each key file is read once per process: parsing an RSA key costs ~100 ms."""
    with _keys_lock:
        if path not in _keys:
            try:
                _keys[path] = paramiko.PKey.from_path(path)
            except TypeError as e:  # paramiko 5 lets cryptography's "needs a password" through
                raise paramiko.PasswordRequiredException(str(e)) from None
        return _keys[path]


class _Transport(paramiko.Transport):
    """paramiko's transport, waking once a second when idle instead of ten times.

    Each open connection's reader thread wakes on its socket's timeout to see whether it
    should stop; at 0.1 s, 1,000 idle connections are 10,000 wake-ups a second fighting
    for the GIL, which starves the connections still logging in.
    """

    _active_check_timeout = 1.0


@dataclass(frozen=True)
class _Hop:
    """One SSH server to log in to: the target itself, or a ProxyJump host before it."""

    hostname: str
    port: int
    user: str

    @property
    def label(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


class SSHConnection:
    """A Connection over SSH (see opsfix.transport.base.Connection)."""

    def __init__(self, spec: ConnectionSpec) -> None:
        self.spec = spec
        self.host = spec.host
        self.login_user = spec.user or getpass.getuser()
        self._client: paramiko.SSHClient | None = None
        self._jumps: list[paramiko.SSHClient] = []
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._sftp_lock = threading.RLock()
        self._channels = threading.BoundedSemaphore(MAX_CHANNELS)
        self._known = KnownHosts(spec.known_hosts_files)

    # --- connecting ---------------------------------------------------------------------

    def open(self) -> None:
        _raise_open_file_limit_once()
        with self._lock:
            if self._client is not None:
                return
            target = _Hop(self.spec.hostname, self.spec.port, self.login_user)
            auth = self._auth_options()  # a bad key file fails before any socket opens
            try:
                with _logins:
                    self._client = self._login(target, self._first_socket(auth), auth)
            except BaseException:
                self._close_jumps()
                raise

    def _first_socket(self, auth: dict[str, Any]) -> Any:
        """What the target's SSH session runs over: TCP, a ProxyCommand, or a jump chain."""
        if self.spec.proxy_command:
            return self._proxy_command(self.spec.proxy_command)
        if self.spec.proxy_jump:
            return self._jump_chain(self.spec.proxy_jump, auth)
        return self._tcp(self.spec.hostname, self.spec.port)

    def _tcp(self, hostname: str, port: int, via: str = "") -> socket.socket:
        """A TCP socket with Nagle off: it costs ~40 ms per command otherwise."""
        timeout = self.spec.connect_timeout
        try:
            sock = socket.create_connection((hostname, port), timeout=timeout)
        except OSError as e:
            raise ConnectionFailed(
                self.host, via + _socket_reason(e, hostname, port, timeout)
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return quick_ack(sock)

    def _proxy_command(self, command: str) -> paramiko.ProxyCommand:
        try:
            return paramiko.ProxyCommand(command)
        except Exception as e:
            raise ConnectionFailed(self.host, f"ProxyCommand {command!r} failed: {e}") from None

    def _jump_chain(self, jump: str, auth: dict[str, Any]) -> paramiko.Channel:
        """Log in to each jump host in turn (same host key rules) and tunnel to the next."""
        hops = [_parse_hop(h, self.login_user) for h in jump.split(",")]
        targets = [*hops[1:], _Hop(self.spec.hostname, self.spec.port, self.login_user)]
        sock: Any = self._tcp(hops[0].hostname, hops[0].port, via=f"jump host {hops[0].label}: ")
        for hop, nxt in zip(hops, targets, strict=True):
            client = self._login(hop, sock, auth, via=f"jump host {hop.label}: ")
            self._jumps.append(client)
            sock = self._tunnel(client, hop, nxt)
        return sock

    def _tunnel(self, client: paramiko.SSHClient, hop: _Hop, nxt: _Hop) -> paramiko.Channel:
        transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip",
                (nxt.hostname, nxt.port),
                ("127.0.0.1", 0),
                timeout=self.spec.connect_timeout,
            )
        except (paramiko.SSHException, OSError) as e:
            raise ConnectionFailed(
                self.host, f"jump host {hop.label} cannot reach {nxt.hostname}:{nxt.port}: {e}"
            ) from None

    def _login(
        self, hop: _Hop, sock: Any, auth: dict[str, Any], via: str = ""
    ) -> paramiko.SSHClient:
        """Handshake, host key check and authentication over an already-open socket."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(
            VerifyingPolicy(self.host, self._known, trust_new=self.spec.trust_new_host_keys)
        )
        timeout = self.spec.connect_timeout
        try:
            client.connect(
                hop.hostname,
                hop.port,
                username=hop.user,
                sock=sock,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                transport_factory=self._transport_factory(hop),
                **auth,
            )
        except ConnectionFailed:
            _close_quietly(client, sock)
            raise
        except Exception as e:
            _close_quietly(client, sock)
            raise ConnectionFailed(self.host, via + _login_reason(e, hop, timeout)) from None
        return client

    def _auth_options(self) -> dict[str, Any]:
        """One explicit key and nothing else (many keys hit sshd's MaxAuthTries)."""
        if not self.spec.key_file:
            return {"allow_agent": True, "look_for_keys": True}
        try:
            pkey = load_private_key(self.spec.key_file)
        except paramiko.PasswordRequiredException:
            raise ConnectionFailed(
                self.host, f"private key {self.spec.key_file} is encrypted: add it to ssh-agent"
            ) from None
        except (OSError, ValueError, paramiko.SSHException) as e:
            raise ConnectionFailed(
                self.host, f"cannot load private key {self.spec.key_file}: {e}"
            ) from None
        return {"pkey": pkey, "allow_agent": False, "look_for_keys": False}

    def _transport_factory(self, hop: _Hop) -> Any:
        known_types = [
            k.key.get_name() for k in self._known.keys_for(known_hosts_name(hop.hostname, hop.port))
        ]

        def factory(sock: Any, **kwargs: Any) -> paramiko.Transport:
            transport = _Transport(sock, **kwargs)
            options = transport.get_security_options()
            options.key_types = _preferred_key_types(list(options.key_types), known_types)
            options.ciphers = preferred_ciphers(options.ciphers)
            return transport

        return factory

    # --- running commands -----------------------------------------------------------------

    def run(
        self,
        script: str,
        *,
        become: bool | None = None,
        timeout: float | None = None,
        settings: ConnectionSpec | None = None,
    ) -> CommandResult:
        """`settings`: another spec whose become and timeout settings this one command uses
        (the connection keeper's connections hold no become password between runs)."""
        spec = settings or self.spec
        become = spec.become if become is None else become
        limit = spec.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        if not self._channels.acquire(timeout=max(limit, 0)):
            raise CommandTimeout(self.host, script, limit)
        try:
            if len(script.encode()) > MAX_INLINE_SCRIPT:
                return self._run_uploaded(spec, script, become, deadline, limit)
            return self._execute(spec, script, script, become, deadline, limit)
        finally:
            self._channels.release()

    def _run_uploaded(
        self, spec: ConnectionSpec, script: str, become: bool, deadline: float, limit: float
    ) -> CommandResult:
        """A script too long for one argument goes up by SFTP to a private file, run, removed."""
        path = f"/tmp/opsfix-{secrets.token_hex(8)}.sh"
        mode = script_file_mode(spec, login_user=self.login_user, become=become)
        self._write(path, script.encode(), mode, exclusive=True)
        try:
            return self._execute(spec, script, cmd("/bin/sh", path), become, deadline, limit)
        finally:
            self._remove_quietly(path)

    def _execute(
        self,
        spec: ConnectionSpec,
        script: str,
        body: str,
        become: bool,
        deadline: float,
        limit: float,
    ) -> CommandResult:
        how = invocation(
            body,
            login_user=self.login_user,
            spec=spec,
            become=become,
            host_timeout=math.ceil(limit) + 1,  # ours fires first; the host's stops the command
        )
        channel = self._open_channel()
        try:
            if how.terminal:  # su or doas: the password goes to their prompt
                channel.get_pty(term="dumb", width=1000)
                channel.exec_command(how.command)
                answer = prompt_answerer(how)
                status, out, err = _collect(channel, deadline, spec.output_limit, answer)
            else:
                channel.exec_command(how.command)
                if how.password_line:
                    channel.sendall(how.password_line)
                channel.shutdown_write()
                status, out, err = _collect(channel, deadline, spec.output_limit)
        except _DeadlinePassed as passed:
            raise CommandTimeout(self.host, script, limit, *passed.args) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectionFailed(self.host, f"connection lost during command: {e}") from None
        finally:
            channel.close()
        if status == -1 and not self._is_active():
            raise ConnectionFailed(self.host, "connection lost during command")
        truncated = out.truncated or err.truncated
        if how.terminal:
            return terminal_result(
                script, status, out.text(), spec=spec, how=how, truncated=truncated
            )
        return command_result(
            script, status, out.text(), err.text(), spec=spec, how=how, truncated=truncated
        )

    def _open_channel(self) -> paramiko.Channel:
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            raise ConnectionFailed(
                self.host, "connection lost" if self._client else "not connected"
            )
        attempt = 0
        give_up = time.monotonic() + CHANNEL_WAIT
        while True:
            try:
                return transport.open_session(timeout=self.spec.connect_timeout)
            except paramiko.ChannelException as e:
                # sshd frees a closed session a moment after we see it closed (a busy host
                # takes longer), so a burst of channels can briefly meet MaxSessions: wait
                # a little and ask again, for a few seconds rather than a few tries
                attempt += 1
                if time.monotonic() >= give_up or not transport.is_active():
                    raise ConnectionFailed(self.host, f"cannot open a channel: {e}") from None
                time.sleep(min(0.02 * attempt, 0.2))
            except (paramiko.SSHException, EOFError, OSError) as e:
                reason = "connection lost" if not transport.is_active() else "cannot open a channel"
                raise ConnectionFailed(self.host, f"{reason}: {e}") from None

    def _is_active(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    @property
    def alive(self) -> bool:
        """Open, and its SSH session not known to be down."""
        return self._is_active()

    def responds(self, timeout: float) -> bool:
        """The host answers a keepalive within `timeout`. A host that rebooted or a cut
        network sends no close, so a connection idle since can look open for minutes."""
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            return False
        answered = threading.Event()

        def ask() -> None:  # any answer (sshd refuses the request) proves the session up
            transport.global_request("keepalive@openssh.com", wait=True)
            answered.set()

        threading.Thread(target=ask, name=f"keepalive {self.host}", daemon=True).start()
        return answered.wait(timeout) and transport.is_active()

    # --- files ------------------------------------------------------------------------------

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        self._write(remote_path, data, mode)

    def _write(self, path: str, data: bytes, mode: int, *, exclusive: bool = False) -> None:
        """Set the mode before any byte lands, so a secret is never briefly world-readable."""
        sftp = self._sftp_client()
        try:
            with self._sftp_lock, sftp.open(path, "wbx" if exclusive else "wb") as f:
                f.chmod(mode)
                f.set_pipelined(True)
                f.write(data)
        except OSError as e:
            raise OSError(e.errno, f"{self.host}: cannot write {path}: {e.strerror or e}") from None
        except (paramiko.SSHException, EOFError) as e:
            raise ConnectionFailed(
                self.host, f"connection lost while writing {path}: {e}"
            ) from None

    def _remove_quietly(self, path: str) -> None:
        try:
            with self._sftp_lock:
                self._sftp_client().remove(path)
        except (OSError, paramiko.SSHException, EOFError, ConnectionFailed):
            pass

    def _sftp_client(self) -> paramiko.SFTPClient:
        with self._sftp_lock:
            if self._sftp is None:
                if self._client is None:
                    raise ConnectionFailed(self.host, "not connected")
                try:
                    self._sftp = self._client.open_sftp()
                except (paramiko.SSHException, EOFError, OSError) as e:
                    raise ConnectionFailed(self.host, f"cannot start SFTP: {e}") from None
            return self._sftp

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
            if self._client is not None:
                self._client.close()
                self._client = None
            self._close_jumps()

    def _close_jumps(self) -> None:
        for client in reversed(self._jumps):
            client.close()
        self._jumps.clear()

    @property
    def native_client(self) -> paramiko.SSHClient | None:
        return self._client

    def __enter__(self) -> SSHConnection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DeadlinePassed(Exception):
    """Carries the stdout and stderr read so far."""


def _collect(
    channel: paramiko.Channel,
    deadline: float,
    limit: int,
    answer: Callable[[bytes], bytes | None] | None = None,
) -> tuple[int, BoundedOutput, BoundedOutput]:
    """Read stdout and stderr together until the exit status (a chatty command cannot
    block); past `limit` bytes each, what the command prints is read and dropped.
    `answer`, given stdout so far, returns what to type (a terminal's password prompt)."""
    out, err = BoundedOutput(limit), BoundedOutput(limit)
    exited_at: float | None = None
    while True:
        _drain(channel, out, err)
        # a prompt comes first: only the start of the output is looked at
        reply = answer(out.text().encode()) if answer and out.kept <= 4096 else None
        if reply:
            channel.sendall(reply)
        now = time.monotonic()
        if channel.exit_status_ready():
            exited_at = exited_at or now
            if channel.eof_received or channel.closed or now - exited_at > EXIT_GRACE:
                break
        if now >= deadline:
            raise _DeadlinePassed(out.text(), err.text())
        wait = min(deadline - now, 0.05 if exited_at else 0.5)
        if channel.eof_received and not exited_at:
            channel.status_event.wait(wait)  # the pipe stays readable after EOF
        else:
            _wait_readable(channel, wait)
    _drain(channel, out, err, most=None)  # what arrived with the end: all of it
    return channel.exit_status, out, err


def _wait_readable(channel: paramiko.Channel, wait: float) -> None:
    """Sleep until the channel has data or `wait` seconds pass. poll, not select: select
    refuses a descriptor numbered 1024 or above, and a run with ~300 hosts open holds those."""
    poller = select.poll()
    poller.register(channel, select.POLLIN)
    poller.poll(wait * 1000)


def _drain(
    channel: paramiko.Channel,
    out: BoundedOutput,
    err: BoundedOutput,
    most: int | None = _DRAIN_MAX,
) -> None:
    """What is buffered now, up to `most` chunks a stream (then the deadline is looked
    at again: a host that never stops printing must not keep us here)."""
    left = most
    while channel.recv_ready() and left != 0:
        out.add(channel.recv(_CHUNK))
        left = None if left is None else left - 1
    left = most
    while channel.recv_stderr_ready() and left != 0:
        err.add(channel.recv_stderr(_CHUNK))
        left = None if left is None else left - 1


def _close_quietly(client: paramiko.SSHClient, sock: Any) -> None:
    """Close a failed login's client and its socket (the transport may never have owned it)."""
    client.close()
    with contextlib.suppress(Exception):
        sock.close()


def _parse_hop(text: str, default_user: str) -> _Hop:
    user, _, rest = text.strip().rpartition("@")
    hostname, _, port = rest.partition(":")
    return _Hop(hostname, int(port or 22), user or default_user)


def _socket_reason(e: OSError, hostname: str, port: int, timeout: float) -> str:
    where = f"{hostname}:{port}"
    if isinstance(e, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g}s connecting to {where}"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve {hostname}: {e.strerror}"
    return f"cannot connect to {where}: {e.strerror or e}"


def _login_reason(e: Exception, hop: _Hop, timeout: float) -> str:
    if isinstance(e, paramiko.BadAuthenticationType):
        allowed = ", ".join(e.allowed_types)
        return f"authentication failed for user {hop.user} (server allows: {allowed})"
    if isinstance(e, paramiko.AuthenticationException):
        if "timeout" in str(e).lower():
            return f"authentication timed out after {timeout:g}s for user {hop.user}"
        return f"authentication failed for user {hop.user}"
    if isinstance(e, paramiko.ProxyCommandFailure):
        return f"ProxyCommand failed: {e}"
    text = str(e)
    if "No authentication methods available" in text:
        return (
            f"authentication failed for user {hop.user}: no key given and no agent or default key"
        )
    if "protocol banner" in text:
        return f"no SSH banner from {hop.hostname}:{hop.port} within {timeout:g}s"
    if isinstance(e, TimeoutError):
        return (
            f"timed out after {timeout:g}s during the SSH handshake with {hop.hostname}:{hop.port}"
        )
    if isinstance(e, EOFError | ConnectionResetError):
        return f"{hop.hostname}:{hop.port} closed the connection during the SSH handshake"
    return f"SSH handshake with {hop.hostname}:{hop.port} failed: {text or type(e).__name__}"
