"""Healthy when the web server's user can reach the web root and read everything in it:
every folder from / down to the root and below it can be entered (x), every file read (r).

A deploy made with `umask 077`, or a `chmod -R 600`, leaves files nginx's workers
(www-data) cannot open: the site answers 403 while every file is present. Judged from
modes and owners (`find -printf`), as the kernel judges them: owner bits when the user
owns the path, group bits when one of its groups does, else the bits for others.
Symlinks are not judged (their targets are, where they lie under the root).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field, field_validator

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

LIMIT = 5000  # entries judged; a web root larger than this is judged on its first LIMIT
_LIST = """r={root}
id -u {user} && id -G {user} || exit 3
[ -e "$r" ] || {{ echo missing; exit 0; }}
d=$r
while [ "$d" != / ]; do d=$(dirname "$d"); find "$d" -maxdepth 0 -printf 'P %m %U %G %y %p\\n'; done
find "$r" -printf 'T %m %U %G %y %p\\n' | head -n {limit}"""


class Entry(NamedTuple):
    kind: str  # P: a parent of the root, T: the root or below it
    mode: int
    uid: int
    gid: int
    type: str  # find's %y: f, d, l, ...
    path: str


class WebRootAccessParams(Params):
    root: str = Field(description="web root on the host, e.g. /var/www/html")
    user: str = Field("www-data", description="the user the web server's workers run as")

    @field_validator("root")
    @classmethod
    def _absolute(cls, root: str) -> str:
        if not root.startswith("/") or posixpath.normpath(root) != root:
            raise ValueError(f"root must be an absolute, normalised path, not {root!r}")
        return root


class WebRootAccess(Check[WebRootAccessParams]):
    def commands(self) -> list[str]:
        p = self.params
        return [_LIST.format(root=quote(p.root), user=quote(p.user), limit=LIMIT)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        out, p = results[0], self.params
        lines = out.stdout.splitlines()
        if out.exit_status == 3 or len(lines) < 2:
            return CheckResult.error(f"unknown user {p.user!r}", stderr=out.stderr.strip()[-300:])
        if lines[2:] == ["missing"]:
            return CheckResult.failed(f"{p.root} is missing", root=p.root)
        blocked = blocked_paths(parse(lines[2:]), int(lines[0]), {int(g) for g in lines[1].split()})
        if not out.ok and not blocked:
            return CheckResult.error("could not list the web root", stderr=out.stderr.strip())
        if blocked:
            shown = [f"{e.path} ({e.mode:04o} {e.uid}:{e.gid})" for e in blocked[:20]]
            return CheckResult.failed(
                f"{p.user} cannot read {len(blocked)} path(s) of {p.root}",
                root=p.root,
                user=p.user,
                blocked=shown,
            )
        return CheckResult.passed(f"{p.user} can read all of {p.root}", root=p.root)


def parse(lines: Sequence[str]) -> list[Entry]:
    entries = []
    for line in lines:
        fields = line.split(" ", 5)
        if len(fields) == 6 and fields[0] in ("P", "T") and fields[2].isdigit():
            kind, mode, uid, gid, kind_letter, path = fields
            entries.append(Entry(kind, int(mode, 8), int(uid), int(gid), kind_letter, path))
    return entries


def blocked_paths(entries: Sequence[Entry], uid: int, gids: set[int]) -> list[Entry]:
    """Entries the user cannot use: folders it cannot enter, files under the root it cannot read."""
    blocked = []
    for e in entries:
        needed = 0o1 if e.type == "d" else 0o4 if e.type == "f" and e.kind == "T" else 0
        if needed and not permitted(e, uid, gids) & needed:
            blocked.append(e)
    return blocked


def permitted(e: Entry, uid: int, gids: set[int]) -> int:
    """The rwx bits (0-7) that apply to this user, as the kernel picks them."""
    if uid == 0:
        return 0o7
    if e.uid == uid:
        return (e.mode >> 6) & 0o7
    if e.gid in gids:
        return (e.mode >> 3) & 0o7
    return e.mode & 0o7
