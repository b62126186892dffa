"""What several commands share: the parser class, common options, inventory discovery."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from opsfix.errors import OptionsError

EXIT_OK, EXIT_NO_HOSTS, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_INPUT, EXIT_OPTIONS = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_UNEXPECTED = 99, 250


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; ours is 5, like ansible-playbook."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise OptionsError(message)


def inventory_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        type=Path,
        metavar="PATH",
        help="inventory file, folder or 'host1,host2,' (repeatable; default: "
        "$OPSFIX_INVENTORY, $ANSIBLE_INVENTORY, ./inventory/hosts.yml, or the practice lab's)",
    )
    p.add_argument("-l", "--limit", metavar="PATTERN", help="further limit hosts (Ansible syntax)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument(
        "--vault-password-file",
        "--vault-pass-file",
        action="append",
        default=[],
        metavar="FILE",
        help="Ansible Vault password file, run if executable "
        "(default $ANSIBLE_VAULT_PASSWORD_FILE)",
    )
    p.add_argument(
        "--vault-id",
        action="append",
        default=[],
        metavar="[LABEL@]SOURCE",
        help="a vault ID's password: a file, or 'prompt' (repeatable)",
    )
    p.add_argument(
        "-J", "--ask-vault-pass", action="store_true", help="prompt for the vault password"
    )


def apply_ansible_cfg(args: argparse.Namespace) -> None:
    """ansible.cfg's settings where the command line and environment set none (-v says)."""
    from opsfix import ansible_cfg
    from opsfix.transport.settings import configure_host_defaults

    cfg = ansible_cfg.load()
    named = os.environ.get("OPSFIX_INVENTORY") or os.environ.get("ANSIBLE_INVENTORY")
    if hasattr(args, "inventory") and not args.inventory and not named and cfg.inventory():
        args.inventory = cfg.inventory()
    if hasattr(args, "forks") and args.forks is None:
        args.forks = int(cfg.number("forks") or 50)
    if hasattr(args, "timeout") and args.timeout is None:
        args.timeout = cfg.number("timeout") or 10.0
    if hasattr(args, "ask_become_pass") and cfg.flag("become_ask_pass"):
        args.ask_become_pass = True
    configure_host_defaults(cfg.host_defaults())
    if getattr(args, "verbose", 0) and cfg.path:
        for line in cfg.described():
            print(f"ansible.cfg: {line}", file=sys.stderr)


def configure_vault(args: argparse.Namespace) -> None:
    """The vault passwords the options and environment give, read once, before loading."""
    from opsfix.playbook import vault

    vault.configure(
        vault.passwords_from_options(args.vault_password_file, args.vault_id, args.ask_vault_pass)
    )


def ssh_options(p: argparse.ArgumentParser, *, trust_new: bool = True) -> None:
    """How hosts are reached and known, the same for every command that connects."""
    p.add_argument("--ssh-config", type=Path, metavar="FILE", help="default: ~/.ssh/config")
    p.add_argument(
        "--known-hosts",
        action="append",
        default=[],
        metavar="FILE",
        help="extra known_hosts file (repeatable)",
    )
    if trust_new:
        p.add_argument(
            "--trust-new-host-keys",
            action="store_true",
            help="accept and record keys of hosts never seen before (never changed keys)",
        )


def extra_vars_option(
    p: argparse.ArgumentParser, help: str = "k=v, @file.yml or a YAML mapping (highest precedence)"
) -> None:
    """`-e`, repeatable, as Ansible takes it (opsfix.playbook.variables.parse_extra_vars)."""
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS", help=help)


def run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook", type=Path)
    inventory_options(p)
    p.add_argument(
        "-f", "--forks", type=int, help="hosts worked on at once (default: ansible.cfg's, else 50)"
    )
    extra_vars_option(p)
    p.add_argument(
        "--format",
        choices=("text", "json", "jsonl"),
        default="text",
        help="jsonl: one JSON event per line as the run goes (docs/observability.md)",
    )
    p.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append what -vvv shows, with timestamps, to PATH (default $OPSFIX_LOG)",
    )
    p.add_argument(
        "--plugins",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="folder with checks/ and remediations/ of your own",
    )
    ssh_options(p)
    p.add_argument(
        "-K",
        "--ask-become-pass",
        action="store_true",
        help="prompt for the sudo password (or set OPSFIX_BECOME_PASSWORD)",
    )
    p.add_argument(
        "--timeout", type=float, help="connect timeout, seconds (default: ansible.cfg's, else 10)"
    )
    p.add_argument(
        "--command-timeout",
        type=float,
        default=120.0,
        help="timeout of each remote command, seconds",
    )
    p.add_argument(
        "--output-limit",
        metavar="SIZE",
        help="bytes kept of each remote command's stdout and of its stderr; past it output "
        "is dropped and the check could not tell (default $OPSFIX_OUTPUT_LIMIT, else 4M)",
    )
    p.add_argument(
        "--persist",
        type=float,
        metavar="SECONDS",
        help="keep SSH connections open this long after the run, for the next one "
        "(default $OPSFIX_PERSIST, else 60; 0: off)",
    )
    p.add_argument(
        "--persist-max-age",
        type=float,
        metavar="SECONDS",
        help="a kept connection older than this logs in anew, checking the host key "
        "(default $OPSFIX_PERSIST_MAX_AGE, else 600)",
    )


def inventory_sources(given: list[Path] | None) -> list[Path]:
    if given:
        return given
    env = os.environ.get("OPSFIX_INVENTORY")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    ansible = os.environ.get("ANSIBLE_INVENTORY")
    if ansible:  # Ansible's: sources separated by commas
        return [Path(p.strip()) for p in ansible.split(",") if p.strip()]
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


def become_password(ask: bool) -> Any:
    from opsfix.secret import Secret

    if ask:
        import getpass

        return Secret(getpass.getpass("BECOME password: "))
    env = os.environ.get("OPSFIX_BECOME_PASSWORD")
    return Secret(env) if env else None
