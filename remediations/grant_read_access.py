"""Let the web server's user read its web root again: the fix for a `umask 077` deploy.

Only what blocks the user changes, and only by adding permission bits: `a+x` on folders
above the root it cannot enter, `a+rx` on folders under it, `a+r` on files under it.
Nothing is removed, no owner changes, no content changes; nothing reloads (nginx opens
files per request). Rollback sets each changed path back to its exact old mode. Refuses
when the web root is missing or holds more than LIMIT entries.

Others write the web root, so a chmod never reaches past it: names arrive byte for byte
(no name can forge an entry), and each path is opened and its real location checked
before the mode changes on what was opened (`chmod /proc/self/fd/3`), so a symlink, or a
folder swapped for one, is refused rather than followed. A file with other hard links
(it may be a file outside the root) refuses the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.checks.web_root_access import LIMIT, Entry, WebRootAccessParams, blocked_paths, read
from opsfix.hostfiles import shown
from opsfix.plugin import Params, Plan, Remediation
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

from . import _service

# $R the root as named, $r its real path. `grant MODE TYPE PATH`: chmod what is really at
# PATH, reached without a symlink below the root; `above MODE PATH`: a folder above it.
_GRANT = r"""r=$(realpath -e -- "$R") || exit 1
grant() {
  case $2 in d) [ -d "$3" ] ;; *) [ -f "$3" ] ;; esac && [ ! -L "$3" ] ||
    { printf '%s: no longer a plain %s\n' "$3" "$2" >&2; return 1; }
  command exec 3<"$3" || return 1
  l=$(readlink /proc/self/fd/3; echo x); l=${l%?x}
  case $3 in "$R") want=$r ;; *) want=$r${3#"$R"} ;; esac
  [ "$l" = "$want" ] ||
    { exec 3<&-; printf '%s leads to %s: not followed\n' "$3" "$l" >&2; return 1; }
  chmod "$1" /proc/self/fd/3; s=$?; exec 3<&-; return $s
}
above() { [ -d "$2" ] && [ ! -L "$2" ] && chmod "$1" -- "$2"; }"""


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
        access = read(facts[0], root)
        if access is None:
            return Plan(f"{root} unchanged", refuse=f"unknown user {user!r}")
        if access.entries is None:
            return Plan(f"{root} unchanged", refuse=f"{root} is missing: restore the content first")
        entries = access.entries
        if access.exit_status != 0 and not entries:
            return Plan(f"{root} unchanged", refuse=f"cannot list it: {_service.failure(facts[0])}")
        if len([e for e in entries if e.kind == "T"]) >= LIMIT:
            return Plan(f"{root} unchanged", refuse=f"more than {LIMIT} entries: fix it by hand")
        blocked = blocked_paths(entries, access.uid, access.gids)
        if not blocked:
            return Plan(f"{user} can already read all of {root}")
        linked = [e for e in blocked if e.type == "f" and e.links > 1]
        if linked:
            names = ", ".join(shown(e.path) for e in linked[:5])
            why = f"{names}: other hard links (it may be a file outside {root}): fix by hand"
            return Plan(f"{root} unchanged", refuse=why)
        act = [_chmod(e, _bits(e.kind, e.type)) for e in blocked]
        rollback = [_chmod(e, f"{e.mode:04o}") for e in blocked]
        listed = ", ".join(f"{shown(e.path)} {e.mode:04o}" for e in blocked[:5])
        more = f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
        head = f"R={quote(root)}\n{_GRANT}\n"
        return Plan(
            f"let {user} read {root}: add read/enter bits on {listed}{more}",
            act=(head + " && ".join(act),),
            rollback=(head + "; ".join(rollback),),
        )


def _chmod(e: Entry, mode: str) -> str:
    return cmd("above", mode, e.path) if e.kind == "P" else cmd("grant", mode, e.type, e.path)


def _bits(kind: str, type_: str) -> str:
    if type_ != "d":
        return "a+r"
    return "a+x" if kind == "P" else "a+rx"
