"""A run's side of the connection keeper (opsfix.transport.keeper.daemon).

`KeeperLink.start` is called first thing in a run: it finds a keeper on the socket, or
starts one, which loads paramiko on the other core while the run loads the playbook. The
run's SSH hosts then get `KeptConnection`s, whose commands the keeper runs over
connections it keeps for the next run. Without a keeper (persist 0, or one that cannot
start), runs connect in-process as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from opsfix.errors import ConnectionFailed, OptionsError
from opsfix.transport import wire
from opsfix.transport.base import CommandResult
from opsfix.transport.spec import ConnectionSpec

DEFAULT_PERSIST = 60.0
DEFAULT_MAX_AGE = 600.0  # a kept connection older than this logs in anew (host key checked)
STARTUP_WAIT = 10.0  # a keeper loads paramiko before it listens: ~0.2 s, more on a busy host
_GONE = "the connection keeper exited"
MAX_SOCKET_PATH = 104


def persist_seconds(value: float | None, env: Mapping[str, str] | None = None) -> float:
    """--persist, else $OPSFIX_PERSIST, else 60 s; 0 turns kept connections off."""
    if value is not None:
        if value < 0:
            raise OptionsError(f"--persist {value:g}: seconds must be 0 or more")
        return value
    raw = (os.environ if env is None else env).get("OPSFIX_PERSIST", "").strip()
    if not raw:
        return DEFAULT_PERSIST
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise OptionsError(f"OPSFIX_PERSIST={raw!r}: expected seconds (0 turns it off)")
    return seconds


def max_age_seconds(value: float | None, env: Mapping[str, str] | None = None) -> float:
    """--persist-max-age, else $OPSFIX_PERSIST_MAX_AGE, else 600 s: how old a kept
    connection may be and still serve a run (older: log in anew, the host key checked)."""
    if value is not None:
        if not value > 0:
            raise OptionsError(f"--persist-max-age {value:g}: seconds must be above 0")
        return value
    raw = (os.environ if env is None else env).get("OPSFIX_PERSIST_MAX_AGE", "").strip()
    if not raw:
        return DEFAULT_MAX_AGE
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:  # also NaN
        raise OptionsError(f"OPSFIX_PERSIST_MAX_AGE={raw!r}: expected seconds above 0")
    return seconds


def control_path(env: dict[str, str] | None = None) -> Path:
    """The keeper's socket: a private folder in opsfix's state folder. Its name carries
    the code's build (`build_tag`): after an upgrade, runs start a keeper of their own
    version, and the old one ages out."""
    from opsfix.evidence.statedir import state_dir

    return state_dir(env) / "control" / f"keeper-{build_tag()}.sock"


def build_tag() -> str:
    """Which interpreter and which transport code: a keeper only serves runs of its own."""
    from opsfix import __version__

    parts: list[Any] = [sys.prefix, os.path.realpath(sys.executable), __version__]
    here = Path(__file__).parent
    for name in ("base.py", "keeper.py", "kept.py", "settings.py", "ssh.py", "wire.py"):
        with contextlib.suppress(OSError):
            st = (here / name).stat()
            parts.append((name, st.st_size, st.st_mtime_ns))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def kept_spec(spec: ConnectionSpec) -> ConnectionSpec:
    """What a kept connection may remember of a spec: no become password."""
    return dataclasses.replace(spec, become_password=None)


def needs_become_password(spec: ConnectionSpec) -> bool:
    """Commands on this host would hand sudo a password. Such a host connects in the run
    itself: the keeper outlives the run, and must never hold a password, not even in
    passing (a password sent through it would linger in its memory)."""
    if not spec.become_password:
        return False
    login_user = spec.user or getpass.getuser()
    return login_user != spec.become_user


# What a keeper inherits of the run's environment: enough to start Python, nothing else
# (the run's may hold OPSFIX_BECOME_PASSWORD, tokens, an agent socket).
KEEPER_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
KEEPER_PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "PYTHONDONTWRITEBYTECODE")


def keeper_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The keeper's whole environment, chosen by name from the run's."""
    env = os.environ if env is None else env
    return {name: env[name] for name in (*KEEPER_ENV, *KEEPER_PYTHON_ENV) if name in env}


