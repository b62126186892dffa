"""`opsfix history`: the recorded runs, newest first."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_FAILED, EXIT_OK
from opsfix.escape import printable


def register(sub: Any) -> None:
    p = sub.add_parser("history", help="list recorded runs, newest first")
    p.add_argument("--host", help="only runs that targeted this host")
    p.add_argument("--playbook", metavar="P", help="only runs of this playbook (name or path)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (0: all)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_history)


def existing_store() -> Any:
    """The state database if there is one (reading history never creates it), else None."""
    from opsfix.evidence.state import FILE_NAME, open_store, state_dir

    path = state_dir() / FILE_NAME
    return open_store(path) if path.exists() else None


def _cmd_history(args: argparse.Namespace) -> int:
    from opsfix.evidence.history import counts_text, when
    from opsfix.evidence.state import StateError

    try:
        store = existing_store()
        playbook = _playbook(args.playbook)
        runs = store.runs(host=args.host, playbook=playbook, limit=args.limit) if store else []
    except StateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps([_as_dict(r) for r in runs], indent=2))
        return EXIT_OK
    if not runs:
        print("No runs recorded.", file=sys.stderr)
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        ("RUN", "STARTED (UTC)", "MODE", "PLAYBOOK", "HOSTS", "EXIT", "TOOK", "BY")
    ]
    rows += [
        tuple(
            printable(cell, one_line=True)
            for cell in (
                r.id,
                when(r.started)[:-4],
                r.mode,
                r.playbook,
                counts_text(r.hosts) or "-",
                str(r.exit_code),
                f"{max(0.0, r.finished - r.started):.1f}s",
                r.user,
            )
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(printable("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()))
    return EXIT_OK


def _playbook(given: str | None) -> str | None:
    """A path that exists is matched by its absolute form; anything else as a name too."""
    if given and Path(given).is_file():
        return str(Path(given).resolve())
    return given


def _as_dict(run: Any) -> dict[str, Any]:
    from opsfix.evidence.output import iso

    return {
        "run_id": run.id,
        "playbook": run.playbook,
        "playbook_path": run.playbook_path,
        "mode": run.mode,
        "user": run.user,
        "started": run.started,
        "started_at": iso(run.started),
        "finished": run.finished,
        "finished_at": iso(run.finished),
        "exit_code": run.exit_code,
        "hosts": dict(run.hosts),
        "bundle_sha256": run.bundle_sha256,
    }
