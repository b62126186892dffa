"""The command line: the only module that prints or chooses an exit code.

Exit codes follow ansible-playbook: 0 all targeted hosts healthy at the end, 2 some host
failed, 3 some host unreachable (and none failed), 4 playbook/inventory/variable error
(nothing ran), 5 bad options, 99 interrupted, 250 unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from opsfix.errors import InputError, LabError, OptionsError, PluginError

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_INPUT, EXIT_OPTIONS = 0, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_UNEXPECTED = 99, 250


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; ours is 5, like ansible-playbook."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise OptionsError(message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_OPTIONS
        return int(args.func(args))
    except (InputError, PluginError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        print("Nothing was run.", file=sys.stderr)
        return EXIT_INPUT
    except OptionsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_OPTIONS
    except LabError as exc:
        print(f"ERROR: lab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except Exception as exc:
        if os.environ.get("OPSFIX_DEBUG"):
            raise
        print(f"ERROR: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        print("(set OPSFIX_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_UNEXPECTED


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="opsfix", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(parser_class=_Parser, metavar="COMMAND")

    apply = sub.add_parser("apply", help="check, remediate, verify")
    _run_options(apply)
    apply.add_argument(
        "--check",
        dest="dry_run",
        action="store_true",
        help="dry run: show what each remediation would do, change nothing",
    )
    apply.set_defaults(func=_cmd_run, mode="apply")

    check = sub.add_parser("check", help="run the checks only; never changes a host")
    _run_options(check)
    check.set_defaults(func=_cmd_run, mode="check", dry_run=False)

    inv = sub.add_parser("inventory", help="show the resolved inventory, Ansible-style")
    _inventory_options(inv)
    group = inv.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="JSON like ansible-inventory --list")
    group.add_argument("--graph", nargs="?", const="all", metavar="GROUP", help="tree of groups")
    inv.add_argument("--vars", action="store_true", help="with --graph: show variables")
    inv.set_defaults(func=_cmd_inventory)

    lab = sub.add_parser("lab", help="the practice lab of namespace hosts (root only)")
    lab_sub = lab.add_subparsers(parser_class=_Parser, metavar="ACTION", required=True)
    up = lab_sub.add_parser("up", help="build practice hosts running sshd and nginx")
    up.add_argument("--hosts", type=int, default=3, metavar="N")
    up.set_defaults(func=_cmd_lab, action="up")
    for name, text in (("down", "remove everything the lab made"), ("status", "list hosts")):
        lab_sub.add_parser(name, help=text).set_defaults(func=_cmd_lab, action=name)
    for p in (lab, up):
        p.add_argument(
            "--dir",
            type=Path,
            help="lab state folder (default $OPSFIX_LAB_DIR or /var/lib/opsfix-lab)",
        )
    return parser


def _inventory_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        type=Path,
        metavar="PATH",
        help="inventory file or folder (repeatable; default: $OPSFIX_INVENTORY, "
        "./inventory/hosts.yml, or the practice lab's)",
    )
    p.add_argument("-l", "--limit", metavar="PATTERN", help="further limit hosts (Ansible syntax)")
    p.add_argument("-v", "--verbose", action="count", default=0)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook", type=Path)
    _inventory_options(p)
    p.add_argument("-f", "--forks", type=int, default=50, help="hosts worked on at once")
    p.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="k=v, @file.yml or a YAML mapping (highest precedence)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--plugins",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="folder with checks/ and remediations/ of your own",
    )
    p.add_argument("--ssh-config", type=Path, metavar="FILE", help="default: ~/.ssh/config")
    p.add_argument(
        "--known-hosts",
        action="append",
        default=[],
        metavar="FILE",
        help="extra known_hosts file (repeatable)",
    )
    p.add_argument(
        "--trust-new-host-keys",
        action="store_true",
        help="accept and record keys of hosts never seen before (never changed keys)",
    )
    p.add_argument(
        "-K",
        "--ask-become-pass",
        action="store_true",
        help="prompt for the sudo password (or set OPSFIX_BECOME_PASSWORD)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="connect timeout, seconds")
    p.add_argument(
        "--command-timeout",
        type=float,
        default=120.0,
        help="timeout of each remote command, seconds",
    )


# -- commands ---------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from opsfix.engine import Mode
    from opsfix.runner import RunRequest, run_playbook

    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    mode: Mode = "dry-run" if args.dry_run else args.mode
    request = RunRequest(
        playbook=args.playbook,
        inventory=_inventory_sources(args.inventory),
        limit=args.limit,
        mode=mode,
        forks=args.forks,
        extra_vars=args.extra_vars,
        plugin_dirs=args.plugins,
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=_become_password(args.ask_become_pass),
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


def _cmd_inventory(args: argparse.Namespace) -> int:
    import json

    from opsfix.inventory import load_inventory

    inventory = load_inventory(_inventory_sources(args.inventory))
    if args.list:
        print(json.dumps(inventory.to_list(), indent=4, sort_keys=True, default=str))
    else:
        print(inventory.graph(args.graph, with_vars=args.vars))
    return EXIT_OK


def _cmd_lab(args: argparse.Namespace) -> int:
    from opsfix import lab

    state_dir = args.dir
    if args.action == "up":
        if args.hosts < 1:
            raise OptionsError("--hosts must be at least 1")
        built = lab.up(args.hosts, state_dir=state_dir)
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
    worst = EXIT_OK
    for row in rows:
        ssh = "ssh up" if row.sshd_answering else "ssh DOWN"
        http = "http up" if row.nginx_answering else "http DOWN"
        print(f"{row.name}\t{row.address}\t{ssh}\t{http}")
        worst = worst if row.sshd_answering else EXIT_UNREACHABLE
    return worst


# -- helpers ----------------------------------------------------------------------------


def _inventory_sources(given: list[Path] | None) -> list[Path]:
    if given:
        return given
    env = os.environ.get("OPSFIX_INVENTORY")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    for candidate in ("inventory/hosts.yml", "inventory/hosts.yaml", "inventory/hosts.ini"):
        if Path(candidate).is_file():
            return [Path(candidate)]
    lab_dir = Path(os.environ.get("OPSFIX_LAB_DIR", "/var/lib/opsfix-lab"))
    if (lab_dir / "inventory.yml").is_file():
        return [lab_dir / "inventory.yml"]
    raise OptionsError(
        "no inventory: pass -i PATH, set OPSFIX_INVENTORY, create inventory/hosts.yml, "
        "or start the practice lab with 'opsfix lab up'"
    )


def _become_password(ask: bool) -> Any:
    from opsfix.hosts import Secret

    if ask:
        import getpass

        return Secret(getpass.getpass("BECOME password: "))
    env = os.environ.get("OPSFIX_BECOME_PASSWORD")
    return Secret(env) if env else None


def _progress(host: str, event: str) -> None:
    print(f"  {host}: {event}", file=sys.stderr, flush=True)


def _version() -> str:
    from opsfix import __version__

    return f"opsfix {__version__}"


if __name__ == "__main__":
    sys.exit(main())
