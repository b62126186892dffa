"""`opsfix playbooks`: the sample playbooks opsfix ships, where they are, what each is for."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "playbooks", help="the sample playbooks shipped with opsfix (path and purpose)"
    )
    p.add_argument("--paths", action="store_true", help="print only the paths")
    p.set_defaults(func=_cmd_playbooks)


def _cmd_playbooks(args: argparse.Namespace) -> int:
    from opsfix.shipped import playbooks

    for path in playbooks():
        print(path if args.paths else f"{path}\n    {_purpose(path)}")
    return EXIT_OK


def _purpose(path: Path) -> str:
    """The playbook's first comment line (each shipped one starts by saying what it does)."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and line.strip("# "):
            return line.strip("# ")
    return ""
