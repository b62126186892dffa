"""`opsfix new check|remediation NAME`: a plugin skeleton and its passing test, and
`opsfix plugins`: every check, remediation and transport a run would find, and where each
comes from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK
from opsfix.errors import OptionsError


def register(sub: Any) -> None:
    p = sub.add_parser("new", help="write a new check or remediation and its test")
    p.add_argument("kind", choices=("check", "remediation"))
    p.add_argument("name", help="snake_case, e.g. file_mode")
    p.add_argument(
        "-C",
        "--dir",
        type=Path,
        default=Path("."),
        help="where checks/ (or remediations/) and tests/ go: the playbook's folder "
        "or your plugin package (default: here)",
    )
    p.set_defaults(func=_cmd_new)
    p = sub.add_parser(
        "plugins", help="the checks, remediations and transports a run finds, and their origin"
    )
    p.add_argument(
        "--plugins",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="folder with checks/ and remediations/ of your own",
    )
    p.set_defaults(func=_cmd_plugins)


def _cmd_new(args: argparse.Namespace) -> int:
    from opsfix import scaffold
    from opsfix.registry import load_registry

    scaffold.check_name(args.name)
    table = load_registry().table(f"{args.kind}s")
    if args.name in table:
        origin = load_registry().origins[f"{args.kind}s:{args.name}"]
        raise OptionsError(
            f"{args.kind} {args.name!r} already exists ({origin}); choose another name "
            "(replacing it takes `overrides = True`, see docs/plugins.md)"
        )
    for path in scaffold.write(args.kind, args.name, args.dir):
        print(f"wrote {path}")
    print(f"next: edit them, then run: python -m pytest {args.dir / 'tests'}")
    return EXIT_OK


def _cmd_plugins(args: argparse.Namespace) -> int:
    from opsfix.registry import load_registry

    registry = load_registry(args.plugins)
    for kind in ("checks", "remediations"):
        print(f"{kind}:")
        for name in sorted(registry.table(kind)):
            print(f"  {name:24} {registry.origins[f'{kind}:{name}']}")
    from opsfix.transport.registry import transports

    print("transports (ansible_connection):")
    for name, transport in transports().items():
        also = f" (as {transport.name})" if name != transport.name else ""
        print(f"  {name:24} {transport.origin}{also}")
    return EXIT_OK
