"""`opsfix exec PATTERN -- COMMAND`: an ad-hoc shell command on many hosts in parallel
(opsfix.adhoc), over the same verified, kept connections as a run; output grouped per
host, exit code by the worst host, recorded in history as an ad-hoc run with its user."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from opsfix.commands.common import (
    Parser,
    become_password,
    inventory_options,
    inventory_sources,
    ssh_options,
)
from opsfix.errors import InventoryError, OptionsError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "exec",
        help="run a shell command on the hosts of PATTERN, in parallel (ansible -m shell)",
        description="Run COMMAND (the words after --, as `ssh host COMMAND` runs them) on "
        "every host of PATTERN at once, over opsfix's verified connections. Output is "
        "grouped per host; the exit code is the worst host's (0 all exited 0, 2 a command "
        "failed, 3 a host unreachable); the run is recorded in history with who ran it.",
    )
    p.__class__ = _ExecParser
    p.add_argument("pattern", metavar="PATTERN", help="hosts, in Ansible's pattern syntax")
    inventory_options(p)
    p.add_argument("-b", "--become", action="store_true", help="run as root, through sudo")
    p.add_argument("-f", "--forks", type=int, default=50, help="hosts worked on at once")
    p.add_argument("--format", choices=("text", "json"), default="text")
    ssh_options(p)
    p.add_argument("-K", "--ask-become-pass", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0, help="connect timeout, seconds")
    p.add_argument("--command-timeout", type=float, default=120.0, help="seconds per host")
    p.add_argument("--persist", type=float, metavar="SECONDS", help="as for apply")
    p.set_defaults(func=_cmd_exec, command_words=[])
    p.epilog = "Example: opsfix exec web -- df -h /var"


class _ExecParser(Parser):
    """Keeps the words after `--` as the command, away from argparse's own options."""

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        rest: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, rest = words[:cut], words[cut + 1 :]
        parsed, unknown = super().parse_known_args(words, namespace)
        parsed.command_words = rest
        return parsed, unknown


def _cmd_exec(args: argparse.Namespace) -> int:
    from opsfix.transport.keeper.link import keeper_link, persist_seconds

    command = " ".join(args.command_words).strip()
    if not command:
        raise OptionsError("exec needs a command after --, e.g. opsfix exec web -- uptime")
    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    hosts = _hosts(args)
    with keeper_link(persist_seconds(args.persist)) as keeper:
        return _run(args, hosts, command, keeper)


def _hosts(args: argparse.Namespace) -> list[Any]:
    from opsfix.inventory import load_inventory

    inventory = load_inventory(inventory_sources(args.inventory))
    hosts = inventory.match(args.pattern).hosts
    if args.limit:
        hosts = inventory.match(args.limit, within=hosts).hosts
    if not hosts:
        raise InventoryError(f"pattern {args.pattern!r} matched no host")
    return list(hosts)


def _run(args: argparse.Namespace, hosts: list[Any], command: str, keeper: Any) -> int:
    from opsfix import adhoc
    from opsfix.drills.run import Connect
    from opsfix.runner import connection_spec
    from opsfix.transport.keeper.link import connector

    password = become_password(args.ask_become_pass)
    options = Connect(
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=password,
        connect_timeout=args.timeout,
        command_timeout=args.command_timeout,
    )
    specs = {h.name: connection_spec(h, options) for h in hosts}  # every error before a host
    connect = connector(keeper)
    started = time.time()
    results = adhoc.run_everywhere(
        hosts, command, lambda h: connect(specs[h.name]), become=args.become, forks=args.forks
    )
    code = adhoc.exit_code(results)
    secrets = [password.reveal()] if password else []
    report = adhoc.to_report(results, command, started)
    run_id = _record(args, report, command, code, secrets)
    if args.format == "json":
        print(json.dumps(_as_json(results, args, command, started, run_id), indent=2))
    else:
        _print_text(results)
        _print_summary(results, run_id)
    return code


def _print_text(results: list[Any]) -> None:
    from opsfix.escape import printable

    for r in results:
        if r.status == "unreachable":
            print(f"{printable(r.host, one_line=True)} | UNREACHABLE | {printable(r.reason)}")
            continue
        head = f"exit {r.exit_status}" if r.exit_status is not None else r.reason
        name, state = printable(r.host, one_line=True), "ok" if r.status == "ok" else "FAILED"
        print(f"{name} | {state} | {printable(head, one_line=True)} | {r.duration:.2f}s")
        for line in printable(r.stdout).splitlines():
            print(f"  {line}")
        for line in printable(r.stderr).splitlines():
            print(f"  stderr: {line}")


def _print_summary(results: list[Any], run_id: str | None) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    text = " ".join(f"{status}={n}" for status, n in sorted(counts.items()))
    recorded = f" (run {run_id})" if run_id else ""
    print(f"{len(results)} host(s): {text}{recorded}", file=sys.stderr)


def _as_json(
    results: list[Any], args: argparse.Namespace, command: str, started: float, run_id: Any
) -> dict[str, Any]:
    from dataclasses import asdict

    from opsfix.evidence.output import iso

    return {
        "command": command,
        "pattern": args.pattern,
        "become": args.become,
        "run_id": run_id,
        "started": started,
        "started_at": iso(started),
        "hosts": [asdict(r) for r in results],
    }


def _record(
    args: argparse.Namespace, report: Any, command: str, code: int, secrets: list[str]
) -> str | None:
    """Kept in history as an ad-hoc run (`opsfix history`, `opsfix show`), with its user."""
    from opsfix.evidence import history
    from opsfix.evidence.state import StateError, open_store

    run_id = history.new_run_id(report.started)
    options = {
        "command": "exec",
        "pattern": args.pattern,
        "limit": args.limit,
        "become": args.become,
        "shell_command": command,
        "inventory": [str(p.resolve()) for p in inventory_sources(args.inventory)],
    }
    doc = history.bundle_doc(
        report,
        run_id=run_id,
        playbook_path="(ad-hoc)",
        options=options,
        exit_code=code,
        secrets=secrets,
    )
    try:
        store = open_store()
        try:
            history.record(store, doc)
        finally:
            store.close()
    except (StateError, OSError, ValueError) as exc:
        print(f"WARNING: not recorded in history: {exc}", file=sys.stderr)
        return None
    return run_id
