"""The controller's state folder: where it is, and the rules that make it safe to use.

Everything opsfix keeps between runs lives there (the run history, growth samples, the
keeper's socket, remembered verify commands), and some of it decides what runs on hosts.
So the folder must be the running user's alone: created 0700, refused when another user
owns it or others may write in it, and files in it opened without following links (a
planted `opsfix.db -> /root/victim` must never be written through).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from opsfix.errors import OptionsError


class UnsafeStateFolder(OptionsError):
    """The state folder belongs to someone else, or others may write in it: exit 5."""


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$OPSFIX_STATE_DIR`, else `$XDG_STATE_HOME/opsfix`, else `~/.local/state/opsfix`."""
    env = os.environ if env is None else env
    if env.get("OPSFIX_STATE_DIR"):
        return Path(env["OPSFIX_STATE_DIR"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "opsfix"
    return Path(env.get("HOME") or Path.home()).expanduser() / ".local" / "state" / "opsfix"


def private_folder(folder: Path) -> Path:
    """`folder`, created 0700 (every level made here) and checked: ours, nobody else's
    to write. Readable by others (an older opsfix made it 0755) is tightened to 0700."""
    made = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
    for level in reversed(made):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeStateFolder(f"cannot create state folder {level}: {exc.strerror}") from None
    check_private(folder)
    return folder


def check_private(folder: Path) -> None:
    """Refuse a folder another user owns or others may write; tighten one others may read."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise UnsafeStateFolder(f"cannot use state folder {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateFolder(f"state folder {folder} is not a folder")
    if st.st_uid != os.geteuid():
        raise UnsafeStateFolder(
            f"state folder {folder} belongs to uid {st.st_uid}, not to this user "
            f"(uid {os.geteuid()}): refused (set OPSFIX_STATE_DIR to a folder of your own)"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStateFolder(
            f"state folder {folder} is writable by others (mode {stat.S_IMODE(st.st_mode):o}): "
            f"refused; anyone could plant files or links there (chmod 700 {folder})"
        )
    if st.st_mode & 0o077:
        try:
            os.chmod(folder, 0o700)
        except OSError as exc:
            raise UnsafeStateFolder(f"cannot make {folder} private: {exc.strerror}") from None


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open without following a link at `path`, and only a regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError:
        if os.path.islink(path):
            raise UnsafeStateFolder(
                f"{path} is a symbolic link (to {os.readlink(path)!r}): refused; "
                "opsfix never follows links in its state folder"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeStateFolder(f"{path} is not a regular file: refused")
    return fd


def refuse_links(*paths: Path) -> None:
    """Files SQLite opens itself (its journal and WAL) must not be planted links either."""
    for path in paths:
        if os.path.islink(path):
            raise UnsafeStateFolder(
                f"{path} is a symbolic link (to {os.readlink(path)!r}): refused; "
                "opsfix never follows links in its state folder"
            )
