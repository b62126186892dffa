"""`opsfix serve --rules alerts.yml`: Alertmanager's webhook starts runs (docs/alerts.md)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK, become_password, inventory_sources, ssh_options
from opsfix.errors import OptionsError

MISSING = (
    "opsfix serve needs starlette and uvicorn: pip install 'opsfix[serve]' "
    "(scripts/setup.sh installs them)"
)


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run playbooks when Alertmanager's alerts fire")
    p.add_argument("--rules", type=Path, metavar="FILE", help="the rules file (alerts.yml)")
    p.add_argument(
        "--listen", default="127.0.0.1:9095", metavar="HOST:PORT", help="default %(default)s"
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--token-file", type=Path, metavar="FILE", help="bearer token (one line)")
    auth.add_argument(
        "--basic-auth-file", type=Path, metavar="FILE", help="basic auth: 'user:password'"
    )
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS (with --tls-key)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's key")
    p.add_argument(
        "--max-body", type=int, default=1 << 20, metavar="BYTES", help="default %(default)s"
    )
    p.add_argument(
        "--rate-limit", type=float, default=10.0, metavar="N", help="requests/s per client"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="on SIGTERM, how long the run under way may take to finish",
    )
    p.add_argument(
        "-i",
        "--inventory",
        action="append",
        type=Path,
        metavar="PATH",
        help="when the rules name none (default as for apply)",
    )
    p.add_argument(
        "--plugins",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="folder with checks/ and remediations/ of your own",
    )
    ssh_options(p, trust_new=False)  # a service never trusts a key it has not seen
    p.add_argument("--timeout", type=float, default=10.0, help="connect timeout, seconds")
    p.add_argument(
        "--command-timeout", type=float, default=120.0, help="per remote command, seconds"
    )
    p.add_argument("--check-config", action="store_true", help="validate, print, do not serve")
    p.add_argument("--print-unit", action="store_true", help="print the systemd unit and exit")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    if args.print_unit:
        print(resources.files("opsfix.serve").joinpath("opsfix-serve.service").read_text())
        return EXIT_OK
    if args.rules is None:
        raise OptionsError("--rules FILE is required")
    try:
        from opsfix.serve.rules import load_rules

        rules = load_rules(args.rules, args.plugins)
        import uvicorn  # noqa: F401

        from opsfix.serve import app as _app  # noqa: F401 - starlette present?
    except ModuleNotFoundError as exc:
        if exc.name in ("starlette", "uvicorn", "anyio"):
            raise OptionsError(MISSING) from None
        raise
    settings = _settings(args, rules)
    if args.check_config:
        _show(rules, settings)
        return EXIT_OK
    guards = _guards(args)
    from opsfix.serve.server import Listen, assemble, serve

    listen = Listen.parse(args.listen, args.tls_cert, args.tls_key)
    serve(assemble(rules, settings, guards), listen)
    return EXIT_OK


def _show(rules: Any, settings: Any) -> None:
    """Each rule, and the inventory hosts its alerts may name (the inventory must load)."""
    from opsfix.inventory import load_inventory

    inventory = load_inventory(list(settings.inventory))
    print(f"inventory: {', '.join(str(p) for p in settings.inventory)}")
    for rule in rules.rules:
        hosts = inventory.select(rule.hosts)
        if rule.limit:
            hosts = inventory.select(rule.limit, within=hosts)
        names = ", ".join(h.name for h in hosts[:8]) + (", ..." if len(hosts) > 8 else "")
        print(
            f"rule {rule.name}: {rule.mode} {rule.playbook}; label {rule.host_label!r} may "
            f"name {len(hosts)} host(s): {names or 'none'}"
        )


def _settings(args: argparse.Namespace, rules: Any) -> Any:
    from opsfix.serve.execute import RunSettings

    inventory = list(rules.inventory) or inventory_sources(args.inventory)
    return RunSettings(
        inventory=tuple(inventory),
        plugin_dirs=tuple(args.plugins),
        ssh_config=args.ssh_config,
        known_hosts=tuple(args.known_hosts),
        become_password=become_password(False),
        connect_timeout=args.timeout,
        command_timeout=args.command_timeout,
        rules_file=str(args.rules.resolve()),
    )


def _guards(args: argparse.Namespace) -> Any:
    from opsfix.serve.app import Guards
    from opsfix.serve.guard import Credentials, RateLimiter

    if args.token_file:
        credentials = Credentials.bearer_file(args.token_file)
    elif args.basic_auth_file:
        credentials = Credentials.basic_file(args.basic_auth_file)
    else:
        raise OptionsError(
            "opsfix serve needs --token-file or --basic-auth-file (no run without authentication)"
        )
    if args.max_body < 1024:
        raise OptionsError("--max-body must be at least 1024 bytes")
    if args.rate_limit <= 0:
        raise OptionsError("--rate-limit must be above 0")
    limiter = RateLimiter(args.rate_limit, max(1, int(args.rate_limit * 2)))
    return Guards(credentials, args.max_body, limiter, args.drain)
