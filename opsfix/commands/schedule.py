"""`opsfix schedule`: run a playbook at the start of each of its maintenance windows, or
at times of its own (`--at CRON`); `--check` schedules a check-only run.

Prints (or with --install writes and enables) a systemd timer and oneshot service, or,
where systemd does not run, a file in /etc/cron.d (output to a log file, MAILTO told of
runs that did not end well). Arguments after `--` go to `opsfix apply` (or `check`) as
they are.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsfix.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    inventory_options,
    inventory_sources,
)
from opsfix.errors import InputError, Location, OptionsError, PlaybookError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "schedule",
        help="print or install a systemd timer (or cron line) that applies the playbook "
        "at each maintenance window's start",
    )
    p.add_argument("playbook", type=Path)
    inventory_options(p)
    p.add_argument("--name", help="unit/file name suffix (default: the playbook's name)")
    p.add_argument("--install", action="store_true", help="write the files and enable them")
    p.add_argument("--user", action="store_true", help="a systemd user timer (systemctl --user)")
    p.add_argument(
        "--kind",
        choices=("auto", "systemd", "cron"),
        default="auto",
        help="systemd timer or cron.d file (default: systemd where it runs)",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="write under DIR instead of / (files only: nothing is enabled)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="schedule `opsfix check` (never changes a host) instead of `opsfix apply`",
    )
    p.add_argument(
        "--at",
        metavar="CRON",
        help="run at these times (5 cron fields) instead of each maintenance window's start",
    )
    p.add_argument("--timezone", default="UTC", help="the time zone of --at (default UTC)")
    p.add_argument(
        "--mailto",
        default="root",
        help="cron: who is mailed when a run does not end well (default root; '' for no one)",
    )
    p.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="cron: the file runs append their output to (default /var/log/opsfix/NAME.log)",
    )
    p.set_defaults(func=_cmd_schedule, apply_args=[])
    p.__class__ = _ScheduleParser
    p.epilog = "Arguments after -- go to opsfix apply, e.g. -- --defer-ok -f 10"


class _ScheduleParser(Parser):
    """Keeps everything after `--` for `opsfix apply`, away from argparse's own `--`."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        rest: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, rest = words[:cut], words[cut + 1 :]
        parsed, unknown = super().parse_known_args(words, namespace)
        parsed.apply_args = rest
        return parsed, unknown


def _cmd_schedule(args: argparse.Namespace) -> int:
    from opsfix.windows import units
    from opsfix.windows.conversion import ConversionError

    schedule, kind = _schedule(args)
    try:
        if kind == "systemd":
            _warn_dst(schedule)
            files = units.systemd_files(schedule, home=_home(args))
        else:
            files = units.cron_file(schedule, units.machine_zone(args.root))
    except ConversionError as exc:
        where = exc.window.origin if exc.window else None
        raise InputError(exc.message, where) from None
    if not args.install:
        for path, text in files.items():
            print(f"# {path}\n{text}")
        return EXIT_OK
    for written in units.install(files, args.root):
        print(f"wrote {written}")
    return _enable(schedule, kind, args.root)


def _schedule(args: argparse.Namespace) -> tuple[Any, str]:
    from opsfix.inventory import load_inventory
    from opsfix.windows import units
    from opsfix.windows.targets import group_by_policy, read_playbook, select_hosts

    if not re.fullmatch(r"[A-Za-z0-9@._,+-]*", args.mailto):
        raise OptionsError(f"--mailto {args.mailto!r}: give addresses or users, comma-separated")
    playbook = read_playbook(args.playbook)
    sources = inventory_sources(args.inventory)
    hosts, warnings = select_hosts(load_inventory(sources), playbook, args.limit)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    windows: dict[tuple[str, str], Any] = {}
    if args.at:
        at = _at(args.at, args.timezone)
        windows[(at.cron, at.timezone)] = at
    for group in group_by_policy(playbook, hosts) if not args.at else ():
        for window in group.policy.windows if group.policy else ():
            windows.setdefault((window.cron, window.timezone), window)
    if not windows:
        raise PlaybookError(
            "no maintenance window is declared for the targeted hosts (playbook 'windows:' "
            "or inventory variable 'opsfix_windows'): nothing to schedule; give the times "
            "with --at CRON (e.g. --check --at '0 8 * * *' for a morning check)",
            Location(str(args.playbook)),
        )
    schedule = units.Schedule(
        name=units.unit_name(args.name or playbook.name),
        playbook=playbook.name,
        windows=tuple(windows.values()),
        command=tuple(_apply_command(args, sources)),
        workdir=Path.cwd(),
        user=args.user,
        mode="check" if args.check else "apply",
        log=args.log.resolve() if args.log else None,
        mailto=args.mailto,
    )
    kind = args.kind
    if kind == "auto":
        kind = "systemd" if units.systemd_running(args.root) else "cron"
    return schedule, kind


def _apply_command(args: argparse.Namespace, sources: list[Path]) -> list[str]:
    script = Path(sys.executable).with_name("opsfix")
    opsfix = [str(script)] if script.is_file() else [sys.executable, "-m", "opsfix.cli"]
    command = [*opsfix, "check" if args.check else "apply", str(args.playbook.resolve())]
    for source in sources:
        command += ["-i", str(source.resolve())]
    if args.limit:
        command += ["-l", args.limit]
    return command + list(args.apply_args)


def _at(cron: str, timezone: str) -> Any:
    """--at as a window of the shortest length: only its start matters to a schedule."""
    from datetime import timedelta

    from opsfix.windows.model import Window, WindowValueError

    try:
        return Window(cron, timedelta(minutes=1), timezone, name="--at")
    except (WindowValueError, ValueError) as exc:
        raise OptionsError(f"--at {cron!r} --timezone {timezone!r}: {exc}") from None


def _warn_dst(schedule: Any) -> None:
    from opsfix.windows.conversion import dst_skipped_starts

    for window in schedule.windows:
        for start in dst_skipped_starts(window, datetime.now(UTC)):
            print(
                f"WARNING: window {window.label!r} starts at {start:%H:%M} {window.timezone} "
                f"on {start:%Y-%m-%d}, an hour the clocks skip: the window still opens (when "
                "they jump), but systemd skips that time and the timer will not fire that day",
                file=sys.stderr,
            )


def _home(args: argparse.Namespace) -> Path | None:
    return None if not args.user else Path.home()


def _enable(schedule: Any, kind: str, root: Path) -> int:
    from opsfix.windows import units

    if kind == "cron":
        print("cron reads /etc/cron.d by itself: nothing to enable")
        return EXIT_OK
    commands = " && ".join(" ".join(argv) for argv in units.enable_commands(schedule))
    if root != Path("/") or not units.systemd_running(root):
        why = "--root was given" if root != Path("/") else "systemd is not running here"
        print(f"not enabled ({why}); to enable: {commands}")
        return EXIT_OK
    for result in units.enable(schedule):
        if result.returncode != 0:
            print(f"ERROR: {' '.join(result.args)}: {result.stderr.strip()}", file=sys.stderr)
            return EXIT_FAILED
    print(f"enabled and started {schedule.name}.timer")
    return EXIT_OK
