"""What both plugins share: reading `stat` output and the mode parameter."""

from __future__ import annotations

import posixpath
from typing import Annotated

from pydantic import AfterValidator

from opsfix.shell import cmd


def _octal(value: str) -> str:
    if not (3 <= len(value) <= 4 and all(c in "01234567" for c in value)):
        raise ValueError(f"{value!r} is not an octal mode such as '0644'")
    return value.rjust(4, "0")


def _absolute(path: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path:
        raise ValueError(f"{path!r} is not an absolute, normalized path")
    return path


Mode = Annotated[str, AfterValidator(_octal)]
AbsolutePath = Annotated[str, AfterValidator(_absolute)]


def stat(path: str) -> str:
    """Mode bits (octal), owner and file type; never follows a symlink."""
    return cmd("stat", "-c", "%a %U %F", "--", path)


def parse(stdout: str) -> tuple[int, str, str] | None:
    """(mode, owner, type) from `stat`, or None when it printed something else."""
    parts = stdout.strip().split(" ", 2)
    if len(parts) != 3 or not all(c in "01234567" for c in parts[0]):
        return None
    return int(parts[0], 8), parts[1], parts[2]
