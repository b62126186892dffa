"""Host file names as data, and paths that stay in their root, in the real local shell."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from opsfix import hostfiles
from opsfix.shell import quote
from opsfix.transport.base import CommandResult


def sh(script: str, cwd: Path | None = None) -> CommandResult:
    done = subprocess.run(["dash", "-c", script.encode()], capture_output=True, cwd=cwd)
    out, err = (data.decode("utf-8", "replace") for data in (done.stdout, done.stderr))
    return CommandResult(script, done.returncode, out, err)


@pytest.mark.parametrize("name", ["plain", "a b\n", "\udcff\n\n", "-n", "'\"*", "%s\\n"])
def test_quote_writes_every_byte_back(name: str) -> None:
    out = subprocess.run(["dash", "-c", f"printf %s {quote(name)}".encode()], capture_output=True)
    assert out.stdout == hostfiles.encode(name)


def test_a_listing_arrives_byte_for_byte_with_its_status() -> None:
    listed = hostfiles.read_listing(sh(hostfiles.listing("printf 'a\\n\\377\\0b\\0'; exit 3")))
    assert listed == hostfiles.Listing(3, [hostfiles.decode(b"a\n\xff"), "b"])
    assert hostfiles.read_listing(sh(hostfiles.listing("true"))) == hostfiles.Listing(0, [])


def test_a_listing_cut_short_or_garbled_cannot_be_read() -> None:
    whole = sh(hostfiles.listing("printf 'a\\0b\\0'"))
    assert hostfiles.read_listing(CommandResult("", 0, whole.stdout[:4])).exit_status == -1
    assert hostfiles.read_listing(CommandResult("", 0, "%%%")).exit_status == -1
    no_status = base64.b64encode(b"a\0b").decode()
    assert hostfiles.read_listing(CommandResult("", 0, no_status)).exit_status == -1


def test_confined_names_the_first_symlinked_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)

    def confined(path: str) -> CommandResult:
        check = f"{hostfiles.CONFINED}\n{hostfiles.confined(str(root), path)}"
        return sh(check + '; s=$?; printf %s "$link"; exit $s')

    assert confined(f"{root}/real/new/x").ok
    assert confined(f"{root}/link").ok  # the last name itself is never followed
    out = confined(f"{root}/link/real/x")
    assert (out.exit_status, out.stdout) == (1, f"{root}/link")
    out = confined(f"{tmp_path}/elsewhere")
    assert (out.exit_status, out.stdout) == (1, f"{tmp_path}/elsewhere")


def test_enter_walks_in_one_checked_folder_at_a_time(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "b").symlink_to(outside)

    def enter(folder: str, create: bool = False) -> CommandResult:
        how = " create" if create else ""
        script = f"{hostfiles.ENTER}\nenter {quote(str(root))} {quote(folder)}{how}; s=$?"
        return sh(script + '; printf "%s|%s|%s" "$PWD" "$link" "$_w"; exit $s', cwd=tmp_path)

    assert enter(f"{root}/a").stdout.split("|")[0] == f"{root}/a"
    assert enter(f"{root}/a/new/deeper").exit_status == 2  # missing, not made
    made = enter(f"{root}/a/new/deeper", create=True)
    assert made.ok and made.stdout.startswith(f"{root}/a/new/deeper|")
    assert (root / "a" / "new").stat().st_mode & 0o777 == 0o755
    swapped = enter(f"{root}/a/b/c", create=True)  # as if b became a link after the check
    assert swapped.exit_status == 1 and swapped.stdout.split("|")[1] == f"{root}/a/b"
    assert list(outside.iterdir()) == []  # nothing made through the link
    assert enter(str(tmp_path)).exit_status == 1  # not under the root


def test_enter_makes_a_missing_root_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "new" / "root"
    script = f"{hostfiles.ENTER}\numask 077; enter {quote(str(root))} {quote(f'{root}/a')} create"
    assert sh(script + '; s=$?; printf %s "$PWD"; exit $s').stdout == f"{root}/a"
    assert [(p.stat().st_mode & 0o777) for p in (tmp_path / "new", root, root / "a")] == [0o755] * 3
