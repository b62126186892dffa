"""`opsfix drill list|break|reset|status`: practice faults on practice hosts.

Exit codes: 0 done on every host; 2 some host failed (the fault did not take, it was
already broken, a reset failed); 3 some host unreachable (and none failed); 4 inventory
error; 5 bad options, and a refusal: a targeted host is not marked `practice: true` in
the inventory (then no host is contacted and nothing changes anywhere).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from typing import Any

from opsfix.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Parser,
    become_password,
    extra_vars_option,
    inventory_options,
    inventory_sources,
    ssh_options,
)
from opsfix.errors import OptionsError


class _DrillNames(Sequence[str]):
    """The drills' names for argparse's `choices`, read when argparse first needs them:
    importing opsfix.drills loads the transport, which other commands should not pay for."""

    def __getitem__(self, index: Any) -> Any:
        from opsfix.drills import DRILLS

        return [d.name for d in DRILLS][index]

    def __len__(self) -> int:
        from opsfix.drills import DRILLS

        return len(DRILLS)


def register(sub: Any) -> None:
    drill = sub.add_parser(
        "drill",
        help="practice faults: break a practice host on purpose, then repair it",
        description="Inject known faults into hosts marked `practice: true` in the inventory, "
        "record them on the host, and undo them exactly. Any other host is refused (exit 5) "
        "before a single host is contacted. See docs/practice.md.",
    )
    actions = drill.add_subparsers(parser_class=Parser, metavar="ACTION", required=True)
    actions.add_parser("list", help="the drills, and the playbook that repairs each").set_defaults(
        func=_cmd_list
    )
    brk = actions.add_parser("break", help="inject a fault into practice hosts (--limit needed)")
    brk.add_argument("name", choices=_DrillNames(), metavar="NAME", help="see `opsfix drill list`")
    reset = actions.add_parser("reset", help="undo every drill recorded on the hosts")
    status = actions.add_parser("status", help="which drills are in place where")
    for p, func in ((brk, _cmd_break), (reset, _cmd_reset), (status, _cmd_status)):
        inventory_options(p)
        _connection_options(p)
        extra_vars_option(
            p,
            "k=v, @file.yml or a YAML mapping, over the inventory's (connection variables, "
            "web_root); never `practice`",
        )
        p.set_defaults(func=func)


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--forks", type=int, default=10, help="hosts worked on at once")
    ssh_options(p)
    p.add_argument("-K", "--ask-become-pass", action="store_true", help="prompt for sudo's")
    p.add_argument("--timeout", type=float, default=10.0, help="connect timeout, seconds")
    p.add_argument(
        "--command-timeout", type=float, default=60.0, help="timeout of each host's script"
    )


def _cmd_list(args: argparse.Namespace) -> int:
    from opsfix.drills import DRILLS
    from opsfix.shipped import playbook

    width = max(len(d.name) for d in DRILLS)
    for d in DRILLS:
        print(f"{d.name:<{width}}  {d.title}")
        book = playbook(d.playbook)
        print(f"{'':<{width}}  repair with {book} (fails: {', '.join(d.detects)})")
    return EXIT_OK


def _cmd_break(args: argparse.Namespace) -> int:
    from opsfix.drills import BY_NAME, break_script, practice_hosts, run_everywhere, web_root, who

    if not args.limit:
        raise OptionsError("drill break needs --limit: name the practice host(s) to break")
    drill = BY_NAME[args.name]
    hosts = _with_extra(
        args, practice_hosts(inventory_sources(args.inventory), args.limit, "break")
    )
    by = who()
    outcomes = run_everywhere(
        hosts, lambda h: break_script(drill, web_root=web_root(h), by=by), _connect(args)
    )
    for o in outcomes:
        if o.status == "ok":
            print(f"{o.host}: broke {drill.name}: {drill.title}")
        else:
            print(f"{o.host}: {o.status.upper()}: {drill.name} not broken: {o.message}")
    broken = [o.host for o in outcomes if o.status == "ok"]
    if broken:
        where = _where(args, ":".join(broken))
        print(f"\nwhat to observe: {drill.observe}")
        from opsfix.shipped import playbook

        book = playbook(drill.playbook)
        print(f"detect:  opsfix check {book}{where}")
        print(f"repair:  opsfix apply {book}{where}")
        print(f"undo:    opsfix drill reset{where}")
    return _exit(outcomes)


def _cmd_reset(args: argparse.Namespace) -> int:
    from opsfix.drills import practice_hosts, reset_script, run_everywhere, web_root

    hosts = _with_extra(
        args, practice_hosts(inventory_sources(args.inventory), args.limit, "reset")
    )
    outcomes = run_everywhere(hosts, lambda h: reset_script(web_root=web_root(h)), _connect(args))
    for o in outcomes:
        undone = [line.removeprefix("reset: ") for line in o.lines if line.startswith("reset: ")]
        if o.status == "ok":
            print(f"{o.host}: " + (f"reset {', '.join(undone)}" if undone else "no drill to reset"))
        else:
            print(f"{o.host}: {o.status.upper()}: {o.message}")
    return _exit(outcomes)


def _cmd_status(args: argparse.Namespace) -> int:
    from opsfix.drills import is_practice, parse_status, run_everywhere, status_script, web_root
    from opsfix.inventory import load_inventory

    every = load_inventory(inventory_sources(args.inventory)).match(args.limit).hosts
    hosts = _with_extra(args, [h for h in every if is_practice(h)])
    for h in every:
        if not is_practice(h):
            print(f"{h.name}: not a practice host (not contacted)")
    outcomes = run_everywhere(hosts, lambda h: status_script(web_root=web_root(h)), _connect(args))
    for o in outcomes:
        if o.status != "ok":
            print(f"{o.host}: {o.status.upper()}: {o.message}")
            continue
        active = parse_status(o.lines)
        if not active:
            print(f"{o.host}: no drill")
        for a in active:
            state = {True: "broken", False: "repaired (not reset)", None: "unknown drill"}
            print(f"{o.host}: {a.name}: {state[a.still_broken]} (since {a.since}, by {a.by})")
    return _exit(outcomes)


def _with_extra(args: argparse.Namespace, hosts: list[Any]) -> list[Any]:
    """The practice hosts with `-e` over their inventory variables. Whether a host is a
    practice host is its inventory's word alone, judged before: `-e practice=...` is
    refused, never a way to turn someone's server into a drill target."""
    from opsfix.playbook.variables import parse_extra_vars

    extra = parse_extra_vars(args.extra_vars)
    if "practice" in extra:
        raise OptionsError(
            "-e practice=...: only the inventory makes a host a practice host; "
            "set `practice: true` there"
        )
    return [host.with_extra_vars(extra) for host in hosts]


def _connect(args: argparse.Namespace) -> Any:
    from opsfix.drills import Connect

    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    return Connect(
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=become_password(args.ask_become_pass),
        connect_timeout=args.timeout,
        command_timeout=args.command_timeout,
        forks=args.forks,
    )


def _where(args: argparse.Namespace, limit: str) -> str:
    inventories = [f" -i {shlex.quote(str(p))}" for p in args.inventory or []]
    extra = [f" -e {shlex.quote(v)}" for v in args.extra_vars]
    return "".join(inventories + extra) + f" --limit {shlex.quote(limit)}"


def _exit(outcomes: list[Any]) -> int:
    statuses = {o.status for o in outcomes}
    if "failed" in statuses:
        return EXIT_FAILED
    return EXIT_UNREACHABLE if "unreachable" in statuses else EXIT_OK
