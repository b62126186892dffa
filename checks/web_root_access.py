"""Healthy when the web server's user can reach the web root and read everything in it:
every folder from / down to the root and below it can be entered (x), every file read (r).

A deploy made with `umask 077`, or a `chmod -R 600`, leaves files nginx's workers
(www-data) cannot open: the site answers 403 while every file is present. Judged from
modes and owners (`find -printf`), as the kernel judges them: owner bits when the user
owns the path, group bits when one of its groups does, else the bits for others.
Symlinks are not judged (their targets are, where they lie under the root). Others write
the web root, so its names are data: the listing is NUL-separated and sent byte for byte
(`opsfix.hostfiles.listing`), and the folders above the root are the ones the playbook
names, never ones read from the host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field, field_validator

from opsfix import hostfiles
from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd, quote
from opsfix.transport.base import CommandResult

LIMIT = 5000  # entries judged; a web root larger than this is judged on its first LIMIT
_FIELDS = "%m %U %G %y %n %p\\0"
_LIST = """u=$(id -u {user}) && g=$(id -G {user}) || exit 3
printf 'U %s\\0G %s\\0' "$u" "$g"
[ -e {root} ] || {{ printf 'missing\\0'; exit 0; }}
{parents}find {root} -printf 'T {fields}' | head -z -n {limit}"""


class Entry(NamedTuple):
    kind: str  # P: a parent of the root, T: the root or below it
    mode: int
    uid: int
    gid: int
    type: str  # find's %y: f, d, l, ...
    path: str
    links: int = 1  # hard links (%n)


class Access(NamedTuple):
    """What the listing said: the user's uid and groups, and every entry (None: missing)."""

    exit_status: int
    uid: int
    gids: set[int]
    entries: list[Entry] | None


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
        return [listing_command(self.params.root, self.params.user)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        out, p = results[0], self.params
        access = read(out, p.root)
        if access is None:
            return CheckResult.error(f"unknown user {p.user!r}", stderr=out.stderr.strip()[-300:])
        if access.entries is None:
            return CheckResult.failed(f"{p.root} is missing", root=p.root)
        blocked = blocked_paths(access.entries, access.uid, access.gids)
        if access.exit_status != 0 and not blocked:
            return CheckResult.error("could not list the web root", stderr=out.stderr.strip())
        if blocked:
            shown = [
                f"{hostfiles.shown(e.path)} ({e.mode:04o} {e.uid}:{e.gid})" for e in blocked[:20]
            ]
            return CheckResult.failed(
                f"{p.user} cannot read {len(blocked)} path(s) of {p.root}",
                root=p.root,
                user=p.user,
                blocked=shown,
            )
        return CheckResult.passed(f"{p.user} can read all of {p.root}", root=p.root)


def parents(root: str) -> list[str]:
    """The folders above the root, nearest first, as the playbook names them."""
    found = []
    while root != "/":
        root = posixpath.dirname(root)
        found.append(root)
    return found


def listing_command(root: str, user: str) -> str:
    """The user's ids, then every folder above the root and every path under it."""
    above = parents(root)
    find = f"{cmd('find', *above)} -maxdepth 0 -printf 'P {_FIELDS}'\n" if above else ""
    text = _LIST.format(
        root=quote(root), user=quote(user), parents=find, fields=_FIELDS, limit=LIMIT
    )
    return hostfiles.listing(text)


def read(result: CommandResult, root: str) -> Access | None:
    """The listing's content; None when the user is unknown or the listing is unreadable.

    Only entries where they may be count: P for the folders above the root (by name),
    T for the root and paths under it.
    """
    listed = hostfiles.read_listing(result)
    records = listed.records
    if listed.exit_status == 3 or len(records) < 2 or not records[0].startswith("U "):
        return None
    uid, gids = records[0][2:], records[1][2:].split()
    if not uid.isdigit() or not all(g.isdigit() for g in gids):
        return None
    if records[2:] == ["missing"]:
        return Access(listed.exit_status, int(uid), {int(g) for g in gids}, None)
    above = set(parents(root))
    entries = [
        e
        for e in parse(records[2:])
        if (e.kind == "P" and e.path in above) or (e.kind == "T" and _in_root(e.path, root))
    ]
    return Access(listed.exit_status, int(uid), {int(g) for g in gids}, entries)


def _in_root(path: str, root: str) -> bool:
    return path == root or hostfiles.is_under(path, root)


def parse(records: Sequence[str]) -> list[Entry]:
    """Entries from `KIND MODE UID GID TYPE LINKS PATH` records (the path may hold anything)."""
    entries = []
    for record in records:
        fields = record.split(" ", 6)
        if len(fields) == 7 and fields[0] in ("P", "T") and fields[2].isdigit():
            kind, mode, uid, gid, type_, links, path = fields
            if mode.isdigit() and gid.isdigit() and links.isdigit():
                entry = Entry(kind, int(mode, 8), int(uid), int(gid), type_, path, int(links))
                entries.append(entry)
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
