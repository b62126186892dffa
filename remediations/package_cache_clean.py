"""Free the package manager's download cache: `apt-get clean`, or `dnf`/`yum clean all`.

Only the cache of downloaded packages goes; installed software is untouched, and the
cache refills on the next install. The first of apt-get, dnf and yum on the host is used;
a host with none is refused. Nothing to do when the cache is under `min_size_mib`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.checks._units import human
from opsfix.plugin import Params, Plan, Remediation
from opsfix.transport.base import CommandResult

from . import _disk

MANAGERS = {  # tool: (its cache folder, the command that empties it)
    "apt-get": ("/var/cache/apt", "apt-get clean"),
    "dnf": ("/var/cache/dnf", "dnf clean all"),
    "yum": ("/var/cache/yum", "yum clean all"),
}


class PackageCacheCleanParams(Params):
    min_size_mib: float = Field(1, ge=0, description="leave a cache smaller than this alone")
    target_percent: float | None = Field(None, gt=0, le=100, description="use % to get under")


class PackageCacheClean(Remediation[PackageCacheCleanParams]):
    """Empty the package download cache."""

    disruptive = True  # deletes cached packages

    def gather(self) -> list[str]:
        find = " ".join(
            f"command -v {tool} >/dev/null 2>&1 && {{ echo {tool}; exit 0; }};" for tool in MANAGERS
        )
        sizes = [
            f"du -sk -- {folder} 2>/dev/null || echo 0 -; " + _disk.df(folder) + " 2>/dev/null"
            for folder, _ in MANAGERS.values()
        ]
        return [f"{find} echo none", *sizes]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        tool = facts[0].stdout.strip()
        if tool not in MANAGERS:
            return Plan("package cache not cleaned", refuse="no apt-get, dnf or yum on this host")
        folder, clean = MANAGERS[tool]
        result = facts[1 + list(MANAGERS).index(tool)]
        first = result.stdout.split()[:1]
        size = int(first[0]) * 1024 if first and first[0].isdigit() else 0
        if size < self.params.min_size_mib * 1024 * 1024:
            return Plan(f"{folder} holds {human(size)}: nothing worth cleaning")
        df_lines = "\n".join(result.stdout.splitlines()[1:])
        usage = _disk.parse_df(CommandResult("df", 0, df_lines))
        outlook = _disk.outlook(usage, size, self.params.target_percent)[1] if usage else ""
        return Plan(
            f"{clean}: free about {human(size)} in {folder}" + (f"; {outlook}" if outlook else ""),
            act=(clean,),
            backup=False,
            partial_ok=True,
        )
