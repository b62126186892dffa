"""A lock on the host itself, so two opsfix runs never change one host at the same time.

The lock is a one-line lease file (run id, user, controller, pid, since) in a folder of
its own under /run/lock, written and removed under `flock` so taking it is atomic. Anyone
may write /run/lock itself, so the lease never lies there: a link planted at a fixed name
would have root write, create or read through it. The folder must be a real folder the
running user owns (made 0700 when missing); one that is not is refused, naming it.

A lease outlives a crashed run, so a holder counts as stale when it is older than the
stale timeout, or when it was taken from this very controller by a process that no
longer exists. A run that finds a live holder waits up to a limit, then gives up and
never acts on the host.
"""

from __future__ import annotations

import getpass
import os
import posixpath
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from opsfix.engine.session import Runner
from opsfix.errors import OpsfixError
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

LOCK_PATH = "/run/lock/opsfix/host.lock"


@dataclass(frozen=True)
class Holder:
    run_id: str
    user: str
    controller: str
    pid: int
    since: int

    @classmethod
    def me(cls, run_id: str | None = None) -> Holder:
        return cls(
            run_id=run_id or secrets.token_hex(6),
            user=_safe(getpass.getuser()),
            controller=_safe(socket.gethostname()),
            pid=os.getpid(),
            since=int(time.time()),
        )

    @classmethod
    def parse(cls, line: str) -> Holder | None:
        parts = line.split()
        if len(parts) != 5 or not parts[3].isdigit() or not parts[4].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]))

    def line(self) -> str:
        return f"{self.run_id} {self.user} {self.controller} {self.pid} {self.since}"

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"run {self.run_id} by {self.user}@{self.controller} (pid {self.pid}) since {when}"


@dataclass(frozen=True)
class LockSettings:
    wait: float = 60.0  # seconds to wait for another run to finish with the host
    stale_after: float = 3600.0  # a lease older than this is abandoned
    path: str = LOCK_PATH
    poll: float = 0.5


class HostLocked(OpsfixError):
    """Another run holds the host; this run must not act on it."""


class HostLock:
    """Take and release the host's lease over an open connection."""

    def __init__(
        self,
        conn: Runner,
        me: Holder,
        settings: LockSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conn = conn
        self.me = me
        self.settings = settings or LockSettings()
        self.clock = clock
        self.sleep = sleep
        self.held = False
        self.maybe_held = False  # a try cut short may have taken the lease unseen
        self.ride_result: CommandResult | None = None

    def acquire(self, ride: str = "") -> bool:
        """Take the lease; True if another run had to be waited for. Raises HostLocked.

        `ride`, a read-only script (a remediation's gather), runs in the same round trip
        once the lease is ours; its result is then `ride_result` (else None)."""
        deadline = self.clock() + self.settings.wait
        waited = False
        replace = ""
        self.ride_result = None
        while True:
            holder = self._try(replace, ride)
            if holder is None:
                self.held = True
                return waited
            if holder.run_id == self.me.run_id:
                self.held = True
                return waited
            if self._is_stale(holder):
                replace = holder.line()
                continue
            if self.clock() >= deadline:
                raise HostLocked(
                    f"locked by {holder.describe()}; gave up after {self.settings.wait:g}s"
                )
            waited, replace = True, ""
            self.sleep(self.settings.poll)

    def release(self) -> None:
        """Give the lease back (also one a try cut short may have taken: the release
        script removes a lease only if it is this run's)."""
        if not self.held and not self.maybe_held:
            return
        self.conn.run(self.release_script())
        self.held = self.maybe_held = False

    def release_script(self) -> str:
        """Gives the lease back if it is still ours: for `release`, or to run as the last
        command of another script (then call `released` with its result)."""
        return self._guarded(f'[ "$cur" = {quote(self.me.line())} ] && rm -f "$L"; true')

    def released(self, result: CommandResult) -> None:
        """`release_script` ran elsewhere: the lease is given back if it succeeded."""
        if result.ok:
            self.held = self.maybe_held = False

    def try_script(self, ride: str = "", replace: str = "") -> str:
        """One try at the lease, without waiting: prints ACQUIRED (then runs `ride`, a
        read-only script, with the guard let go) or HELD and the holder's line."""
        take = f'printf "%s\\n" {quote(self.me.line())} > "$L.tmp" && mv -f "$L.tmp" "$L"'
        script = "got=; " + self._guarded(
            f'if [ -z "$cur" ] || [ "$cur" = {quote(replace or "-")} ]; then '
            f'{take} && echo ACQUIRED && got=1; else echo "HELD $cur"; fi'
        )
        if ride:  # the guard is let go first: the ride may take a while
            script += f'\nexec 9>&-\n[ -n "$got" ] || exit 0\n{ride}'
        return script

    def tried(self, result: CommandResult, ride: str = "") -> bool:
        """`try_script` ran elsewhere (with the first checks): True if the lease is ours
        now (and `ride_result` holds what rode along). Anything else, even no answer,
        leaves it to `acquire`, which also knows a lease of this very run as ours. A try
        cut short (exit status -1) may have taken it unseen: `release` gives it back."""
        self.ride_result = None
        if result.exit_status == -1:
            self.maybe_held = True
            return False
        try:
            holder = self._tried(result, ride)
        except HostLocked:
            return False
        self.held = holder is None or holder.run_id == self.me.run_id
        return self.held

    def _try(self, replace: str, ride: str = "") -> Holder | None:
        return self._tried(self.conn.run(self.try_script(ride, replace)), ride)

    def _tried(self, result: CommandResult, ride: str) -> Holder | None:
        out = result.stdout.splitlines()
        status = next((x for x in out if x == "ACQUIRED" or x.startswith("HELD ")), None)
        if status == "ACQUIRED":
            if ride:
                rode = result.stdout.partition("ACQUIRED\n")[2]
                self.ride_result = CommandResult(ride, result.exit_status, rode, result.stderr)
            return None
        if status is not None:
            holder = Holder.parse(status[5:])
            if holder is not None:
                return holder
        raise HostLocked(
            f"could not take the host lock {self.settings.path}: "
            f"{(result.stderr or result.stdout).strip()[-300:]}"
        )

    def _guarded(self, body: str) -> str:
        path = quote(self.settings.path)
        folder = quote(posixpath.dirname(self.settings.path) or "/")
        # builtins where they do (a lock is taken on the critical path of every repair)
        return (
            f"L={path}; [ -d {folder} ] || (umask 077 && mkdir -p {folder}) 2>/dev/null; "
            f"[ ! -L {folder} ] && [ -O {folder} ] || "
            f"{{ echo {quote(f'lock folder {posixpath.dirname(self.settings.path)}')}"
            "' is not a folder of this user: refused' >&2; exit 92; }; "
            'exec 9>>"$L.guard" || exit 90; '
            "if command -v flock >/dev/null 2>&1; then flock -w 10 9 || exit 91; fi; "
            'cur=; { IFS= read -r cur < "$L"; } 2>/dev/null; '
            f"{body}"
        )

    def _is_stale(self, holder: Holder) -> bool:
        if self.clock() - holder.since > self.settings.stale_after:
            return True
        return holder.controller == self.me.controller and not _pid_alive(holder.pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in text) or "unknown"
