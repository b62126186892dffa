"""File names on a host are data: listings arrive byte for byte, and paths stay in their root.

Anyone who can write a folder can name a file with a newline, a forged record, or bytes
that are not UTF-8, and can swap a folder for a symlink. So:

- a listing is NUL-separated on the host and travels base64-encoded (`listing`), so no
  byte of a name is lost to the transport's UTF-8 decoding; `read_listing` splits it into
  names that keep undecodable bytes as surrogates (`os.fsdecode`'s convention), which
  `opsfix.shell.quote` writes back exactly;
- a path that a root remediation changes is `confined` to a root: no folder between the
  root and the path may be a symlink, checked on the host just before the change, with
  shell builtins only (no process per path); the change itself happens from inside its
  folder, `enter`ed one checked step at a time, so a folder swapped for a symlink after
  the check is not followed either.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass

from opsfix.shell import quote
from opsfix.transport.base import CommandResult

# `confined ROOT PATH`: 0 when no folder strictly between ROOT and PATH is a symlink; else
# 1, with the first such folder (or PATH itself, when it is not under ROOT) in $link.
# ROOT "" stands for /. Builtins only: `[` and parameter expansion.
CONFINED = r"""confined() {
  _c=$1 _r=${2#"$1"/}
  [ "$_r" != "$2" ] || { link=$2; return 1; }
  while :; do
    case $_r in */*) ;; *) return 0 ;; esac
    _c=$_c/${_r%%/*} _r=${_r#*/}
    [ ! -L "$_c" ] || { link=$_c; return 1; }
  done
}"""


# `enter ROOT FOLDER [create]`: cd into FOLDER (ROOT or below it) one folder at a time,
# checking after each step that the working folder is physically where it should be (the
# root's real path, then each name in turn). A symlink swapped in at any moment is never
# followed: once checked, the working folder stays that folder, whatever is renamed later.
# `create` makes missing folders (mode 755), the root too (its path is trusted). Returns 1
# (with $link) at a folder that is not where it should be, 2 when one is missing; on
# success $_w is the working folder's path.
ENTER = r"""enter() {
  case $2 in "$1" | "$1"/*) ;; *) link=$2; return 1 ;; esac
  if [ "${3:-}" = create ] && [ ! -e "${1:-/}" ]; then (umask 022 && mkdir -p -- "$1"); fi
  cd -P -- "${1:-/}" 2>/dev/null || { link=${1:-/}; return 2; }
  _w=${PWD%/} _n=$1 _r=${2#"$1"}; _r=${_r#/}
  while [ -n "$_r" ]; do
    _c=${_r%%/*}; case $_r in */*) _r=${_r#*/} ;; *) _r= ;; esac
    _w=$_w/$_c _n=$_n/$_c link=$_n
    if [ ! -e "$_c" ] && [ ! -L "$_c" ]; then
      [ "${3:-}" = create ] && mkdir -m 755 -- "$_c" || return 2
    fi
    [ ! -L "$_c" ] && cd -P -- "$_c" 2>/dev/null && [ "$PWD" = "$_w" ] || return 1
  done
}"""


def confined(root: str, path: str) -> str:
    """The shell test that `path` does not leave `root` through a symlinked folder."""
    return f"confined {quote(root_arg(root))} {quote(path)}"


def root_arg(root: str) -> str:
    """How `confined` takes a root: without its trailing slash ("" for /)."""
    return root.rstrip("/")


def is_under(path: str, root: str) -> bool:
    """True when `path` is a normalised absolute path strictly below `root`."""
    prefix = root.rstrip("/") + "/"
    return posixpath.normpath(path) == path and path.startswith(prefix) and path != prefix


def listing(command: str) -> str:
    """`command` (which prints NUL-separated records) wrapped so its output arrives byte
    for byte: base64 of the records, then a NUL and the command's exit status."""
    return f"{{ ( {command}\n); printf '\\0%s' \"$?\"; }} | base64"


@dataclass(frozen=True)
class Listing:
    """What a `listing` sent: the command's exit status (-1: cut short) and its records."""

    exit_status: int
    records: list[str]

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def read_listing(result: CommandResult) -> Listing:
    """Decode a `listing`; anything cut short or garbled reads as exit status -1."""
    try:
        data = base64.b64decode(result.stdout)
    except (binascii.Error, ValueError):
        return Listing(-1, [])
    body, sep, status = data.rpartition(b"\0")
    if not sep or not status.isdigit():
        return Listing(-1, [])
    records = body.split(b"\0")
    if records and records[-1] == b"":
        records.pop()
    return Listing(int(status), [decode(r) for r in records])


def decode(raw: bytes) -> str:
    """A name as opsfix holds it: UTF-8, undecodable bytes as surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def encode(name: str) -> bytes:
    """The bytes of a name on the host."""
    return name.encode("utf-8", "surrogateescape")


def shown(name: str) -> str:
    """A name for people: undecodable bytes as \\xNN, control characters escaped."""
    text = encode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
