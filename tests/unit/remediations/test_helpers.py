"""The shared pieces: tree manifests, snapshots, and what counts as "running"."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from opsfix.plugin import Remove, Symlink, WriteFile
from opsfix.remediations import _nginx, _service
from opsfix.remediations._nginx import Entry

from .conftest import Run


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub dir").mkdir(parents=True)
    (root / "plain.conf").write_text("a\n")
    (root / "sub dir/odd name\nwith newline").write_text("b\n")
    os.link(root / "plain.conf", root / "hard.conf")
    (root / "link").symlink_to("/etc/nginx/plain.conf")
    (root / "secret").write_text("c\n")
    (root / "secret").chmod(0o600)
    return root


def test_the_manifest_survives_odd_names(tree: Path, sh: Run) -> None:
    entries = _nginx.read_manifest(sh(_nginx.manifest_command(str(tree))), str(tree))
    assert entries["sub dir"].kind == "d"
    odd = entries["sub dir/odd name\nwith newline"]
    assert odd == Entry("f", 0o644, sha256=Entry.file(b"b\n").sha256)
    assert entries["link"] == Entry("l", 0o777, "/etc/nginx/plain.conf")
    assert entries["secret"].mode == 0o600
    assert entries["hard.conf"].sha256 == entries["plain.conf"].sha256


def test_a_snapshot_reads_back_what_the_manifest_sees(tree: Path, sh: Run) -> None:
    listed = _nginx.read_manifest(sh(_nginx.manifest_command(str(tree))), str(tree))
    snapshot = _nginx.read_snapshot(sh(_nginx.snapshot_command(str(tree))), str(tree))
    assert set(snapshot) == set(listed)
    for rel, entry in snapshot.items():
        assert (entry.kind, entry.sha256, entry.target) == (
            listed[rel].kind,
            listed[rel].sha256,
            listed[rel].target,
        )
    assert snapshot["hard.conf"].content == b"a\n"  # tar stores it as a hard link


def test_a_snapshot_with_an_escaping_path_is_refused() -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        member = tarfile.TarInfo("../../etc/passwd")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="unsafe path"):
        _nginx.parse_snapshot(base64.b64encode(data.getvalue()).decode())
    with pytest.raises(ValueError, match="unreadable snapshot"):
        _nginx.parse_snapshot(base64.b64encode(b"not a tar").decode())


def test_tree_changes_write_link_and_remove_only_what_differs() -> None:
    live = {
        "same": Entry.file(b"x"),
        "old": Entry.file(b"x"),
        "link": Entry("l", target="/a"),
        "dir": Entry("d"),
        "extra": Entry.file(b"y"),
    }
    want = {
        "same": Entry.file(b"x"),
        "old": Entry.file(b"new", 0o600),
        "link": Entry("l", target="/b"),
        "missing/f": Entry.file(b"z"),
    }
    changes = _nginx.tree_changes("/r", want, live, list(live))
    assert changes == [
        Symlink("/r/link", "/b", "/r"),
        WriteFile("/r/missing/f", b"z", 0o644, "/r"),
        WriteFile("/r/old", b"new", 0o600, "/r"),
        Remove("/r/extra", "/r"),  # folders are never removed
    ]
    with pytest.raises(ValueError, match="/r/dir/f: a folder on the host, or below a file"):
        _nginx.tree_changes("/r", {"dir/f": Entry.file(b"")}, {"dir": Entry.file(b"")})
    with pytest.raises(ValueError, match="/r/dir: a folder"):
        _nginx.tree_changes("/r", {"dir": Entry.file(b"")}, live)


@pytest.mark.parametrize(
    ("rel", "pattern", "expected"),
    [
        ("conf.d/a.conf", "conf.d/*.conf", True),
        ("conf.d/README", "conf.d/*.conf", False),
        ("conf.d/x/a.conf", "conf.d/*.conf", False),
        ("sites-enabled/default", "sites-enabled/*", True),
        ("x/sites-enabled/default", "sites-enabled/*", False),
    ],
)
def test_prune_globs_match_one_level(rel: str, pattern: str, expected: bool) -> None:
    assert _nginx.matches(rel, pattern) is expected


def test_known_good_names_follow_the_root() -> None:
    assert _nginx.known_good_path("/etc/nginx") == "/var/lib/opsfix/known-good/etc_nginx"
    assert _nginx.known_good_path("/srv/a/nginx", "/x") == "/x/srv_a_nginx"


def test_a_zombie_named_in_the_pid_file_is_not_running(tmp_path: Path, sh: Run) -> None:
    """A pid file naming a dead or zombie process, or another program, is not "running"."""
    if not shutil.which("true"):
        pytest.skip("needs true")
    fake = tmp_path / "nginx"
    shutil.copy(shutil.which("true") or "", fake)
    pid_file = tmp_path / "nginx.pid"
    condition = _service.pid_names(str(pid_file), "nginx")
    check = f"if {condition}; then echo yes; else echo no; fi"

    child = subprocess.Popen([str(fake)])  # exits at once; unreaped, it stays a zombie
    time.sleep(0.2)
    pid_file.write_text(f"{child.pid}\n")
    assert sh(check).stdout == "no\n"
    child.wait()
    assert sh(check).stdout == "no\n"  # gone
    pid_file.write_text(f"{os.getpid()}\n")
    assert sh(check).stdout == "no\n"  # alive, but not nginx
    pid_file.write_text("garbage; rm -rf /\n")
    assert sh(check).stdout == "no\n"


def test_a_live_process_named_in_the_pid_file_is_running(tmp_path: Path, sh: Run) -> None:
    fake = tmp_path / "nginx"
    shutil.copy(shutil.which("sleep") or "", fake)
    child = subprocess.Popen([str(fake), "5"])
    try:
        (tmp_path / "nginx.pid").write_text(f"{child.pid}\n")
        condition = _service.pid_names(str(tmp_path / "nginx.pid"), "nginx")
        assert sh(f"if {condition}; then echo yes; fi").stdout == "yes\n"
    finally:
        child.kill()
        child.wait()
