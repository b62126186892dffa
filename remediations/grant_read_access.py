"""Let the web server's user read its web root again: the fix for a `umask 077` deploy.

Only what blocks the user changes, and only by adding permission bits: `a+x` on folders
above the root it cannot enter, `a+rx` on folders under it, `a+r` on files under it.
Nothing is removed, no owner changes, no content changes; nothing reloads (nginx opens
files per request). Rollback sets each changed path back to its exact old mode. Refuses
when the web root is missing or holds more than LIMIT entries.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.checks.web_root_access import LIMIT, WebRootAccessParams, blocked_paths, parse
from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from . import _service


class GrantReadAccessParams(Params):
    root: str = Field(description="web root on the host, e.g. /var/www/html")
    user: str = Field("www-data", description="the user the web server's workers run as")


class GrantReadAccess(Remediation[GrantReadAccessParams]):
    """Add the read and enter bits the web server's user lacks; keep everything else."""

    disruptive = False

    def gather(self) -> list[str]:
        from opsfix.checks.web_root_access import WebRootAccess

        check = WebRootAccess(WebRootAccessParams(root=self.params.root, user=self.params.user))
        return check.commands()

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        root, user = self.params.root, self.params.user
        lines = facts[0].stdout.splitlines()
        if facts[0].exit_status == 3 or len(lines) < 2:
            return Plan(f"{root} unchanged", refuse=f"unknown user {user!r}")
        if lines[2:] == ["missing"]:
            return Plan(f"{root} unchanged", refuse=f"{root} is missing: restore the content first")
        entries = parse(lines[2:])
        if not facts[0].ok and not entries:
            return Plan(f"{root} unchanged", refuse=f"cannot list it: {_service.failure(facts[0])}")
        if len([e for e in entries if e.kind == "T"]) >= LIMIT:
            return Plan(f"{root} unchanged", refuse=f"more than {LIMIT} entries: fix it by hand")
        blocked = blocked_paths(entries, int(lines[0]), {int(g) for g in lines[1].split()})
        if not blocked:
            return Plan(f"{user} can already read all of {root}")
        act = [cmd("chmod", _bits(e.kind, e.type), "--", e.path) for e in blocked]
        rollback = [cmd("chmod", f"{e.mode:04o}", "--", e.path) for e in blocked]
        shown = ", ".join(f"{e.path} {e.mode:04o}" for e in blocked[:5])
        more = f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
        return Plan(
            f"let {user} read {root}: add read/enter bits on {shown}{more}",
            act=(" && ".join(act),),
            rollback=("; ".join(rollback),),
        )


def _bits(kind: str, type_: str) -> str:
    if type_ != "d":
        return "a+r"
    return "a+x" if kind == "P" else "a+rx"
