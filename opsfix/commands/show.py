"""`opsfix show RUN_ID`: one recorded run in full, as the run itself printed it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from opsfix.commands.common import EXIT_FAILED, EXIT_OK
from opsfix.escape import printable


def register(sub: Any) -> None:
    p = sub.add_parser("show", help="one recorded run in full (RUN_ID, a unique start, or last)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("-v", "--verbose", action="count", default=1, help="more detail")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_show)


def _cmd_show(args: argparse.Namespace) -> int:
    from opsfix.commands.history import existing_store
    from opsfix.errors import OptionsError
    from opsfix.evidence import history, output
    from opsfix.evidence.state import StateError

    try:
        store = existing_store()
        if store is None:
            raise OptionsError("no runs recorded yet")
        bundle, doc = history.load(store, args.run_id)
    except StateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    report = history.report_from_dict(doc["report"])
    options = doc.get("options", {})
    shown = {k: v for k, v in options.items() if v not in (None, False, [], "")}
    lines = [
        f"run       {doc['run_id']}",
        f"playbook  {doc['playbook_path']}",
        f"by        {doc.get('user', '?')}",
        f"started   {history.when(report.started)}",
        f"finished  {history.when(report.finished)}",
        f"exit      {doc.get('exit_code')}",
        f"options   {json.dumps(shown, sort_keys=True)}",
        f"sha256    {history.bundle_sha256(bundle)}  (evidence bundle)",
        "",
        output.to_text(report, args.verbose),
    ]
    print(printable("\n".join(lines)))  # recorded masked: nothing secret is left to redact
    return EXIT_OK
