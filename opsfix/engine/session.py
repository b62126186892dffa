"""One host's round trips: what travels together, what waits, and what each command gave.

A host run speaks in commands and their results; the session decides how they travel.
A command `ride`s with the next round trip and hands back a `Pending`, read once that
trip has run: no caller counts positions in a shared script. A check round trip (`send`)
gets one limit for the whole script, since a `timeout` process per command was a third of
its CPU; the commands that limit cut short run again, each bounded on its own, so a hung
probe fails alone. Optional commands (verify's riders, a try at the lock) never run
again: they stay "no answer" (exit status -1), and one that repeats an earlier command
of the trip shares that command's result.

A script held back with `before_next_change` (a transaction's commit) goes in front of
the next round trip, so at the latest before the next change, or with `close()`.
Round trips through `changing` may change the host: a result from before one is no
longer `fresh` (verify must not take it as the host's state, nor a baseline probe's as
current). A sudo that refuses the become password raises `BecomeRefused`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from opsfix.errors import CommandTimeout, OpsfixError
from opsfix.shell import batch, status_var, unbatch
from opsfix.transport.base import CommandResult
from opsfix.transport.settings import BECOME_FAILURES


class Runner(Protocol):
    """What runs one script on one host: a Connection, or a session in front of one."""

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult: ...


class BecomeRefused(OpsfixError):
    """sudo refused the become password (wrong or missing): nothing can run on this host."""


class Pending:
    """One command riding with a round trip to come; its result once that trip ran."""

    def __init__(
        self, session: HostSession, script: str, optional: bool, if_failed: Pending | None
    ) -> None:
        self.script = script
        self.optional = optional
        self.if_failed = if_failed
        self._session = session
        self._result: CommandResult | None = None
        self._changes = -1  # the session's count of changes when the result came

    @property
    def ran(self) -> bool:
        """Its round trip has run (the command itself may have been skipped or cut)."""
        return self._result is not None

    @property
    def result(self) -> CommandResult:
        if self._result is None:
            raise RuntimeError(f"not sent yet: {self.script[:80]!r}")
        return self._result

    @property
    def fresh(self) -> bool:
        """It ran, and no round trip that may change the host ran after it."""
        return self._result is not None and self._changes == self._session.changes

    def _set(self, result: CommandResult) -> None:
        self._result, self._changes = result, self._session.changes


class HostSession:
    """Every round trip of one host's run, over its one connection."""

    def __init__(self, conn: Runner, *, check_limit: float, command_limit: float) -> None:
        self.conn = conn
        self.check_limit = check_limit
        self.command_limit = command_limit
        self.changes = 0  # round trips so far that may have changed the host
        self._riding: list[Pending] = []
        self._held: list[str] = []

    @property
    def limit(self) -> float | None:
        """The limit on a check script, or None when no command can get longer anyway
        (the host's command limit is no longer than a check's)."""
        return self.check_limit if self.check_limit < self.command_limit else None

    def ride(
        self, script: str, *, optional: bool = False, if_failed: Pending | None = None
    ) -> Pending:
        """`script` goes with the next `send`. `optional`: not run again when the check
        limit cuts it. `if_failed`: runs only if that command, riding earlier in the same
        trip, failed (a try at the lock, only where a check's probe found trouble)."""
        if if_failed is not None and if_failed not in self._riding:
            raise ValueError("if_failed must name a command riding earlier in the same trip")
        pending = Pending(self, script, optional, if_failed)
        self._riding.append(pending)
        return pending

    def before_next_change(self, script: str) -> None:
        """Hold `script` back: it goes in front of the next round trip, or with `close()`."""
        self._held.append(script)

    def check(self, commands: Sequence[str]) -> list[CommandResult]:
        """`commands` (read-only) and everything riding, in one round trip."""
        pending = [self.ride(command) for command in commands]
        self.send()
        return [p.result for p in pending]

    def send(self) -> None:
        """One round trip: what is held back, then each command riding, one after another.

        One after another: a check's own probe (say `nginx -t`) must not show up in
        another check's view of the host (say `pgrep nginx`)."""
        riding, self._riding = self._riding, []
        held = [Pending(self, script, False, None) for script in self._held]
        if not riding and not held:
            return
        items = [*held, *riding]
        timeout = self._trip(items, self.limit)
        needed = [p for p in items if not p.optional and p.result.exit_status == -1]
        if timeout is not None and needed:
            if self.limit is None:  # the host's own limit cut it: nothing is left to try
                raise timeout
            # a `timeout` inside the script runs in a process group of its own, which
            # the host's limit on the whole script does not reach: keep it within that
            each = min(self.check_limit, self.command_limit + 1)
            timeout = self._trip(needed, None, each)
            if timeout is not None:
                raise timeout
        self._held = self._held[len(held) :]

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        """One script on its own (what is held back goes in front of it)."""
        return self.conn.run(self._front(script), become=become, timeout=timeout)

    @property
    def changing(self) -> Runner:
        """Round trips that may change the host (transactions, recovery)."""
        return _Changing(self)

    def host_changed(self) -> None:
        """The host may have changed without a round trip of ours (another run held it)."""
        self.changes += 1

    def close(self) -> None:
        """Send what is still held back."""
        if self._held:
            self.conn.run("\n".join(self._held) + "\n")
            self._held = []

    def _front(self, script: str) -> str:
        held, self._held = self._held, []
        return "".join(f"( {h}\n) </dev/null >/dev/null 2>&1\n" for h in held) + script

    def _trip(
        self, items: list[Pending], limit: float | None, each: float | None = None
    ) -> CommandTimeout | None:
        """Run `items` in one script (each command bounded by `each` seconds, if given)
        and set their results. Returns the timeout that cut the script short, if one did:
        the items it cut have no answer (exit status -1)."""
        commands, slots = _compose(items)
        results: list[CommandResult] = []
        timeout: CommandTimeout | None = None
        if commands:
            script = batch(commands, parallel=False, timeout=each)
            try:
                results = self._unbatched(commands, self.conn.run(script, timeout=limit))
            except CommandTimeout as exc:
                results = unbatch(commands, CommandResult(script, -1, exc.stdout, exc.stderr))
                timeout = exc
        for item in items:
            done = results[slots[item]] if item in slots else CommandResult(item.script, 0)
            item._set(_named(item.script, done))
        return timeout

    @staticmethod
    def _unbatched(commands: list[str], result: CommandResult) -> list[CommandResult]:
        if result.exit_status == 1 and result.stderr in BECOME_FAILURES:
            raise BecomeRefused(result.stderr)
        return unbatch(commands, result)


