"""The command line. This module and opsfix/commands are the only code that prints or
chooses an exit code.

Exit codes follow ansible-playbook: 0 all targeted hosts healthy at the end, 2 some host
failed, 3 some host unreachable (and none failed), 4 playbook/inventory/variable error
(nothing ran), 5 bad options, 99 interrupted, 250 unexpected error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from opsfix import startup_gc
from opsfix.commands.common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NO_HOSTS,
    EXIT_OPTIONS,
    EXIT_UNEXPECTED,
    Parser,
    apply_ansible_cfg,
    configure_vault,
)
from opsfix.errors import InputError, LabError, NoHostsError, OptionsError, PluginError
from opsfix.escape import printable

# One module per command under opsfix/commands, each registering its own parser(s).
COMMANDS = {
    "apply": "run",
    "check": "run",
    "inventory": "inventory",
    "lab": "lab",
    "windows": "windows",
    "schedule": "schedule",
    "drill": "drill",
    "history": "history",
    "show": "show",
    "report": "report",
    "connections": "connections",
    "serve": "serve",
    "new": "new",
    "plugins": "new",
    "playbooks": "playbooks",
    "exec": "exec",
    "worker": "worker",
}


DESCRIPTION = "Find what is broken on a fleet of Linux hosts and repair it safely, over SSH."


def entry() -> NoReturn:
    """The console script. Once `main` is done and its output flushed, the process leaves
    without the interpreter's teardown: freeing every module, thread state and object of
    a run that loaded paramiko, pydantic and pytest costs ~0.2 s of wall and ~0.3 s of CPU,
    for nothing (connections are closed and the state database committed by then)."""
    startup_gc.starting()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a closed stream
            stream.flush()
    atexit._run_exitfuncs()  # what other code registered still runs
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _build_parser(argv)
    try:
        args = parser.parse_args(argv)
        if hasattr(args, "vault_id"):
            configure_vault(args)
            apply_ansible_cfg(args)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_OPTIONS
        return int(args.func(args))
    except (InputError, PluginError) as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        print("Nothing was run.", file=sys.stderr)
        return EXIT_INPUT
    except OptionsError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        return EXIT_OPTIONS
    except NoHostsError as exc:
        print(f"ERROR: {printable(str(exc))}", file=sys.stderr)
        print("Nothing was run.", file=sys.stderr)
        return EXIT_NO_HOSTS
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


def _build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only its command's when it names one (building all of them
    costs more than a fast command's own work); every command's for help and mistakes."""
    parser = Parser(prog="opsfix", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(parser_class=Parser, metavar="COMMAND")
    named = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[named]] if named in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    if named is None and list(argv or ()) == ["--version"]:
        modules = []  # it prints and exits before any command is looked at
    for module in modules:
        importlib.import_module(f"opsfix.commands.{module}").register(sub)
    return parser


def _version() -> str:
    from opsfix import __version__

    return f"opsfix {__version__}"


if __name__ == "__main__":
    sys.exit(main())
