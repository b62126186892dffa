"""Finishing what a dead run left behind: transactions whose journal never reached an end.

A run killed mid-transaction (SIGKILL, power loss, a cut network) leaves its journal under
the host's state folder in a state such as `swapping` or `acting`. The next `apply` finds
it in the same round trip as its first checks, takes the host lock, and puts the backed-up
files back (then runs the plan's rollback commands) before doing anything else. A journal
still at `prepared` changed nothing live and is only closed.
"""

from __future__ import annotations

import base64
import json
import posixpath
from dataclasses import dataclass

from opsfix.engine.session import Runner
from opsfix.engine.transaction import Transaction
from opsfix.plugin import Plan, Remove
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

FINAL_STATES = (
    "committed",
    "committed-partial",
    "rolled-back",
    "refused",
    "recovered",
    "abandoned",
)
NOTHING_LIVE_CHANGED = ("prepared",)


@dataclass(frozen=True)
class Unfinished:
    txid: str
    state: str
    paths: tuple[str, ...]
    rollback: tuple[str, ...]
    roots: tuple[str, ...] = ()  # each path's root; journals of older versions have none

    @property
    def touched_live(self) -> bool:
        return self.state not in NOTHING_LIVE_CHANGED


def scan_command(state_dir: str) -> str:
    """Lists unfinished transactions, one line each: txid, state, base64 journal."""
    finals = "|".join(FINAL_STATES)
    return (
        f'for d in {quote(state_dir)}/*/; do [ -f "$d/state" ] || continue; '
        's=; read -r s < "$d/state"; '
        f'case "$s" in {finals}) continue ;; esac; '
        'printf "%s %s %s\\n" "$(basename "$d")" "$s" '
        '"$(base64 < "$d/journal.json" 2>/dev/null | tr -d "\\n")"; done; true'
    )


def parse_scan(result: CommandResult) -> list[Unfinished]:
    found = []
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) != 3:
            continue
        txid, state, encoded = parts
        try:
            journal = json.loads(base64.b64decode(encoded)) if encoded else {}
        except ValueError:
            journal = {}
        found.append(
            Unfinished(
                txid=txid,
                state=state,
                paths=tuple(journal.get("paths", ())),
                rollback=tuple(journal.get("rollback", ())),
                roots=tuple(journal.get("roots", ())),
            )
        )
    return found


def _rooted(item: Unfinished) -> list[tuple[str, str]]:
    """Each path with its root; a journal without roots confines each path to its folder."""
    if len(item.roots) == len(item.paths):
        return list(zip(item.paths, item.roots, strict=True))
    return [(p, posixpath.dirname(p)) for p in item.paths]


def recover(conn: Runner, item: Unfinished, *, state_dir: str, backup_dir: str) -> tuple[bool, str]:
    """Restore one unfinished transaction; returns whether it worked and a report line."""
    plan = Plan(
        f"recover {item.txid}",
        changes=tuple(Remove(p, root) for p, root in _rooted(item)),
        rollback=item.rollback,
    )
    tx = Transaction(conn, plan, item.txid, state_dir=state_dir, backup_dir=backup_dir)
    if not item.touched_live:
        tx.finish("abandoned")
        return True, f"closed unfinished transaction {item.txid} (it had changed nothing live)"
    restored = tx.restore()
    if not restored.ok:
        tx.finish("restore-failed")
        return False, (
            f"could NOT restore unfinished transaction {item.txid} ({item.state}): "
            f"{restored.failed_phase}; backups are in {tx.backup}"
        )
    tx.finish("recovered")
    return True, (
        f"restored {len(item.paths)} path(s) of unfinished transaction {item.txid} "
        f"(a previous run stopped while {item.state}); backups kept in {tx.backup}"
    )