def connection_key(spec: ConnectionSpec) -> str:
    """Everything that decides whom a connection reaches and how it was trusted.

    Files count with their size and mtime: a known_hosts file edited (a key removed, or
    replaced) or a key file rotated means a new connection, with the host key checked anew.
    """
    parts: list[Any] = [
        spec.hostname,
        spec.port,
        spec.user,
        spec.trust_new_host_keys,
        spec.proxy_command,
        spec.proxy_jump,
        spec.compress,
        spec.connect_timeout,
    ]
    for path in (spec.key_file, *spec.known_hosts_files):
        if path is None:
            continue
        try:
            st = os.stat(os.path.expanduser(path))
            parts.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            parts.append((path, None))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class _Pending:
    __slots__ = ("done", "ok", "owner", "value")

    def __init__(self, owner: object) -> None:
        self.done = threading.Event()
        self.ok = False
        self.owner = owner
        self.value: Any = None


class KeeperLink:
    """One run's socket to the keeper; requests from many threads, answers by id."""

    def __init__(self, path: Path, persist: float, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.path = path
        self.persist = persist
        self.max_age = max_age
        self._sock: socket.socket | None = None
        self._spawned: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._lost = threading.Event()  # the keeper closed our socket (it exited)
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count()

    @classmethod
    def start(
        cls, persist: float, path: Path | None = None, max_age: float = DEFAULT_MAX_AGE
    ) -> KeeperLink | None:
        """A link to the running keeper, or to one started now; None when persist is 0
        or the folder is unusable. A keeper started now gets ready while the run loads
        its playbook: a thread attaches to it meanwhile, so it never idles out on us."""
        if persist <= 0:
            return None
        path = path or control_path()
        if len(os.fsencode(path)) >= MAX_SOCKET_PATH or not _private_folder(path.parent):
            return None  # a Unix socket's path is short (108 bytes with the final NUL)
        link = cls(path, persist, max_age)
        if link._try_connect():
            link._ready.set()
        else:
            link._spawn()
            threading.Thread(target=link._attach, name="keeper start", daemon=True).start()
        return link

    @classmethod
    def existing(cls, path: Path | None = None) -> KeeperLink | None:
        """A link to the keeper that runs now, or None; starts none."""
        link = cls(path or control_path(), 0)
        if not link._try_connect():
            return None
        link._ready.set()
        return link

    def kept(self) -> list[dict[str, Any]]:
        """The connections the keeper holds: host, address, age, idle, in use, alive."""
        return list(self.call("", "list", wait=10))

    def stop(self) -> None:
        """Close every kept connection; the keeper exits."""
        with contextlib.suppress(ConnectionFailed):
            self.call("", "stop", wait=10)

    def _try_connect(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            return False
        self._sock = sock
        threading.Thread(target=self._read, args=(sock,), name="keeper", daemon=True).start()
        return True

    def _spawn(self) -> None:
        self._spawned = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opsfix.transport.keeper.daemon",
                str(self.path),
                str(self.persist),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the run's process group: Ctrl-C is the run's
            close_fds=True,
            cwd="/",
            env=keeper_environment(),
        )

    def _attach(self) -> None:
        """Connect to the keeper just started, once it listens."""
        deadline = time.monotonic() + STARTUP_WAIT
        try:
            while not self._try_connect():
                if self._spawned is not None and self._spawned.poll() is not None:
                    if self._try_connect():  # it found another keeper serving and left
                        break
                    return
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
        finally:
            self._ready.set()

    def _connected(self, host: str) -> None:
        if not self.usable():
            raise ConnectionFailed(host, "the connection keeper did not start")

    def usable(self) -> bool:
        """Attached to a keeper that is still there (waiting for one this run started)."""
        self._ready.wait()
        return self._sock is not None and not self._lost.is_set()

    def _read(self, sock: socket.socket) -> None:
        try:
            while True:
                request_id, ok, value = wire.receive(sock)
                with self._lock:
                    pending = self._pending.pop(request_id, None)
                if pending is not None:
                    pending.ok, pending.value = ok, value
                    pending.done.set()
        except (wire.Closed, OSError, ValueError):
            pass
        finally:
            self._lost.set()
            with self._lock:
                left, self._pending = list(self._pending.values()), {}
            for pending in left:
                pending.ok, pending.value = False, ("failed", "", _GONE)
                pending.done.set()

    def call(
        self, host: str, op: str, *args: Any, wait: float | None = None, owner: object = None
    ) -> Any:
        self._connected(host)
        assert self._sock is not None
        pending = _Pending(owner)
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:
            wire.send(self._sock, self._write_lock, (request_id, op, *args))
        except OSError:
            with self._lock:
                self._pending.pop(request_id, None)
            raise ConnectionFailed(host, _GONE) from None
        if not pending.done.wait(wait):
            with self._lock:
                self._pending.pop(request_id, None)
            raise ConnectionFailed(host, "the connection keeper did not answer")
        if pending.ok:
            return pending.value
        error = pending.value
        if error[0] == "failed" and not error[1]:
            error = ("failed", host, error[2])
        raise wire.decode_error(error, host)

    def abandon(self, owner: object, reason: str) -> None:
        """Stop waiting for `owner`'s requests: they fail now (the keeper finishes them)."""
        with self._lock:
            mine = [i for i, p in self._pending.items() if p.owner is owner]
            left = [self._pending.pop(i) for i in mine]
        for pending in left:
            pending.ok, pending.value = False, ("failed", "", reason)
            pending.done.set()

    def close(self) -> None:
        """This run is done with the keeper; the connections stay for the next run."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()


class KeptConnection:
    """A Connection (opsfix.transport.base) whose SSH session the keeper holds."""

    def __init__(self, link: KeeperLink, spec: ConnectionSpec) -> None:
        self.link = link
        self.spec = spec
        self.host = spec.host
        self.key = connection_key(spec)
        self._open = False

    def open(self) -> None:
        limit = self.spec.connect_timeout * 3 + STARTUP_WAIT
        spec = kept_spec(self.spec)
        self.link.call(self.host, "open", self.key, spec, self.link.max_age, wait=limit)
        self._open = True

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        if not self._open:
            raise ConnectionFailed(self.host, "not connected")
        limit = self.spec.command_timeout if timeout is None else timeout
        result: CommandResult = self.link.call(
            self.host,
            "run",
            self.key,
            self.spec,
            script,
            become,
            timeout,
            wait=limit + 30,
            owner=self,
        )
        return result

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        if not self._open:
            raise ConnectionFailed(self.host, "not connected")
        wait = self.spec.command_timeout + 30
        self.link.call(
            self.host, "put", self.key, self.host, data, remote_path, mode, wait=wait, owner=self
        )

    def close(self) -> None:
        """Hand the connection back to the keeper, which keeps it open for the next run.
        Commands still under way stop being waited for, as a closed connection cuts them."""
        self.link.abandon(self, "connection closed")
        if self._open:
            self._open = False
            with contextlib.suppress(ConnectionFailed):
                self.link.call(self.host, "release", self.key, wait=5)

    @property
    def native_client(self) -> None:
        return None


def _private_folder(folder: Path) -> bool:
    """The socket's folder and the state folder around it exist, are ours, and only we
    may enter them (opsfix.evidence.statedir)."""
    from opsfix.evidence.statedir import UnsafeStateFolder, private_folder

    try:
        private_folder(folder.parent)
        private_folder(folder)
    except UnsafeStateFolder:
        return False
    return True


def connector(link: KeeperLink | None) -> Callable[[ConnectionSpec], Any]:
    """The engine's `connect`: SSH hosts through the keeper when there is one."""
    from opsfix.transport.connect import open_connection

    if link is None:
        import opsfix.transport.ssh  # noqa: F401  # paramiko, now: a start-up cost, not a host's

        return open_connection

    def connect(spec: ConnectionSpec) -> Any:
        # ssh-agent and default keys live in the run's own environment: per run; and a
        # keeper that could not start costs the run nothing but the kept connections
        if (
            spec.connection != "ssh"
            or not spec.key_file
            or needs_become_password(spec)
            or not link.usable()
        ):
            return open_connection(spec)
        connection = KeptConnection(link, kept_spec(spec))  # its password is never used
        try:
            connection.open()
        except ConnectionFailed:
            if link.usable():
                raise  # the host's own trouble
            return open_connection(spec)  # the keeper left (it was idling out as we came)
        return connection

    return connect


@contextlib.contextmanager
def keeper_link(persist: float, max_age: float = DEFAULT_MAX_AGE) -> Iterator[KeeperLink | None]:
    link = KeeperLink.start(persist, max_age=max_age)
    try:
        yield link
    finally:
        if link is not None:
            link.close()
