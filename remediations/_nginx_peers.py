"""Borrowing a file from a healthy peer's known-good snapshot (see nginx_restore_config).

A host that never had a snapshot of its own may take the file `nginx -t` blames from the
peers of its inventory groups, fleets being built alike. A peer counts only when its own
config passes `nginx -t` and its snapshot holds that path; when the peers that hold it
disagree about its content, nobody can say which copy is right, and nothing is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opsfix.plugin import Change
from opsfix.transport.base import CommandResult

from . import _nginx
from ._nginx import Fault, Tree

_WHY = {3: "its own config fails nginx -t", 2: "no known-good snapshot"}


@dataclass(frozen=True)
class Borrowed:
    """The entries to restore, the peer they come from, and the peers that agree."""

    want: Tree
    peer: str
    agreeing: tuple[str, ...]


def restore(
    root: str, fault: Fault | None, live: Tree, peers: Mapping[str, Sequence[CommandResult]]
) -> tuple[str, list[Change]]:
    """Where the blamed file comes from and the changes that bring it; ValueError: why not."""
    rels = wanted_paths(root, fault, live)
    if not rels:
        blamed = fault.where if fault else "nothing"
        raise ValueError(f"nginx -t blames {blamed}, not a file under {root}")
    borrowed = borrow(root, rels, peers)
    changes = _nginx.tree_changes(root, borrowed.want, live)
    if not changes:
        raise ValueError(f"{root}/{rels[0]} is already what the peers hold: the fault is elsewhere")
    return describe(borrowed), changes


def wanted_paths(root: str, fault: Fault | None, live: Tree) -> list[str]:
    """The path nginx -t blames (what it could not open, else the file at fault), relative
    to root, and where it points when it is a symlink below root. [] when none is below."""
    if fault is None:
        return []
    blamed = _nginx.relative_to(root, fault.cannot_open) if fault.cannot_open else None
    blamed = blamed or _nginx.relative_to(root, fault.file)
    if blamed is None:
        return []
    target = _nginx.link_target(root, blamed, live)
    return [blamed, target] if target and target != blamed else [blamed]


def borrow(root: str, rels: list[str], peers: Mapping[str, Sequence[CommandResult]]) -> Borrowed:
    """The peers' agreed copy of `rels`; ValueError says why there is none."""
    holders: dict[str, Tree] = {}
    skipped: list[str] = []
    for name, results in peers.items():
        why, entries = _answer(results)
        if why is None and rels[0] not in entries:
            why = f"its snapshot has no {rels[0]}"
        if why is not None:
            skipped.append(f"{name}: {why}")
            continue
        holders[name] = {rel: entries[rel] for rel in rels if rel in entries}
    path = f"{root}/{rels[0]}"
    if not holders:
        asked = "; ".join(skipped) or "this host has no peers in its inventory groups"
        raise ValueError(f"no healthy peer holds {path} in its known-good snapshot ({asked})")
    versions: dict[tuple[tuple[str, str, str, str], ...], list[str]] = {}
    for name, tree in holders.items():
        versions.setdefault(_fingerprint(tree), []).append(name)
    if len(versions) > 1:
        sides = " / ".join(", ".join(names) for names in versions.values())
        raise ValueError(f"peers disagree about {path} ({sides}): restore it by hand")
    first, *others = holders
    return Borrowed(holders[first], first, tuple(others))


def _answer(results: Sequence[CommandResult]) -> tuple[str | None, Tree]:
    if not results:
        return "no answer", {}
    result = results[0]
    if result.exit_status in _WHY:
        return _WHY[result.exit_status], {}
    if not result.ok:
        return f"could not read its snapshot ({result.exit_status})", {}
    try:
        return None, _nginx.parse_snapshot(result.stdout)
    except ValueError as exc:
        return str(exc), {}


def _fingerprint(tree: Tree) -> tuple[tuple[str, str, str, str], ...]:
    """What must be equal for two peers to agree: kinds, contents and link targets."""
    return tuple(sorted((rel, e.kind, e.sha256, e.target) for rel, e in tree.items()))


def describe(borrowed: Borrowed) -> str:
    agree = f"; {', '.join(borrowed.agreeing)} hold the same" if borrowed.agreeing else ""
    return f"peer {borrowed.peer}'s known-good snapshot{agree}"
