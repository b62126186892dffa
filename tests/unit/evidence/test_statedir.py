"""The state folder is the running user's alone: made 0700, refused when someone else owns
it or may write in it, and nothing in it is opened through a planted link."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.evidence.state import open_store
from opsfix.evidence.statedir import UnsafeStateFolder, private_folder
from opsfix.transport.keeper.link import _private_folder
from opsfix.verify.lookahead import CommandMemo

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_every_level_made_is_0700_whoever_makes_it_first(tmp_path: Path) -> None:
    state = tmp_path / "home/.local/state/opsfix"
    assert _private_folder(state / "control")  # the keeper's socket folder comes first
    for folder in (state / "control", state, state.parent, tmp_path / "home/.local"):
        assert mode(folder) == 0o700, folder


def test_a_folder_others_may_read_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_folder(folder)
    assert mode(folder) == 0o700


@pytest.mark.parametrize("bits", [0o775, 0o757, 0o1777])
def test_a_folder_others_may_write_is_refused(tmp_path: Path, bits: int) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(bits)
    with pytest.raises(UnsafeStateFolder, match=r"writable by others .*chmod 700"):
        private_folder(folder)
    assert mode(folder) == bits  # left as found, for its owner to judge


@ROOT_ONLY
def test_a_folder_another_user_owns_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(UnsafeStateFolder, match="belongs to uid 65534, not to this user"):
        private_folder(folder)
    with pytest.raises(UnsafeStateFolder):
        open_store(folder / "opsfix.db")
    assert not (folder / "opsfix.db").exists()


def test_a_planted_database_link_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "opsfix.db").symlink_to(victim)
    with pytest.raises(UnsafeStateFolder, match=r"is a symbolic link .*victim"):
        open_store(state / "opsfix.db")
    assert victim.read_text() == "precious\n"


def test_a_planted_journal_link_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "opsfix.db-journal").symlink_to(victim)
    with pytest.raises(UnsafeStateFolder, match=r"opsfix\.db-journal is a symbolic link"):
        open_store(state / "opsfix.db")
    assert victim.read_text() == "precious\n"


def test_the_verify_memo_neither_reads_nor_writes_through_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps({"k": [["rm -rf /", True]]}))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    memo = CommandMemo(state / "verify-ahead.json", [])
    (state / "verify-ahead.json").symlink_to(victim)
    (state / f".verify-ahead.json.{os.getpid()}").symlink_to(victim)
    assert memo._read() == {}  # a link's content is never trusted
    memo.save([("true", False)])
    assert json.loads(victim.read_text()) == {"k": [["rm -rf /", True]]}
    assert not (state / "verify-ahead.json").is_symlink()  # the link itself was replaced
    assert memo.load() == [("true", False)]


def test_a_run_with_an_unsafe_state_folder_is_refused_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    monkeypatch.setenv("OPSFIX_STATE_DIR", str(state))
    playbook = tmp_path / "missing.yml"  # never read: the folder is refused first
    assert main(["check", str(playbook), "-i", str(tmp_path / "none.yml")]) == 5
    err = capsys.readouterr().err
    assert f"state folder {state} is writable by others" in err
    assert list(state.iterdir()) == []
