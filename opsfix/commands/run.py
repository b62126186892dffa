"""`opsfix apply` and `opsfix check`: run a playbook against the inventory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

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
    apply.set_defaults(func=_cmd_run, mode="apply")

    check = sub.add_parser("check", help="run the checks only; never changes a host")
    run_options(check)
    check.set_defaults(func=_cmd_run, mode="check", dry_run=False)


def _cmd_run(args: argparse.Namespace) -> int:
    from opsfix.engine import Mode
    from opsfix.runner import RunRequest, run_playbook

    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    mode: Mode = "dry-run" if args.dry_run else args.mode
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
    )
    on_event = _progress if args.verbose and args.format == "text" else None
    report, warnings, secrets = run_playbook(request, on_event=on_event)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    from opsfix import output

    text = output.to_json(report) if args.format == "json" else output.to_text(report, args.verbose)
    print(output.redact(text, secrets))
    return exit_code(report)


def exit_code(report: Any) -> int:
    statuses = {h.status for h in report.hosts}
    if "failed" in statuses:
        return EXIT_FAILED
    if "unreachable" in statuses:
        return EXIT_UNREACHABLE
    return EXIT_OK


def _progress(host: str, event: str) -> None:
    print(f"  {host}: {event}", file=sys.stderr, flush=True)
