"""`opsfix windows`: the next maintenance windows of each group of hosts, and their freezes."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK, inventory_options, inventory_sources
from opsfix.errors import OptionsError

MAX_LISTED_HOSTS = 8


def register(sub: Any) -> None:
    p = sub.add_parser("windows", help="list the next maintenance windows per host group")
    p.add_argument("playbook", type=Path, nargs="?", help="default: inventory variables only")
    inventory_options(p)
    p.add_argument("--count", type=int, default=5, metavar="N", help="openings per group")
    p.add_argument(
        "--from",
        dest="since",
        metavar="TIME",
        help="list from this time (ISO 8601; UTC unless it has an offset), not from now",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_windows)


def _cmd_windows(args: argparse.Namespace) -> int:
    from opsfix.inventory import load_inventory
    from opsfix.windows.targets import (
        describe_hosts,
        group_by_policy,
        read_playbook,
        select_hosts,
    )

    if args.count < 1:
        raise OptionsError("--count must be at least 1")
    since = parse_time(args.since) if args.since else datetime.now(UTC)
    playbook = read_playbook(args.playbook)
    inventory = load_inventory(inventory_sources(args.inventory))
    hosts, warnings = select_hosts(inventory, playbook, args.limit)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    groups = [
        (group, describe_hosts(group.hosts, inventory))
        for group in group_by_policy(playbook, hosts)
    ]
    if args.format == "json":
        data = [_group_json(g, labels, since, args.count) for g, labels in groups]
        print(json.dumps(data, indent=2))
    else:
        print(f"Maintenance windows from {since:%Y-%m-%d %H:%M} UTC")
        for group, labels in groups:
            print()
            print("\n".join(_group_text(group, labels, since, args.count)))
        if not groups:
            print("no hosts targeted")
    return EXIT_OK


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise OptionsError(f"--from {text!r}: expected ISO 8601, e.g. 2025-01-07T02:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _group_text(group: Any, labels: list[str], since: datetime, count: int) -> list[str]:
    shown = ", ".join(group.hosts[:MAX_LISTED_HOSTS])
    more = ", …" if len(group.hosts) > MAX_LISTED_HOSTS else ""
    size = f"{len(group.hosts)} host" + ("s" if len(group.hosts) != 1 else "")
    lines = [f"{', '.join(labels)} ({size}: {shown}{more})"]
    policy = group.policy
    if policy is None:
        return [*lines, "  no windows and no freezes: disruptive steps may run at any time"]
    lines += [f"  window {_name(w)}{w.describe()}" for w in policy.windows]
    lines += [f"  freeze {f.describe()}: {f.reason}" for f in policy.freezes]
    if not policy.windows:
        return [*lines, "  no windows: disruptive steps may run at any time outside a freeze"]
    named = len(policy.windows) > 1
    for opening in policy.upcoming(since, count):
        lines.append("  " + _opening_text(opening, named))
    return lines


def _name(window: Any) -> str:
    return f"{window.name!r}: " if window.name else ""


def _opening_text(opening: Any, named: bool) -> str:
    text = _span(opening.local_start, opening.local_end)
    if opening.window.zone.key != "UTC":
        utc_span = _span(opening.start.astimezone(UTC), opening.end.astimezone(UTC))
        same_day = opening.start.astimezone(UTC).date() == opening.local_start.date()
        text += f"  ({utc_span[15:] if same_day else utc_span})"
    if named:
        text += f"  [{opening.window.label}]"
    if opening.freezes:
        reasons = "; ".join(f.reason for f in opening.freezes)
        free = opening.free_spans()
        if not free:
            text += f"  FROZEN: {reasons}"
        else:
            parts = ", ".join(_span(a.astimezone(opening.window.zone), b) for a, b in free)
            text += f"  partly frozen ({reasons}); open {parts}"
    return text


def _span(start: datetime, end: datetime) -> str:
    end = end.astimezone(start.tzinfo)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %Y-%m-%d %H:%M}"
    return f"{start:%a %Y-%m-%d %H:%M} → {until} {end:%Z}"


def _group_json(group: Any, labels: list[str], since: datetime, count: int) -> dict[str, Any]:
    from opsfix.playbook.durations import format_duration

    policy = group.policy
    data: dict[str, Any] = {"labels": labels, "hosts": list(group.hosts), "gated": bool(policy)}
    if policy is None:
        return data
    data["windows"] = [
        {
            "name": w.name,
            "cron": w.cron,
            "duration": format_duration(w.duration),
            "timezone": w.timezone,
        }
        for w in policy.windows
    ]
    data["freezes"] = [
        {
            "start": f.start.isoformat(),
            "end": f.end.isoformat(),
            "reason": f.reason,
            "timezone": f.timezone,
        }
        for f in policy.freezes
    ]
    data["openings"] = [
        {
            "window": o.window.label,
            "start": o.local_start.isoformat(),
            "end": o.local_end.isoformat(),
            "start_utc": o.start.isoformat(),
            "end_utc": o.end.isoformat(),
            "frozen": o.is_frozen,
            "freezes": [f.reason for f in o.freezes],
        }
        for o in policy.upcoming(since, count)
    ]
    return data
