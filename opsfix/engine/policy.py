"""What a host's run is given: its job, and the run's settings as one frozen policy.

The engine schedules hosts; a host's run (opsfix.engine.hostrun) needs only these settings and
callbacks, never the engine that made them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opsfix.engine.lock import Holder, LockSettings
from opsfix.playbook.binding import BoundStep, Target
from opsfix.plugin import Remediation
from opsfix.transport.base import CommandResult
from opsfix.transport.spec import ConnectionSpec

Mode = Literal["apply", "check", "dry-run"]
Event = Callable[[str, str], None]
Gate = Callable[[Target, Remediation[Any]], str | None]
FlapGuard = Callable[[Target, BoundStep], str | None]
# verify's commands (script, become) that may ride with a host's check scripts
Riders = Callable[[Target, ConnectionSpec], list[tuple[str, bool]]]


@dataclass(frozen=True)
class Job:
    """One host of the run: what to do there and how to reach it, and how to reach its
    peers (the other hosts of its inventory groups), should a repair need to ask them."""

    target: Target
    spec: ConnectionSpec
    peers: Callable[[], tuple[ConnectionSpec, ...]] = tuple


AskPeers = Callable[[Job, Sequence[str]], dict[str, list[CommandResult]]]


def _no_peers(job: Job, commands: Sequence[str]) -> dict[str, list[CommandResult]]:
    return {}


def _ignore(host: str, text: str) -> None:
    pass


def _never() -> bool:
    return False


@dataclass(frozen=True)
class HostPolicy:
    """The run's settings for one host's run, built by the engine."""

    mode: Mode
    holder: Holder  # this run, as the host lock names it
    check_timeout: float = 30.0  # per check command: one hung probe fails alone
    lock: LockSettings = field(default_factory=LockSettings)
    gate: Gate | None = None  # may defer a disruptive remediation, saying why
    override_reason: str | None = None  # run deferred steps anyway, recording why
    flap_guard: FlapGuard | None = None  # may refuse to repair a step that keeps breaking
    show_diff: bool = False  # diffs in real runs too (dry runs always have them)
    sensitive_files: tuple[str, ...] = ()  # globs whose diffs are never shown
    verify_riders: Riders | None = None  # apply runs that verify afterwards
    ask_peers: AskPeers = _no_peers  # read-only commands on a job's peers
    cancelled: Callable[[], bool] = _never  # Ctrl-C: start no new step
    on_event: Event = _ignore  # progress lines (host, text)

    def is_sensitive(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.sensitive_files)
