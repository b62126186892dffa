"""`opsfix inventory`: the resolved inventory, as ansible-inventory prints it."""

from __future__ import annotations

import argparse
from typing import Any

from opsfix.commands.common import EXIT_OK, inventory_options, inventory_sources


def register(sub: Any) -> None:
    inv = sub.add_parser("inventory", help="show the resolved inventory, Ansible-style")
    inventory_options(inv)
    group = inv.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="JSON like ansible-inventory --list")
    group.add_argument("--graph", nargs="?", const="all", metavar="GROUP", help="tree of groups")
    inv.add_argument("--vars", action="store_true", help="with --graph: show variables")
    inv.set_defaults(func=_cmd_inventory)


def _cmd_inventory(args: argparse.Namespace) -> int:
    import json

    from opsfix.inventory import load_inventory

    inventory = load_inventory(inventory_sources(args.inventory))
    if args.list:
        print(json.dumps(inventory.to_list(), indent=4, sort_keys=True, default=str))
    else:
        print(inventory.graph(args.graph, with_vars=args.vars))
    return EXIT_OK
