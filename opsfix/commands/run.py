"""`opsfix apply` and `opsfix check`: run a playbook against the inventory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opsfix import rollout
from opsfix.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    become_password,
    inventory_sources,
    run_options,
)
from opsfix.errors import OptionsError


def register(sub: Any) -> None:
    apply = sub.add_parser("apply", help="check, remediate, verify")
    run_options(apply)
    apply.add_argument(
        "--check",
        dest="dry_run",
        action="store_true",
        help="dry run: show what each remediation would do, change nothing",
    )
    apply.add_argument("--diff", action="store_true", help="show file diffs in a real run too")
    apply.add_argument(
        "--serial",
        metavar="N[,N%...]",
        help="hosts per batch, e.g. 1,25%%,100%% (overrides the playbook)",
    )
    apply.add_argument(
        "--max-fail-percentage",
        type=float,
        metavar="PCT",
        help="stop the rollout when a batch has more failing hosts than this",
    )
    apply.add_argument(
        "--defer-ok",
        action="store_true",
        help="exit 0 when the only problems left are repairs deferred to a maintenance window",
    )
    apply.add_argument(
        "--override-window",
        action="store_true",
        help="run disruptive repairs outside maintenance windows (needs --reason)",
    )
    apply.add_argument("--reason", help="why the window is overridden (recorded)")
    apply.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another run that holds a host",
    )
    apply.set_defaults(func=_cmd_run, mode="apply")

    check = sub.add_parser("check", help="run the checks only; never changes a host")
    run_options(check)
    check.set_defaults(
        func=_cmd_run,
        mode="check",
        dry_run=False,
        diff=False,
        serial=None,
        max_fail_percentage=None,
        defer_ok=False,
        override_window=False,
        reason=None,
        lock_wait=60.0,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from opsfix.engine import Mode
    from opsfix.runner import RunRequest, run_playbook

    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    mode: Mode = "dry-run" if args.dry_run else args.mode
    if args.override_window and not (args.reason or "").strip():
        raise OptionsError("--override-window needs --reason TEXT (it is recorded)")
    serial = None
    if args.serial:
        try:
            serial = rollout.validate_serial(
                [int(s) if s.strip().isdigit() else s.strip() for s in args.serial.split(",")]
            )
        except ValueError as exc:
            raise OptionsError(f"--serial: {exc}") from None
    if args.max_fail_percentage is not None and not 0 <= args.max_fail_percentage <= 100:
        raise OptionsError("--max-fail-percentage must be between 0 and 100")
    request = RunRequest(
        playbook=args.playbook,
        inventory=inventory_sources(args.inventory),
        limit=args.limit,
        mode=mode,
        forks=args.forks,
        extra_vars=args.extra_vars,
        plugin_dirs=args.plugins,
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=become_password(args.ask_become_pass),
        connect_timeout=args.timeout,
        command_timeout=args.command_timeout,
        serial=serial,
        max_fail_percentage=args.max_fail_percentage,
        show_diff=args.diff,
        override_reason=args.reason if args.override_window else None,
        lock_wait=args.lock_wait,
    )
    on_event = _progress if args.verbose and args.format == "text" else None
    report, warnings, secrets = run_playbook(request, on_event=on_event)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    from opsfix import output

    text = output.to_json(report) if args.format == "json" else output.to_text(report, args.verbose)
    print(output.redact(text, secrets))
    return exit_code(report, defer_ok=args.defer_ok)


def exit_code(report: Any, defer_ok: bool = False) -> int:
    """2 failed (or not attempted, or deferred without --defer-ok), 3 unreachable, else 0."""
    statuses = {h.status for h in report.hosts}
    if statuses & {"failed", "not_attempted"} or ("deferred" in statuses and not defer_ok):
        return EXIT_FAILED
    if "unreachable" in statuses:
        return EXIT_UNREACHABLE
    return EXIT_OK


def _progress(host: str, event: str) -> None:
    print(f"  {host}: {event}", file=sys.stderr, flush=True)
