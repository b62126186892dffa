"""File names are data: every remediation that lists or touches files reads back exactly the
names that were created, whatever bytes they hold, and touches nothing else.

Hypothesis makes names from the pieces that break record parsers and shells: newlines,
quotes, `*`, a leading `-`, `$( )`, printf's `%` and `\\`, control characters, bytes that are
not UTF-8, and a forged `find -printf` record. The generated shell runs for real in the
local `/bin/sh` (dash), encoded and decoded as the SSH transport does (`localsh.py`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsfix.engine.transaction import Transaction
from opsfix.plugin import RemediationContext, Remove, WriteFile
from opsfix.remediations import _nginx
from opsfix.remediations.clean_logs import CleanLogs, CleanLogsParams
from opsfix.remediations.grant_read_access import GrantReadAccess, GrantReadAccessParams
from opsfix.remediations.restore_content import RestoreContent, RestoreContentParams

from .localsh import LocalShell

SOME = settings(
    max_examples=25,
    deadline=None,  # each example runs several shells
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PIECES = [
    b"a", b"Z", b"0", b".", b"-", b"--", b" ", b"\n", b"\t", b"'", b'"', b"*", b"?", b"[",
    b"\\", b"\\n", b"%s", b"%", b"$(touch pwned)", b"`id`", b";", b"\x01", b"\x1b[2J",
    b"\xff", b"\xc3", b"\xe9", b"\xc3\xa9", b"\xe2\x82", b"T 700 0 0 d 1 .", b"\x00",
]  # fmt: skip
NAMES = (
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=5)
    .map(lambda parts: b"".join(parts).replace(b"\x00", b""))
    .filter(lambda name: name not in (b"", b".", b".."))
)
NAME_SETS = st.sets(NAMES, min_size=1, max_size=6)
CONTEXT = RemediationContext("local", {}, Path("."), lambda name, v: "")


@contextmanager
def scratch() -> Iterator[bytes]:
    """A fresh folder under /tmp that others may enter (its parents need no repair)."""
    top = tempfile.mkdtemp(prefix="opsfix-names-").encode()
    os.chmod(top, 0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def write(path: bytes, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def snapshot(top: bytes) -> dict[bytes, tuple[int, bytes]]:
    """Mode and content (or link target) of every path under top."""
    found = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st_ = os.lstat(path)
            body = (
                os.readlink(path)
                if stat.S_ISLNK(st_.st_mode)
                else Path(os.fsdecode(path)).read_bytes()
                if stat.S_ISREG(st_.st_mode)
                else b""
            )
            found[path] = (st_.st_mode, body)
    return found


def text(path: bytes) -> str:
    return os.fsdecode(path)


@SOME
@given(names=NAME_SETS, sub=NAMES)
def test_the_manifest_lists_exactly_the_names_created(names: set[bytes], sub: bytes) -> None:
    names.discard(sub)
    with scratch() as top:
        root = os.path.join(top, b"root")
        os.makedirs(os.path.join(root, sub))
        created = {sub}
        for name in names:
            write(os.path.join(root, name), b"x")
            write(os.path.join(root, sub, name), b"y")
            created |= {name, sub + b"/" + name}
        result = LocalShell().run(_nginx.manifest_command(text(root)))
        tree = _nginx.read_manifest(result, text(root))
        assert {os.fsencode(rel) for rel in tree} == created
        assert all(tree[os.fsdecode(n)].sha256 for n in created if n != sub)


@SOME
@given(names=NAME_SETS, extra=NAME_SETS)
def test_restore_content_writes_and_prunes_exactly_those_names_and_restores_them(
    names: set[bytes], extra: set[bytes]
) -> None:
    extra -= names
    with scratch() as top:
        release, dest, beside = (os.path.join(top, n) for n in (b"release", b"html", b"beside"))
        for folder in (release, dest, beside):
            os.mkdir(folder)
        for name in names:
            write(os.path.join(release, name), b"new " + name)
            write(os.path.join(dest, name), b"old")
            write(os.path.join(beside, name), b"untouched")
        for name in extra:
            write(os.path.join(dest, name), b"stray")
        before = snapshot(top)
        params = RestoreContentParams(source=Path(text(release)), dest=text(dest), prune=True)
        remediation = RestoreContent(params, CONTEXT)
        conn = LocalShell()
        plan = remediation.plan([conn.run(c) for c in remediation.gather()])
        written = {os.fsencode(c.path) for c in plan.changes if isinstance(c, WriteFile)}
        removed = {os.fsencode(c.path) for c in plan.changes if isinstance(c, Remove)}
        assert written == {os.path.join(dest, n) for n in names}
        assert removed == {os.path.join(dest, n) for n in extra}
        tx = Transaction(
            conn, plan, "t", state_dir=text(top + b"/state"), backup_dir=text(top + b"/bk")
        )
        prepared, applied, _ = tx.prepare_and_apply()
        assert prepared.ok and applied is not None and applied.ok, (prepared, applied)
        after = {p: v for p, v in snapshot(top).items() if not p.startswith(top + b"/state")}
        assert {p: v[1] for p, v in after.items() if p.startswith(dest + b"/")} == {
            os.path.join(dest, n): b"new " + n for n in names
        }
        unchanged = {p: v for p, v in before.items() if not p.startswith(dest + b"/")}
        assert {p: after[p] for p in unchanged} == unchanged  # the release, beside, dest
        assert tx.restore().ok
        restored = snapshot(top)
        assert {p: restored.get(p) for p in before} == before


@SOME
@given(names=NAME_SETS)
def test_grant_read_access_chmods_exactly_the_names_created(names: set[bytes]) -> None:
    with scratch() as top:
        root = os.path.join(top, b"www")
        os.mkdir(root, 0o700)
        os.chmod(root, 0o700)
        write(os.path.join(top, b"sentinel"), b"s", 0o600)
        for name in names:
            write(os.path.join(root, name), b"x", 0o600)
        here = os.stat(".").st_mode  # a forged "." record would reach the working folder
        params = GrantReadAccessParams(root=text(root), user="nobody")
        remediation = GrantReadAccess(params, CONTEXT)
        conn = LocalShell()
        plan = remediation.plan([conn.run(c) for c in remediation.gather()])
        assert plan.refuse is None, plan.refuse
        assert conn.run(plan.act[0]).ok
        modes = {p: v[0] & 0o777 for p, v in snapshot(top).items()}
        assert modes == {
            root: 0o755,
            os.path.join(top, b"sentinel"): 0o600,
            **{os.path.join(root, n): 0o644 for n in names},
        }
        assert os.stat(".").st_mode == here
        assert conn.run(plan.rollback[0]).ok
        modes = {p: v[0] & 0o777 for p, v in snapshot(top).items()}
        assert modes == {
            root: 0o700,
            os.path.join(top, b"sentinel"): 0o600,
            **{os.path.join(root, n): 0o600 for n in names},
        }


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /proc/*/fd of every process needs root")
@SOME
@given(names=NAME_SETS)
def test_clean_logs_lists_and_removes_exactly_the_names_created(names: set[bytes]) -> None:
    with scratch() as top:
        logs = os.path.join(top, b"logs")
        os.mkdir(logs)
        old = {os.path.join(logs, name + b".1") for name in names}
        for path in old:
            write(path, b"x" * 100)
            os.utime(path, (1_000_000_000, 1_000_000_000))
        write(os.path.join(logs, b"live.log"), b"live")
        params = CleanLogsParams(folders=[text(logs)], allowed_roots=[text(top)])
        remediation = CleanLogs(params, CONTEXT)
        conn = LocalShell()
        plan = remediation.plan([conn.run(c) for c in remediation.gather()])
        assert plan.refuse is None, plan.refuse
        assert {os.fsencode(c.path) for c in plan.changes} == old
        assert all(c.root == text(logs) for c in plan.changes)
        assert conn.run(plan.validate[0]).ok
        tx = Transaction(conn, plan, "t", state_dir=text(top + b"/state"), backup_dir=text(top))
        prepared, applied, _ = tx.prepare_and_apply()
        assert prepared.ok and applied is not None and applied.ok, (prepared, applied)
        assert set(os.listdir(logs)) == {b"live.log"}
