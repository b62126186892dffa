"""Verify's commands, run on every host ahead of the tests that ask for them.

pytest runs one host's tests after another, one command at a time: with a round trip per
command, 20 hosts would wait for each other. So the commands one host's tests run (the
leader's) are also sent, in the same order and in one batch, to every other host; when
their tests get to a command, the result is there. And the leader's list is remembered
(`CommandMemo`): the next run sends it to each host as soon as that host's own run is
done, while the others are still being checked and before pytest has even started.

Verify suites assert state and change nothing, so a command that runs a little early,
or runs where a diverging test would not have run it, changes no verdict. A command not
waiting in a host's queue (one naming the host, say), one that timed out in its batch, or
one whose batch failed, runs live: running ahead never changes what a test sees.

No pytest here: the engine's threads send the remembered commands before verify starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsfix.evidence.statedir import UnsafeStateFolder, open_private, private_folder
from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult, Connection
from opsfix.transport.spec import ConnectionSpec

Key = tuple[str, bool]  # (script, become)
_RERUN = (124, -1)  # killed by its timeout, or no report: ask the host again, live
MEMO_SUITES = 32  # suites remembered; the oldest are forgotten first


@dataclass
class VerifyTarget:
    """One inventory host to verify, with the connection opsfix opened (and checked) for it."""

    name: str
    connection: Connection
    spec: ConnectionSpec
    vars: dict[str, Any] = field(default_factory=dict)


class Lookahead:
    """Runs commands on hosts before their tests ask for them (see the module docstring).

    With no remembered commands, the first host to run a command leads: its commands are
    noted, and when another host's tests start, every other host gets all of them in one
    batch; the leader's later commands follow one at a time. With remembered commands,
    each host gets them as soon as it is `add`ed, and nothing is forwarded.
    """

    def __init__(self, targets: Iterable[VerifyTarget] = (), ahead: Sequence[Key] = ()) -> None:
        self.targets: dict[str, VerifyTarget] = {}
        self.ahead = list(ahead)
        self.leader: str | None = None
        self.noted: list[Key] = []  # what the leader's tests ran, in order
        self.sent = bool(self.ahead)
        self.queues: dict[str, deque[tuple[Key, Future[Any]]]] = {}
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._closed = False
        for target in targets:
            self.add(target)

    def add(self, target: VerifyTarget, done: Mapping[Key, CommandResult] | None = None) -> None:
        """A host to verify; with remembered commands, they start on it now. `done` holds
        results of remembered commands that already ran there (with its checks, on a host
        its run did not change): those are not sent again."""
        with self._lock:
            self.targets[target.name] = target
            self.queues[target.name] = deque()
            if not self.ahead or self._closed:
                return
            slots: list[tuple[Key, Future[Any]]] = [(key, Future()) for key in self.ahead]
            missing = []
            for key, future in slots:
                result = (done or {}).get(key)
                if result is not None and result.exit_status not in _RERUN:
                    future.set_running_or_notify_cancel()
                    future.set_result(result)
                else:
                    missing.append((key, future))
            self.queues[target.name].extend(slots)  # in the tests' order: see _take
            if missing:
                self._submit(target.name, missing)

    def run(self, host: str, script: str, become: bool) -> Any:
        key = (script, become)
        with self._lock:
            if self.leader is None:
                self.leader = host
            if host == self.leader:
                self.noted.append(key)
            if host != self.leader and not self.sent:
                self._send(self.noted, but=self.leader)
                self.sent = True
            ahead = self._take(host, key)
            if host == self.leader and self.sent and not self.ahead:
                self._send([key], but=host)
        if ahead is not None:
            with contextlib.suppress(Exception):  # a failed batch: each command again, live
                result = ahead.result()
                if result.exit_status not in _RERUN:
                    return result
        return self.targets[host].connection.run(script, become=become)

    def _take(self, host: str, key: Key) -> Future[Any] | None:
        queue = self.queues.get(host, deque())
        if all(queued != key for queued, _ in queue):
            return None
        while True:
            queued, future = queue.popleft()
            if queued == key:
                return future
            future.cancel()  # not needed by this host's tests

    def _send(self, keys: list[Key], but: str | None) -> None:
        for host in self.queues:
            if host != but:
                self._send_to(host, keys)

    def _send_to(self, host: str, keys: list[Key]) -> None:
        if not keys or self._closed:
            return
        slots: list[tuple[Key, Future[Any]]] = [(key, Future()) for key in keys]
        self.queues[host].extend(slots)
        self._submit(host, slots)

    def _submit(self, host: str, slots: list[tuple[Key, Future[Any]]]) -> None:
        worker = self._workers.get(host)
        if worker is None:
            worker = self._workers[host] = ThreadPoolExecutor(1, f"verify-{host}")
        worker.submit(self._fill, self.targets[host], slots)

    def _fill(self, target: VerifyTarget, slots: list[tuple[Key, Future[Any]]]) -> None:
        """Run the slots' commands on one host, a run of equal `become` per round trip."""
        start = 0
        while start < len(slots):
            become = slots[start][0][1]
            end = start + 1
            while end < len(slots) and _same_user(target.spec, slots[end][0][1], become):
                end += 1
            part = [f for _, f in slots[start:end] if f.set_running_or_notify_cancel()]
            scripts = [k[0] for k, f in slots[start:end] if f in part]
            try:
                results = run_many(target, scripts, become)
            except Exception as exc:
                for future in part:
                    future.set_exception(exc)
            else:
                for future, result in zip(part, results, strict=True):
                    future.set_result(result)
            start = end

    def close(self) -> None:
        """Drop what no test asked for; wait for commands already running."""
        with self._lock:
            self._closed = True
            for queue in self.queues.values():
                for _, future in queue:
                    future.cancel()
            self.queues = {}
        for worker in self._workers.values():
            worker.shutdown(wait=True, cancel_futures=True)