def _compose(items: list[Pending]) -> tuple[list[str], dict[Pending, int]]:
    """The commands of one script for `items`, and where each item's result will be. An
    item left out need not run: its `if_failed` command is known to have succeeded."""
    commands: list[str] = []
    slots: dict[Pending, int] = {}
    first: dict[str, int] = {}
    for item in items:
        condition = item.if_failed
        if condition is not None and condition not in slots:  # ran in an earlier trip
            if condition.result.exit_status in (0, -1):  # it did not fail (or never ran)
                continue
            condition = None
        if item.optional and condition is None and item.script in first:
            slots[item] = first[item.script]  # the same read-only command, a moment later
            continue
        text = item.script
        if condition is not None:
            text = f'[ "${{{status_var(slots[condition])}:-0}}" = 0 ] && exit 0\n{text}'
        slots[item] = len(commands)
        first.setdefault(item.script, len(commands))
        commands.append(text)
    return commands, slots


def _named(script: str, result: CommandResult) -> CommandResult:
    """The result under the caller's own script (not the guarded text that ran)."""
    if result.command == script:
        return result
    return CommandResult(script, result.exit_status, result.stdout, result.stderr, result.truncated)


class _Changing:
    """A session's round trips that may change the host: see HostSession.changing."""

    def __init__(self, session: HostSession) -> None:
        self.session = session

    def run(
        self, script: str, *, become: bool | None = None, timeout: float | None = None
    ) -> CommandResult:
        self.session.changes += 1  # before: a trip that fails half-way may have changed it
        return self.session.run(script, become=become, timeout=timeout)
