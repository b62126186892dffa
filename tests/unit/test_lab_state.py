"""The lab record and state dir: how a new process finds a lab, without root or hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.errors import LabError
from opsfix.lab import Lab, down
from opsfix.lab.state import DEFAULT_STATE_DIR, LabPaths, LabRecord, resolve_state_dir


def test_state_dir_is_explicit_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPSFIX_LAB_DIR", raising=False)
    assert resolve_state_dir(None) == DEFAULT_STATE_DIR == Path("/var/lib/opsfix-lab")
    monkeypatch.setenv("OPSFIX_LAB_DIR", str(tmp_path / "env"))
    assert resolve_state_dir(None) == tmp_path / "env"
    assert resolve_state_dir(tmp_path / "given") == tmp_path / "given"


def test_relative_state_dir_becomes_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_state_dir("lab") == tmp_path / "lab"


def test_record_survives_a_round_trip(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    LabRecord(name="oft", subnet="10.232.0.0/24", count=2, pids={"web1": 10, "web2": 11}).save(
        paths
    )
    record = LabRecord.load(paths)
    assert (record.name, record.count, record.pids) == ("oft", 2, {"web1": 10, "web2": 11})
    assert [h.address for h in record.plan.hosts] == ["10.232.0.11", "10.232.0.12"]
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_or_foreign_record_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no lab here"):
        LabRecord.load(LabPaths(tmp_path))
    (tmp_path / "lab.json").write_text('{"version": 99}')
    with pytest.raises(LabError, match="unknown record version 99"):
        LabRecord.load(LabPaths(tmp_path))
    (tmp_path / "lab.json").write_text("{not json")
    with pytest.raises(LabError, match="unreadable lab record"):
        LabRecord.load(LabPaths(tmp_path))


def test_lab_load_lists_hosts_and_refuses_unknown_or_stopped_ones(tmp_path: Path) -> None:
    LabRecord(name="oft", subnet="10.232.0.0/24", count=2).save(LabPaths(tmp_path))
    lab = Lab.load(tmp_path)
    assert lab.hosts == {"web1": "10.232.0.11", "web2": "10.232.0.12"}
    assert lab.inventory_path == tmp_path / "inventory.yml"
    with pytest.raises(LabError, match="unknown lab host 'web3'"):
        lab.exec("web3", "true")
    with pytest.raises(LabError, match="web1: not running"):
        lab.exec("web1", "true")


def test_down_without_a_lab_does_nothing_and_keeps_foreign_files(tmp_path: Path) -> None:
    down(tmp_path / "never-made")
    empty = tmp_path / "empty"
    empty.mkdir()
    down(empty)
    assert not empty.exists()
    (tmp_path / "precious").write_text("keep me")
    down(tmp_path)
    assert (tmp_path / "precious").read_text() == "keep me"


def test_the_lab_folder_may_come_before_or_after_the_action() -> None:
    from opsfix.cli import _build_parser

    for argv in (["lab", "--dir", "/x", "up"], ["lab", "up", "--dir", "/x"]):
        assert _build_parser(argv).parse_args(argv).dir == Path("/x"), argv
    for argv in (["lab", "up"], ["lab", "--dir", "/x", "down"]):
        args = _build_parser(argv).parse_args(argv)
        assert args.dir == (Path("/x") if "--dir" in argv else None), argv
