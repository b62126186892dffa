"""Force a log rotation with the host's own logrotate config, where logrotate exists.

Rotation moves live logs aside, compresses older ones and deletes those past each file's
`rotate` count: it frees space only as the config allows, and a log a daemon holds open
frees nothing until the daemon reopens it (the config's postrotate does that). The config
is checked with `logrotate -d` (parses it, changes nothing) before the forced run. A
rotation cannot be undone, so a run that frees too little is kept and reported.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from pydantic import Field, field_validator

from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

from . import _disk


class LogrotateParams(Params):
    config: str = Field("/etc/logrotate.conf", description="the config logrotate runs with")
    force: bool = Field(True, description="rotate even files not yet due (logrotate -f)")
    state_file: str | None = Field(None, description="logrotate -s; default: logrotate's own")
    path: str = Field("/var/log", description="the folder whose filesystem is reported")

    @field_validator("config", "path", "state_file")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        if path is not None and (not path.startswith("/") or posixpath.normpath(path) != path):
            raise ValueError(f"{path!r} is not an absolute, normalized path")
        return path


class Logrotate(Remediation[LogrotateParams]):
    """Run logrotate now, with the host's config."""

    disruptive = True  # postrotate scripts reload daemons; old rotations are deleted

    def gather(self) -> list[str]:
        c = quote(self.params.config)
        return [
            "command -v logrotate || echo missing",
            f"if [ -r {c} ]; then echo ok; else echo missing; fi",
            _disk.df(self.params.path),
        ]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        p = self.params
        if facts[0].stdout.strip() in ("", "missing"):
            return Plan("logs not rotated", refuse="logrotate is not installed on this host")
        if facts[1].stdout.strip() != "ok":
            return Plan("logs not rotated", refuse=f"cannot read the logrotate config {p.config}")
        state = ["-s", p.state_file] if p.state_file else []
        force = ["-f"] if p.force else []
        usage = _disk.parse_df(facts[2])
        now = f"; {usage.mount} is {usage.used_percent:g}% used" if usage else ""
        return Plan(
            f"{'force a' if p.force else 'run a'} log rotation with {p.config}{now}",
            validate=(cmd("logrotate", "-d", *state, p.config),),
            act=(cmd("logrotate", *force, *state, p.config),),
            backup=False,
            partial_ok=True,
        )
