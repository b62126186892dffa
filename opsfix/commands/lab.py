"""`opsfix lab up|down|status`: the practice lab (namespace hosts, or systemd hosts)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK, EXIT_UNREACHABLE, Parser
from opsfix.errors import OptionsError


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="the practice lab: namespace or systemd hosts (root only)")
    lab_sub = lab.add_subparsers(parser_class=Parser, metavar="ACTION", required=True)
    up = lab_sub.add_parser("up", help="build practice hosts running sshd and nginx")
    up.add_argument("--hosts", type=int, default=3, metavar="N")
    up.add_argument(
        "--kind",
        choices=("namespace", "systemd"),
        default="namespace",
        help="namespace hosts (fast, no systemd; default) or systemd hosts "
        "(systemd-nspawn containers, systemd as PID 1)",
    )
    up.add_argument(
        "--systemd",
        dest="kind",
        action="store_const",
        const="systemd",
        help="same as --kind systemd",
    )
    up.add_argument("--name", default="opsfix", help="lab name: prefix of its interfaces")
    up.add_argument("--subnet", default="10.231.0.0/24", help="the hosts' IPv4 subnet")
    up.set_defaults(func=_cmd_lab, action="up")
    for name, text in (("down", "remove everything the lab made"), ("status", "list hosts")):
        lab_sub.add_parser(name, help=text).set_defaults(func=_cmd_lab, action=name)
    for p in (lab, up):
        p.add_argument(
            "--dir",
            type=Path,
            # `lab --dir X up` and `lab up --dir X` alike: up's own default must not
            # overwrite what the parent parsed
            default=None if p is lab else argparse.SUPPRESS,
            help="lab state folder (default $OPSFIX_LAB_DIR or /var/lib/opsfix-lab)",
        )


def _cmd_lab(args: argparse.Namespace) -> int:
    from opsfix import lab

    state_dir = args.dir
    if args.action == "up":
        if args.hosts < 1:
            raise OptionsError("--hosts must be at least 1")
        built = lab.up(
            args.hosts, state_dir=state_dir, name=args.name, subnet=args.subnet, kind=args.kind
        )
        print(f"kind: {built.kind}")
        for name, address in built.hosts.items():
            print(f"{name}\t{address}")
        print(f"inventory: {built.inventory_path}")
        return EXIT_OK
    if args.action == "down":
        lab.down(state_dir)
        print("lab removed")
        return EXIT_OK
    rows = lab.status(state_dir)
    if not rows:
        print("no lab hosts")
        return EXIT_OK
    print(f"kind: {lab.Lab.load(state_dir).kind}")
    worst = EXIT_OK
    for row in rows:
        ssh = "ssh up" if row.sshd_answering else "ssh DOWN"
        http = "http up" if row.nginx_answering else "http DOWN"
        print(f"{row.name}\t{row.address}\t{ssh}\t{http}")
        worst = worst if row.sshd_answering else EXIT_UNREACHABLE
    return worst