def rides_with(key: Key, spec: ConnectionSpec) -> bool:
    """Whether a remembered command can run in the host's check script (which runs with
    the host's own `become`)."""
    return _same_user(spec, key[1], spec.become)


def _same_user(spec: ConnectionSpec, become: bool, other: bool) -> bool:
    """Commands with these two `become` flags run as the same user on this host."""
    return become == other or (spec.user is not None and spec.user == spec.become_user)


def run_many(target: VerifyTarget, scripts: list[str], become: bool) -> list[CommandResult]:
    """One round trip for all, bounded by the sum of what each would get on its own.

    No `timeout` process per command (the host pays for each): if one hangs, the batch
    times out as a whole, and each command then runs again live, with its own limit.
    """
    if not scripts:
        return []
    if len(scripts) == 1:
        return [target.connection.run(scripts[0], become=become)]
    limit = target.spec.command_timeout * len(scripts)
    done = target.connection.run(batch(scripts, parallel=False), become=become, timeout=limit)
    return unbatch(scripts, done)


class CommandMemo:
    """The commands a suite's tests ran last time, by the suite files' content.

    Kept in one JSON file of the user's state folder, private to them: those commands run
    on hosts, so a file anyone else could write is ignored, never trusted.
    """

    def __init__(self, path: Path, suites: Sequence[Path]) -> None:
        self.path = path
        self.key = suite_key(suites)

    def load(self) -> list[Key]:
        memo = self._read()
        return [(str(s), bool(b)) for s, b in memo.get(self.key, [])]

    def save(self, keys: Sequence[Key], *, unless: Iterable[str] = ()) -> None:
        """Remember `keys`, unless a command holds one of the `unless` texts (secrets)."""
        hidden = [s for s in unless if s]
        if not keys or any(h in script for script, _ in keys for h in hidden):
            return
        memo = self._read()
        memo.pop(self.key, None)
        memo[self.key] = [[script, become] for script, become in keys]
        for old in list(memo)[:-MEMO_SUITES]:
            del memo[old]
        with contextlib.suppress(OSError, UnsafeStateFolder):
            private_folder(self.path.parent)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)  # one a crashed run left (or a planted link): not followed
            fd = open_private(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(memo, f)
            os.replace(partial, self.path)

    def _read(self) -> dict[str, list[list[Any]]]:
        try:
            with os.fdopen(open_private(self.path, os.O_RDONLY)) as f:
                info = os.fstat(f.fileno())
                if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    return {}
                memo = json.load(f)
        except (OSError, ValueError, UnsafeStateFolder):
            return {}
        return memo if isinstance(memo, dict) else {}


def suite_key(suites: Sequence[Path]) -> str:
    """A digest of the suites' paths and the content of every Python file in them."""
    digest = hashlib.sha256()
    for suite in sorted(Path(s).resolve() for s in suites):
        files = sorted(suite.rglob("*.py")) if suite.is_dir() else [suite]
        for file in files:
            digest.update(str(file).encode() + b"\0")
            with contextlib.suppress(OSError):
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()
