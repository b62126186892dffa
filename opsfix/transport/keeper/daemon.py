"""The connection keeper: SSH connections kept open between runs, like OpenSSH's
ControlPersist (which Ansible turns on by default).

A run that follows another within `persist` seconds finds its hosts already connected:
no TCP and key exchange, no login, no sshd start-up on the host (~30 ms of host CPU and
~8 ms of ours per host). The keeper is started by the first run that needs it
(`python -m opsfix.transport.keeper.daemon SOCKET PERSIST`), serves runs of the same user over a
Unix socket in a private folder, and exits once nothing has used it for `persist` seconds.

What it keeps, and what it does not (docs/reliability.md, "Kept connections"):
- a connection is keyed by everything that decides whom it reaches and how it was
  trusted: address, port, user, key file, known_hosts files (with their size and mtime),
  trust-on-first-use, proxy settings. Edit a known_hosts file and the next run connects
  anew, checking the host key again;
- no become password, not even in passing: a host whose sudo needs one connects in the
  run itself (opsfix.transport.keeper.link.needs_become_password), and the keeper starts with
  an environment chosen by name (no OPSFIX_BECOME_PASSWORD, no tokens);
- peers are checked by uid (SO_PEERCRED) on top of the folder's 0700 and the socket's 0600.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsfix.errors import ConnectionFailed
from opsfix.transport import wire
from opsfix.transport.keeper.link import DEFAULT_MAX_AGE, kept_spec
from opsfix.transport.spec import ConnectionSpec
from opsfix.transport.ssh import SSHConnection

_PEERCRED = struct.Struct("3i")  # pid, uid, gid
START_GRACE = 30.0  # the run that started us attaches within this
RECENT = 2.0  # a connection used this recently needs no keepalive to prove it up


@dataclasses.dataclass
class _Kept:
    conn: SSHConnection
    opened: float
    used: float
    users: int = 0
    fresh: bool = False  # made, not yet opened
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class _Client:
    """One run attached to the keeper: its socket, and the connections it holds."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.write_lock = threading.Lock()
        self.held: dict[str, int] = {}  # key -> how many of its connections use it
        self.gone = False


