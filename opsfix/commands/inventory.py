"""`opsfix inventory`: the resolved inventory, as ansible-inventory prints it; and
`opsfix inventory from-vagrant`: an inventory for the practice VMs of a Vagrantfile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK, Parser, inventory_options, inventory_sources
from opsfix.errors import OptionsError

PRACTICE_VARS = {
    "ansible_become": True,
    "practice": True,
    "web_root": "/var/www/html",
    "expected_content": "opsfix practice app",
}


def register(sub: Any) -> None:
    inv = sub.add_parser("inventory", help="show the resolved inventory, Ansible-style")
    inventory_options(inv)
    group = inv.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="JSON like ansible-inventory --list")
    group.add_argument("--graph", nargs="?", const="all", metavar="GROUP", help="tree of groups")
    group.add_argument("--host", metavar="NAME", help="one host's variables, as JSON")
    inv.add_argument("--vars", action="store_true", help="with --graph: show variables")
    inv.add_argument("--yaml", action="store_true", help="with --list or --host: YAML")
    inv.set_defaults(func=_cmd_inventory, parser=inv)

    actions = inv.add_subparsers(parser_class=Parser, metavar="ACTION")
    vagrant = actions.add_parser(
        "from-vagrant",
        help="build an inventory of Vagrant VMs from `vagrant ssh-config`",
        description="Build an inventory (group web, practice: true, become) from the output "
        "of `vagrant ssh-config`, run here unless --ssh-config names a saved copy.",
    )
    vagrant.add_argument(
        "--ssh-config", type=Path, metavar="FILE", help="saved `vagrant ssh-config` output"
    )
    vagrant.add_argument(
        "--project", type=Path, metavar="DIR", help="folder with the Vagrantfile (default: here)"
    )
    vagrant.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    vagrant.set_defaults(func=_cmd_from_vagrant)


def _cmd_inventory(args: argparse.Namespace) -> int:
    """--list, --graph or --host, each within --limit, as ansible-inventory prints them."""
    import json

    from opsfix.inventory import load_inventory

    if not (args.list or args.graph or args.host):
        args.parser.print_usage(sys.stderr)
        raise OptionsError("one of the arguments --list --graph --host is required")
    inventory = load_inventory(inventory_sources(args.inventory))
    only = _limited(inventory, args.limit)
    if args.host:
        data: Any = _host_vars(inventory, args.host)
    elif args.list:
        data = inventory.to_yaml_tree(only) if args.yaml else inventory.to_list(only)
    else:
        print(inventory.graph(args.graph, with_vars=args.vars, only=only))
        return EXIT_OK
    if args.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, default_flow_style=False, indent=2))
    else:
        print(json.dumps(data, indent=4, sort_keys=True, default=str))
    return EXIT_OK


def _limited(inventory: Any, limit: str | None) -> set[str] | None:
    """The hosts --limit keeps (None: no limit); none at all is exit 1, as for a run."""
    if not limit:
        return None
    from opsfix.inventory.targeting import target_hosts

    hosts, _ = target_hosts(inventory, "all", limit)
    return {host.name for host in hosts}


def _host_vars(inventory: Any, name: str) -> dict[str, Any]:
    import difflib

    from opsfix.errors import NoHostsError
    from opsfix.inventory.masking import shown

    if name not in inventory.hosts:
        close = difflib.get_close_matches(name, list(inventory.hosts), n=3)
        hint = f" (closest names: {', '.join(close)})" if close else ""
        raise NoHostsError(f"--host {name!r}: no such host in the inventory{hint}")
    return {key: shown(value) for key, value in inventory.hosts[name].vars.items()}


def _cmd_from_vagrant(args: argparse.Namespace) -> int:
    from opsfix.transport.vagrant_config import parse_ssh_config, vagrant_ssh_config

    if args.ssh_config:
        try:
            text, origin, warning = args.ssh_config.read_text(), str(args.ssh_config), None
        except OSError as exc:
            raise OptionsError(f"--ssh-config {args.ssh_config}: {exc.strerror}") from None
    else:
        text, warning = vagrant_ssh_config(args.project)
        origin = "vagrant ssh-config"
    machines = parse_ssh_config(text, origin)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    for m in machines:
        if m.proxy_command:
            print(f"WARNING: {m.name}: ProxyCommand is not carried over", file=sys.stderr)
    yaml_text = inventory_yaml(machines, origin)
    if args.output:
        args.output.write_text(yaml_text)
        print(f"{args.output}: {len(machines)} host(s): {', '.join(m.name for m in machines)}")
    else:
        sys.stdout.write(yaml_text)
    return EXIT_OK


def inventory_yaml(machines: list[Any], origin: str) -> str:
    """Ansible YAML: every machine in group `web`, reached as Vagrant says, practice hosts."""
    import yaml

    hosts: dict[str, dict[str, Any]] = {}
    for m in machines:
        host: dict[str, Any] = {"ansible_host": m.hostname, "ansible_port": m.port}
        host["ansible_user"] = m.user
        if m.identity_file:
            host["ansible_ssh_private_key_file"] = m.identity_file
        hosts[m.name] = host
    data = {"all": {"children": {"web": {"hosts": hosts, "vars": dict(PRACTICE_VARS)}}}}
    header = (
        f"# Generated by `opsfix inventory from-vagrant` from {origin}.\n"
        "# Practice VMs: `opsfix drill` may break them. New VMs have new host keys: the first\n"
        "# run needs --trust-new-host-keys (new keys only; a changed key is still refused).\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
