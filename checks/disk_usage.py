"""Healthy when no filesystem is at or over the critical use, of blocks or of inodes.

Judged from GNU `df`: every real mounted filesystem (df leaves out proc, sysfs and other
size-less ones; read-only image types are skipped), or the filesystems holding `mounts`.
Use is `used / (used + available)`, as df counts it, so blocks reserved for root count
as full. Over `warn_percent` the check still passes and says so (`warnings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field, model_validator

from opsfix.checks._units import human, percent
from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_COLUMNS = "source,fstype,size,used,avail,itotal,iused,iavail,target"
_SKIPPED = ["squashfs", "iso9660", "udf", "devtmpfs", "efivarfs"]  # always full, or not data


class DiskUsageParams(Params):
    mounts: list[str] = Field([], description="paths whose filesystems to judge; [] = every one")
    warn_percent: float = Field(80, gt=0, le=100, description="use % that passes with a warning")
    critical_percent: float = Field(90, gt=0, le=100, description="use % that fails")
    inode_warn_percent: float = Field(80, gt=0, le=100, description="inode use % warning")
    inode_critical_percent: float = Field(90, gt=0, le=100, description="inode use % that fails")
    skip_types: list[str] = Field(_SKIPPED, description="filesystem types never judged")

    @model_validator(mode="after")
    def _ordered(self) -> DiskUsageParams:
        for warn, critical in (
            ("warn_percent", "critical_percent"),
            ("inode_warn_percent", "inode_critical_percent"),
        ):
            if getattr(self, warn) > getattr(self, critical):
                raise ValueError(
                    f"{warn} ({getattr(self, warn):g}) is over {critical} "
                    f"({getattr(self, critical):g})"
                )
        return self


class Filesystem(NamedTuple):
    mount: str
    fstype: str
    size: int  # bytes
    used: int
    avail: int
    inodes: int
    inodes_used: int

    @property
    def used_percent(self) -> float:
        return percent(self.used, self.used + self.avail)

    @property
    def inode_percent(self) -> float:
        return percent(self.inodes_used, self.inodes)

    def describe(self) -> str:
        inodes = f", inodes {self.inode_percent:g}%" if self.inodes else ""
        return (
            f"{self.mount} {self.used_percent:g}% used ({human(self.used)} of "
            f"{human(self.size)}, {human(self.avail)} free{inodes})"
        )


class DiskUsage(Check[DiskUsageParams]):
    def commands(self) -> list[str]:
        paths = ["--", *self.params.mounts] if self.params.mounts else []
        return [cmd("df", "-k", f"--output={_COLUMNS}", *paths)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        df, p = results[0], self.params
        found = {f.mount: f for f in map(_parse, df.stdout.splitlines()[1:]) if f}.values()
        judged = [f for f in found if f.fstype not in p.skip_types or p.mounts]
        if not df.ok or not judged:
            return CheckResult.error("df failed", exit=df.exit_status, stderr=df.stderr.strip())
        critical = [f for f in judged if self._level(f) == 2]
        warning = [f for f in judged if self._level(f) == 1]
        worst = max(judged, key=lambda f: max(f.used_percent, f.inode_percent))
        facts = {"filesystems": len(judged), "worst": worst.describe()}
        if warning:
            facts["warnings"] = [f.describe() for f in warning][:20]
        if critical:
            facts["critical"] = [f.describe() for f in critical][:20]
            names = ", ".join(f.mount for f in critical)
            return CheckResult.failed(
                f"{len(critical)} filesystem(s) nearly full: {names}", **facts
            )
        if warning:
            names = ", ".join(f.mount for f in warning)
            return CheckResult.passed(f"warning: {names} over {p.warn_percent:g}%", **facts)
        return CheckResult.passed(f"{len(judged)} filesystem(s) below {p.warn_percent:g}%", **facts)

    def _level(self, fs: Filesystem) -> int:
        """0 fine, 1 warning, 2 critical: the worse of blocks and inodes."""
        p = self.params
        return max(
            _level(fs.used_percent, p.warn_percent, p.critical_percent),
            _level(fs.inode_percent, p.inode_warn_percent, p.inode_critical_percent),
        )


def _level(used: float, warn: float, critical: float) -> int:
    return 2 if used >= critical else 1 if used >= warn else 0


def _parse(line: str) -> Filesystem | None:
    fields = line.split(maxsplit=8)
    if len(fields) != 9 or not all(f.isdigit() for f in fields[2:5]):
        return None
    inodes = [int(f) if f.isdigit() else 0 for f in fields[5:7]]  # "-": no inode counts
    size, used, avail = (int(f) * 1024 for f in fields[2:5])
    return Filesystem(fields[8], fields[1], size, used, avail, inodes[0], inodes[1])
