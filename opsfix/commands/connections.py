"""`opsfix connections`: the SSH connections the keeper holds between runs, and closing them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from opsfix.commands.common import EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "connections", help="SSH connections kept open between runs (list, or close them all)"
    )
    p.add_argument("action", nargs="?", choices=("list", "close"), default="list")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_connections)


def _cmd_connections(args: argparse.Namespace) -> int:
    from opsfix.transport.keeper.link import KeeperLink

    link = KeeperLink.existing()
    if args.action == "close":
        if link is not None:
            link.stop()
        print("No kept connections." if link is None else "Kept connections closed.")
        return EXIT_OK
    kept = link.kept() if link is not None else []
    if link is not None:
        link.close()
    if args.format == "json":
        print(json.dumps(kept, indent=2))
        return EXIT_OK
    if not kept:
        print("No kept connections.")
        return EXIT_OK
    rows = [("HOST", "ADDRESS", "AGE", "IDLE", "STATE")]
    rows += [
        (
            k["host"],
            k["address"],
            f"{k['age']:.0f}s",
            f"{k['idle']:.0f}s",
            ("in use" if k["in_use"] else "kept") if k["alive"] else "dead",
        )
        for k in kept
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
