"""Borrowing the file nginx -t blames from peers' known-good snapshots (source: peer)."""

from __future__ import annotations

import base64
import io
import tarfile
from collections.abc import Sequence

from opsfix.plugin import Plan, RemediationContext, Symlink, WriteFile
from opsfix.remediations import _nginx, _nginx_peers
from opsfix.remediations.nginx_restore_config import NginxRestoreConfig
from opsfix.transport.base import CommandResult

ROOT = "/etc/nginx"
GOOD = b"server {\n\tlisten 8081;\n\troot /var/www/shop;\n}\n"
BLAMED = 'nginx: [emerg] unknown directive "rooot" in /etc/nginx/sites-enabled/shop:3\n'


def tar(entries: dict[str, bytes | str]) -> CommandResult:
    """A peer's answer: its snapshot's entries (bytes: a file, str: a symlink's target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, value in entries.items():
            info = tarfile.TarInfo(f"./{name}")
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                archive.addfile(info)
            else:
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
    return CommandResult("peer", 0, base64.b64encode(out.getvalue()).decode(), "")


def manifest(*entries: tuple[str, str, str]) -> CommandResult:
    """find's listing of the live tree, as `hostfiles.listing` sends it: (kind, link
    target, relative path) of each entry, no files' sums."""
    records = [
        f for kind, t, rel in entries for f in (kind, "777" if kind == "l" else "644", t, rel)
    ]
    body = "\0".join([*records, "sums"]).encode() + b"\0\0" + b"0"
    return CommandResult("find", 0, base64.b64encode(body).decode(), "")


LIVE = manifest(
    ("d", "", "sites-available"),
    ("f", "", "sites-available/shop"),
    ("d", "", "sites-enabled"),
    ("l", "/etc/nginx/sites-available/shop", "sites-enabled/shop"),
)
NO_OWN = CommandResult("test -d", 1, "", "")
TESTED = CommandResult("nginx -t", 1, "", BLAMED)
PEER_TREE = {"sites-enabled/shop": "/etc/nginx/sites-available/shop", "sites-available/shop": GOOD}


def restore(context: RemediationContext) -> NginxRestoreConfig:
    return NginxRestoreConfig(NginxRestoreConfig.Params(source="peer"), context)


def plan(context: RemediationContext, peers: dict[str, Sequence[CommandResult]]) -> Plan:
    return restore(context).plan_from_peers([LIVE, NO_OWN, TESTED], peers)


def test_peers_are_asked_for_the_blamed_link_and_the_file_it_points_to(
    context: RemediationContext,
) -> None:
    [command] = restore(context).peer_gather([LIVE, NO_OWN, TESTED])
    assert "./sites-enabled/shop ./sites-available/shop" in command
    assert "nginx -t -q -c /etc/nginx/nginx.conf" in command


def test_no_peer_is_asked_when_the_host_has_its_own_snapshot(context: RemediationContext) -> None:
    own = CommandResult("test -d", 0, "", "")
    assert restore(context).peer_gather([LIVE, own, TESTED]) == []
    refused = restore(context).plan_from_peers([LIVE, own, TESTED], {})
    assert refused.refuse and "its own known-good snapshot" in refused.refuse


def test_the_agreed_file_comes_from_the_first_healthy_peer(context: RemediationContext) -> None:
    peers = {
        "web2": [CommandResult("peer", 3, "", "")],  # its own config fails nginx -t
        "web3": [tar(PEER_TREE)],
        "web4": [tar(PEER_TREE)],
        "web5": [],  # no answer
    }
    result = plan(context, peers)
    assert result.refuse is None
    assert result.changes == (WriteFile(f"{ROOT}/sites-available/shop", GOOD, 0o644, ROOT),)
    assert "peer web3's known-good snapshot; web4 hold the same" in result.summary
    assert result.stage_root == ROOT and result.validate == (_nginx.staged_test("nginx"),)


def test_peers_that_disagree_are_refused(context: RemediationContext) -> None:
    other = {**PEER_TREE, "sites-available/shop": GOOD.replace(b"8081", b"8090")}
    result = plan(context, {"web2": [tar(PEER_TREE)], "web3": [tar(other)]})
    assert result.refuse and "peers disagree about /etc/nginx/sites-enabled/shop" in result.refuse
    assert "(web2 / web3)" in result.refuse and not result.changes


def test_without_a_peer_holding_the_path_it_refuses_naming_each_peer(
    context: RemediationContext,
) -> None:
    peers = {"web2": [CommandResult("peer", 2, "", "")], "web3": [tar({"conf.d/a.conf": b"x"})]}
    result = plan(context, peers)
    assert result.refuse == (
        "no healthy peer holds /etc/nginx/sites-enabled/shop in its known-good snapshot "
        "(web2: no known-good snapshot; web3: its snapshot has no sites-enabled/shop)"
    )
    alone = plan(context, {})
    assert alone.refuse and "this host has no peers in its inventory groups" in alone.refuse


def test_a_dangling_link_takes_the_peers_link_and_its_file() -> None:
    link = ("l", "/etc/nginx/sites-available/new", "sites-enabled/new")
    live = _nginx.read_manifest(manifest(("d", "", "sites-enabled"), link), ROOT)
    fault = _nginx.Fault(
        "open() failed", "/etc/nginx/nginx.conf", 60, "/etc/nginx/sites-enabled/new"
    )
    assert _nginx_peers.wanted_paths(ROOT, fault, live) == [
        "sites-enabled/new",
        "sites-available/new",
    ]
    peer = {"sites-enabled/new": "/etc/nginx/sites-available/new", "sites-available/new": GOOD}
    borrowed = _nginx_peers.borrow(
        ROOT, ["sites-enabled/new", "sites-available/new"], {"p": [tar(peer)]}
    )
    changes = _nginx.tree_changes(ROOT, borrowed.want, live)
    assert WriteFile(f"{ROOT}/sites-available/new", GOOD, 0o644, ROOT) in changes
    assert not any(isinstance(c, Symlink) for c in changes)  # the link is right already


def test_a_fault_outside_the_root_asks_no_peer(context: RemediationContext) -> None:
    outside = CommandResult(
        "nginx -t",
        1,
        "",
        'nginx: [emerg] open() "/var/log/nginx/error.log" failed (2: No such file or directory)\n',
    )
    assert restore(context).peer_gather([LIVE, NO_OWN, outside]) == []
    result = restore(context).plan_from_peers([LIVE, NO_OWN, outside], {})
    assert result.refuse and "not a file under /etc/nginx" in result.refuse
