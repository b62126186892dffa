"""ansible.cfg: found in Ansible's order, its settings the lowest precedence, shown by -v."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix import ansible_cfg
from opsfix.cli import main
from opsfix.inventory.host import Host
from opsfix.transport.settings import configure_host_defaults, resolve_spec

CFG = """[defaults]
inventory = hosts.ini
remote_user = deploy
private_key_file = keys/id_ops
timeout = 7
forks = 12

[privilege_escalation]
become = True
become_method = su
become_user = admin  ; a comment
"""


@pytest.fixture(autouse=True)
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("ANSIBLE_CONFIG", "OPSFIX_INVENTORY", "ANSIBLE_INVENTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    yield tmp_path
    configure_host_defaults({})


def test_found_in_ansibles_order(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ansible_cfg.find() is None
    (place / "home" / ".ansible.cfg").write_text("[defaults]\n")
    assert ansible_cfg.find() == place / "home" / ".ansible.cfg"
    (place / "work" / "ansible.cfg").write_text("[defaults]\n")
    assert ansible_cfg.find() == Path("./ansible.cfg").expanduser()
    (place / "elsewhere").mkdir()
    (place / "elsewhere" / "ansible.cfg").write_text("[defaults]\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(place / "elsewhere"))
    assert ansible_cfg.find() == place / "elsewhere" / "ansible.cfg"


def test_settings_and_paths_relative_to_the_file(place: Path) -> None:
    (place / "work" / "ansible.cfg").write_text(CFG)
    cfg = ansible_cfg.load()
    assert cfg.inventory() == [Path("ansible.cfg").parent / "hosts.ini"]
    assert cfg.host_defaults() == {
        "ansible_user": "deploy",
        "ansible_ssh_private_key_file": "keys/id_ops",
        "ansible_become": "True",
        "ansible_become_method": "su",
        "ansible_become_user": "admin",
    }
    assert (cfg.number("timeout"), cfg.number("forks")) == (7, 12)


def test_its_defaults_are_below_every_inventory_variable() -> None:
    configure_host_defaults({"ansible_user": "deploy", "ansible_become_method": "su"})
    assert resolve_spec(Host("a")).user == "deploy"
    spec = resolve_spec(Host("b", vars={"ansible_user": "ops"}))
    assert (spec.user, spec.become_method) == ("ops", "su")


def test_the_cli_reads_its_inventory_and_shows_each_setting_with_v(
    place: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (place / "work" / "ansible.cfg").write_text(CFG)
    (place / "work" / "hosts.ini").write_text("[web]\nweb1\n")
    assert main(["inventory", "--list", "-v"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["web"]["hosts"] == ["web1"]
    assert "ansible.cfg: inventory = hosts.ini (from ansible.cfg)" in err
    assert "ansible.cfg: remote_user = deploy (from ansible.cfg)" in err
    assert main(["inventory", "--list", "-i", "other,"]) == 0  # -i wins
    assert json.loads(capsys.readouterr().out)["ungrouped"]["hosts"] == ["other"]
