"""Shrink systemd's journal: `journalctl --vacuum-size` (and `--vacuum-time`), where
journald runs.

Vacuuming removes archived journal files only, so the active ones are rotated first
(`journalctl --rotate`). Nothing to do when the journal is already within `max_size` and
no `max_age` is asked for. Hosts without journalctl, or where journald does not run
(containers, the practice lab), are refused with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field

from opsfix.checks._units import human
from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from . import _disk

_SIZE = r"^[1-9][0-9]*[KMGT]?$"
_AGE = r"^[1-9][0-9]*(s|min|h|d|weeks?|months?|years?)$"
_FACTOR = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_USAGE = re.compile(r"take up ([0-9.]+)([KMGTB]?)")
JOURNALD_RUNS = "[ -d /run/systemd/journal ] && pgrep -x systemd-journal >/dev/null"


class JournalVacuumParams(Params):
    max_size: str = Field("200M", pattern=_SIZE, description="keep at most this much: 200M, 1G")
    max_age: str | None = Field(None, pattern=_AGE, description="drop entries older: 2weeks, 10d")
    rotate: bool = Field(True, description="archive the active files first, so they count")
    target_percent: float | None = Field(None, gt=0, le=100, description="use % to get under")
    path: str = Field("/var/log", description="folder whose filesystem is reported")


class JournalVacuum(Remediation[JournalVacuumParams]):
    """Vacuum the journal down to max_size (and max_age)."""

    disruptive = True  # deletes journal files

    def gather(self) -> list[str]:
        return [
            "command -v journalctl || echo missing",
            f"if {JOURNALD_RUNS}; then echo yes; else echo no; fi",
            "journalctl --disk-usage 2>&1",
            _disk.df(self.params.path),
        ]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p = self.params
        if facts[0].stdout.strip() in ("", "missing"):
            return Plan("journal not vacuumed", refuse="journalctl is not installed on this host")
        if facts[1].stdout.strip() != "yes":
            return Plan("journal not vacuumed", refuse="journald does not run on this host")
        found = _USAGE.search(facts[2].stdout)
        if found is None:
            return Plan(
                "journal not vacuumed",
                refuse=f"journalctl --disk-usage: {facts[2].stdout.strip()[:200]}",
            )
        size = int(float(found[1]) * _FACTOR[found[2].rstrip("B")])
        limit = int(p.max_size.rstrip("KMGT")) * _FACTOR[p.max_size.lstrip("0123456789")]
        if size <= limit and p.max_age is None:
            return Plan(f"the journal takes {human(size)}, within {p.max_size}")
        usage = _disk.parse_df(facts[3])
        freed = max(0, size - limit)
        outlook = _disk.outlook(usage, freed, p.target_percent)[1] if usage else ""
        vacuum = [
            f"--vacuum-size={p.max_size}",
            *([f"--vacuum-time={p.max_age}"] if p.max_age else []),
        ]
        act = ([cmd("journalctl", "--rotate")] if p.rotate else []) + [cmd("journalctl", *vacuum)]
        return Plan(
            f"vacuum the journal ({human(size)}) to {p.max_size}"
            + (f" and {p.max_age}" if p.max_age else "")
            + (f", freeing about {human(freed)}; {outlook}" if outlook else ""),
            act=tuple(act),
            backup=False,
            partial_ok=True,
        )
