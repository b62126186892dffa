"""Shared by the disk cleanups: where a folder's filesystem stands, and what freeing would do.

Each cleanup states in its plan whether what it can free brings the filesystem under the
target use; when it cannot, it still frees what is safe (the plan is `partial_ok`) and the
summary says so, so the report shows the host still failing and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsfix.checks._units import human, percent
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult


@dataclass(frozen=True)
class Usage:
    """A filesystem as `df -Pk` shows it, in bytes."""

    mount: str
    used: int
    avail: int

    @property
    def used_percent(self) -> float:
        return percent(self.used, self.used + self.avail)

    def after(self, freed: int) -> float:
        return percent(max(0, self.used - freed), self.used + self.avail)


def df(path: str) -> str:
    return cmd("df", "-Pk", "--", path)


def parse_df(result: CommandResult) -> Usage | None:
    lines = result.stdout.splitlines() if result.ok else []
    fields = lines[1].split(maxsplit=5) if len(lines) > 1 else []
    if len(fields) != 6 or not fields[2].isdigit() or not fields[3].isdigit():
        return None
    return Usage(fields[5], int(fields[2]) * 1024, int(fields[3]) * 1024)


def outlook(usage: Usage, freed: int, target: float | None) -> tuple[bool, str]:
    """Whether freeing `freed` bytes gets under `target` %, and a sentence saying so."""
    now, then = usage.used_percent, usage.after(freed)
    text = f"{usage.mount} {now:g}% -> {then:g}% used"
    if target is None:
        return True, text
    if then < target:
        return True, f"{text} (target under {target:g}%)"
    return False, f"{text}: NOT under {target:g}% (needs {human(needed(usage, target))} more)"


def needed(usage: Usage, target: float) -> int:
    """Bytes still to free, beyond what is planned, to get under `target` %."""
    allowed = int((usage.used + usage.avail) * target / 100)
    return max(0, usage.used - allowed + 1)
