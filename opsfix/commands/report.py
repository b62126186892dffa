"""`opsfix report`: a recorded run as an operation log, or the /var capacity report.

opsfix report RUN_ID [--format markdown|html|bundle] [-o FILE]
opsfix report RUN_ID --verify-hash SHA256
opsfix report capacity [--host H] [--path /var] [-o chart.png|chart.svg]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_FAILED, EXIT_OK
from opsfix.errors import OptionsError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="operation log of a run (markdown, html) or the /var capacity report",
        description="RUN_ID (a unique start of it, or `last`): the run's operation log and "
        "incident report; `capacity`: /var size over time per host and the day it fills.",
    )
    p.add_argument("target", metavar="RUN_ID|capacity")
    p.add_argument(
        "--format",
        choices=("markdown", "html", "bundle"),
        default="markdown",
        help="bundle: the run's evidence bundle, the exact bytes whose sha256 reports quote",
    )
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here, not stdout")
    p.add_argument("--verify-hash", metavar="SHA256", help="check the run's evidence bundle")
    p.add_argument("--host", action="append", help="capacity: only this host (repeatable)")
    p.add_argument("--path", default="/var", help="capacity: the measured folder")
    p.add_argument(
        "--window-days", type=float, default=7.0, help="capacity: samples used for the rate"
    )
    p.add_argument(
        "--warn-days", type=float, default=14.0, help="capacity: mark hosts that fill sooner"
    )
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from opsfix.commands.history import existing_store
    from opsfix.evidence.state import StateError

    try:
        store = existing_store()
        if args.target == "capacity":
            return _capacity(store, args)
        if store is None:
            raise OptionsError("no runs recorded yet")
        return _run_report(store, args)
    except StateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run_report(store: Any, args: argparse.Namespace) -> int:
    from opsfix.evidence import history
    from opsfix.evidence.reports import html, markdown, oplog

    bundle, doc = history.load(store, args.target)
    digest = history.bundle_sha256(bundle)
    if args.verify_hash:
        given = args.verify_hash.strip().lower()
        if given == digest:
            print(f"OK: run {doc['run_id']}: evidence bundle sha256 {digest}")
            return EXIT_OK
        print(f"MISMATCH: run {doc['run_id']}: evidence bundle sha256 is {digest}, not {given}")
        return EXIT_FAILED
    if args.format == "bundle":
        _emit(bundle, args.output, newline=False)
        return EXIT_OK
    log = oplog.build(doc, digest)
    _emit(html.render(log) if args.format == "html" else markdown.render(log), args.output)
    return EXIT_OK


def _capacity(store: Any, args: argparse.Namespace) -> int:
    from opsfix.evidence.reports import capacity

    out = args.output
    if out is not None and out.suffix.lower() not in capacity.CHART_FORMATS:
        raise OptionsError(f"-o: the chart is written as .png or .svg, not {out.name!r}")
    if out is not None and not capacity.can_draw():
        raise OptionsError(
            "-o: drawing a chart needs matplotlib, an optional part of opsfix: "
            "pip install 'opsfix[charts]' (the table needs nothing more: leave out -o)"
        )
    if args.verify_hash or args.format != "markdown":
        raise OptionsError("report capacity takes --host, --path, --window-days, -o")
    items = (
        capacity.forecasts(store, args.path, args.host, window_days=args.window_days)
        if store is not None
        else []
    )
    if not items:
        print(
            f"No samples of {args.path} yet: the var_growth check records one at each run "
            "(e.g. opsfix check playbooks/daily_health.yml).",
            file=sys.stderr,
        )
    else:
        print(capacity.table(items, warn_days=args.warn_days))
    if out is not None:
        capacity.chart(items, out, warn_days=args.warn_days)
        print(f"chart: {out}", file=sys.stderr)
    return EXIT_OK


def _emit(text: str, out: Path | None, newline: bool = True) -> None:
    if out is None:
        sys.stdout.write(text + ("\n" if newline and not text.endswith("\n") else ""))
        return
    out.write_text(text, encoding="utf-8")
    print(f"written: {out}", file=sys.stderr)