class Keeper:
    def __init__(self, path: Path, persist: float) -> None:
        self.path = path
        self.persist = persist
        self.kept: dict[str, _Kept] = {}
        self.lock = threading.Lock()
        self.clients = 0
        self.busy: dict[SSHConnection, int] = {}  # commands under way, per connection
        self.retired: list[SSHConnection] = []  # replaced, closing once idle
        self.ever_served = False
        self.started = time.monotonic()
        self.stopping = threading.Event()

    # --- serving ---------------------------------------------------------------------

    def serve(self, listener: socket.socket) -> None:
        threading.Thread(target=self._janitor, args=(listener,), daemon=True).start()
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                break
            if not _same_user(sock):
                sock.close()
                continue
            threading.Thread(target=self._client, args=(sock,), daemon=True).start()
        self.close_all()

    def _client(self, sock: socket.socket) -> None:
        client = _Client(sock)
        with self.lock:
            self.clients += 1
            self.ever_served = True
        try:
            while True:
                request_id, op, *args = wire.receive(sock)
                threading.Thread(
                    target=self._answer, args=(client, request_id, op, args), daemon=True
                ).start()
        except (wire.Closed, OSError, ValueError):
            pass
        finally:
            sock.close()
            with self.lock:
                self.clients -= 1
                client.gone = True
                for key, count in client.held.items():
                    if key in self.kept:
                        self.kept[key].users -= count
                        self.kept[key].used = time.monotonic()

    def _answer(self, client: _Client, request_id: int, op: str, args: list[Any]) -> None:
        try:
            if op == "open":
                key, spec, max_age = args
                value: Any = self.open(key, spec, client=client, max_age=max_age)
            elif op == "release":
                self.release(args[0], client)
                value = None
            else:
                value = getattr(self, f"op_{op}")(*args)
            reply: tuple[Any, ...] = (request_id, True, value)
        except Exception as exc:  # every failure goes back to the run that asked
            reply = (request_id, False, wire.encode_error(exc))
        with contextlib.suppress(OSError):
            wire.send(client.sock, client.write_lock, reply)

    # --- operations --------------------------------------------------------------------

    def open(
        self,
        key: str,
        spec: ConnectionSpec,
        client: _Client | None = None,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> bool:
        """Connect, or reuse a live connection younger than `max_age`; True when reused.
        The connection counts as in use by `client` until it releases it or goes away.

        A kept connection trusts the host key it logged in with, so its age is bounded:
        an older one is replaced by a new login, which checks the key again. Commands of
        other runs still under way on the old one finish there; it closes after them."""
        with self.lock:
            kept = self.kept.get(key)
            if kept is None:
                now = time.monotonic()
                kept = self.kept[key] = _Kept(SSHConnection(kept_spec(spec)), now, now, fresh=True)
            kept.users += 1
        try:
            with kept.lock:
                now = time.monotonic()
                young = now - kept.opened < max_age
                reused = (
                    young
                    and kept.conn.alive
                    and (
                        kept.users > 1
                        or now - kept.used < RECENT
                        or kept.conn.responds(spec.connect_timeout)
                    )
                )
                if not reused:
                    if not kept.fresh:  # too old, or dead (a reboot, a network cut): anew
                        self._retire(kept.conn)
                        kept.conn = SSHConnection(kept_spec(spec))
                    kept.fresh = False
                    kept.opened = time.monotonic()
                    kept.conn.open()
                kept.used = time.monotonic()
        except BaseException:
            with self.lock:
                kept.users -= 1
            raise
        with self.lock:
            if client is not None and not client.gone:
                client.held[key] = client.held.get(key, 0) + 1
            else:
                kept.users -= 1  # nobody to release it: it is idle from now
        return reused

    def _retire(self, conn: SSHConnection) -> None:
        """Close `conn` once no command runs on it (at once, when none does)."""
        with self.lock:
            if self.busy.get(conn):
                self.retired.append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()

    def release(self, key: str, client: _Client) -> None:
        with self.lock:
            if client.held.get(key, 0) > 0:
                client.held[key] -= 1
                if key in self.kept:
                    self.kept[key].users -= 1
                    self.kept[key].used = time.monotonic()

    def _conn(self, key: str, host: str) -> _Kept:
        kept = self.kept.get(key)
        if kept is None:
            raise ConnectionFailed(host, "not connected")
        kept.used = time.monotonic()
        return kept

    def op_run(
        self, key: str, spec: ConnectionSpec, script: str, become: bool | None, timeout: Any
    ) -> Any:
        kept = self._conn(key, spec.host)
        with self._busy(kept.conn) as conn:
            try:
                return conn.run(script, become=become, timeout=timeout, settings=spec)
            finally:
                kept.used = time.monotonic()

    def op_put(self, key: str, host: str, data: bytes, path: str, mode: int) -> None:
        with self._busy(self._conn(key, host).conn) as conn:
            conn.put(data, path, mode)

    @contextlib.contextmanager
    def _busy(self, conn: SSHConnection) -> Iterator[SSHConnection]:
        """`conn` counts as running a command meanwhile (a retired one waits for it)."""
        with self.lock:
            self.busy[conn] = self.busy.get(conn, 0) + 1
        try:
            yield conn
        finally:
            with self.lock:
                self.busy[conn] -= 1
                if not self.busy[conn]:
                    del self.busy[conn]

    def op_list(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.lock:
            kept = list(self.kept.values())
        return [
            {
                "host": k.conn.host,
                "address": f"{k.conn.login_user}@{k.conn.spec.hostname}:{k.conn.spec.port}",
                "age": round(now - k.opened, 1),
                "idle": round(now - k.used, 1),
                "in_use": k.users > 0,
                "alive": k.conn.alive,
            }
            for k in kept
        ]

    def op_stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):  # wakes accept()
            self.path.unlink()
        self.close_all()
        os._exit(0)

    # --- housekeeping ------------------------------------------------------------------

    def _janitor(self, listener: socket.socket) -> None:
        while not self.stopping.wait(1.0):
            now = time.monotonic()
            with self.lock:
                stale = [
                    key
                    for key, k in self.kept.items()
                    if k.users <= 0 and (now - k.used > self.persist or not k.conn.alive)
                ]
                gone = [self.kept.pop(key).conn for key in stale]
                gone += [c for c in self.retired if not self.busy.get(c)]
                self.retired = [c for c in self.retired if c not in gone]
                waited = self.ever_served or now - self.started > START_GRACE
                done = not self.kept and not self.clients and waited
            for conn in gone:
                with contextlib.suppress(Exception):
                    conn.close()
            if done:
                self.stopping.set()
                with contextlib.suppress(OSError):
                    self.path.unlink()
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)
                os._exit(0)

    def close_all(self) -> None:
        with self.lock:
            conns = [k.conn for k in self.kept.values()] + self.retired
            self.kept, self.retired = {}, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def _same_user(sock: socket.socket) -> bool:
    try:
        _, uid, _ = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
    except OSError:
        return False
    return uid == os.getuid()


def listen(path: Path) -> socket.socket | None:
    """The keeper's socket, or None when another live keeper already serves `path`.
    A lock file makes two keepers started at once agree on one."""
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            return None  # someone answers: that keeper serves
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket left by a keeper that died
        finally:
            probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(128)
        return listener
    finally:
        os.close(lock)


def main(argv: list[str]) -> int:
    path, persist = Path(argv[0]), float(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's Ctrl-C is not ours
    os.umask(0o077)
    os.chdir("/")
    listener = listen(path)
    if listener is None:
        return 0
    Keeper(path, persist).serve(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
