"""opsfix and the real `ansible-inventory` side by side: the same `--list` output.

ansible-core is a test dependency (the dev extra). Secrets are the one difference, on
purpose: ansible-inventory prints vaulted values as `{"__ansible_vault": ...}` and
passwords in clear, opsfix masks both; each side's secret becomes `<secret>`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opsfix.cli import main
from opsfix.inventory.masking import MASK, SECRET_VARS
from opsfix.playbook import vault

from .playbook.test_vault import write_vaulted_inventory

BIN = Path(sys.executable).parent
DATA = Path(__file__).parent / "data" / "inventory"
pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-inventory").exists(), reason="ansible-core (the dev extra) is needed"
)


def ansible_list(sources: list[Path], *extra: str, cwd: Path | None = None) -> Any:
    argv = [str(BIN / "ansible-inventory"), "--list", *extra]
    for source in sources:
        argv += ["-i", str(source)]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(cwd or "/nonexistent"), "LANG": "C.UTF-8"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def opsfix_list(sources: list[Path], *extra: str, capsys: pytest.CaptureFixture[str]) -> Any:
    argv = ["inventory", "--list", *extra]
    for source in sources:
        argv += ["-i", str(source)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def without_secrets(value: Any, key: str = "") -> Any:
    if key in SECRET_VARS or value == MASK:
        return "<secret>"
    if isinstance(value, dict):
        if set(value) == {"__ansible_vault"}:
            return "<secret>"
        return {k: without_secrets(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


@pytest.mark.parametrize(
    "sources",
    [
        ["pair/site.ini"],
        ["pair/site.yml"],
        ["folder"],
        ["layered/hosts.yml"],
        ["pair/site.ini", "layered/hosts.yml"],
    ],
)
def test_static_inventories_list_the_same(
    sources: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [DATA / s for s in sources]
    assert without_secrets(opsfix_list(paths, capsys=capsys)) == without_secrets(
        ansible_list(paths)
    )


def test_vault_values_made_by_ansible_vault_list_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "pass"
    password.write_text("compat-pass\n")
    root = tmp_path / "inv"
    root.mkdir()
    write_vaulted_inventory(root, password)
    option = ["--vault-password-file", str(password)]
    try:
        ours = opsfix_list([root / "hosts.yml"], *option, capsys=capsys)
    finally:
        vault.configure([])
    theirs = ansible_list([root / "hosts.yml"], *option)
    db1 = ours["_meta"]["hostvars"]["db1"]
    assert (db1["db_password"], db1["api_token"], db1["replicas"]) == (MASK, MASK, 3)
    # ansible-inventory prints the values of an encrypted vars file in clear; opsfix not
    assert theirs["_meta"]["hostvars"]["db1"].pop("api_token") == "token-42"
    del db1["api_token"]
    assert without_secrets(ours) == without_secrets(theirs)


def test_an_inventory_script_lists_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {
        "web": {"hosts": ["web1", "web2"], "vars": {"http_port": 80}, "children": ["canary"]},
        "canary": {"hosts": ["web3"]},
        "db": ["db1"],
        "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1"}, "db1": {"size": 3}}},
    }
    inv = tmp_path / "inventory.py"
    inv.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(listed)}\nEOF\n")
    inv.chmod(0o755)
    assert opsfix_list([inv], capsys=capsys) == ansible_list([inv])


def test_a_folder_with_a_constructed_plugin_config_lists_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`constructed` (no cloud, no credentials) works on the other files' hosts: the folder
    goes to ansible-inventory whole, and opsfix's own precedence applies to what it says."""
    root = tmp_path / "inv"
    (root / "group_vars").mkdir(parents=True)
    (root / "01-hosts.yml").write_text(
        "web:\n  hosts:\n    web1: {mem: 8}\n    web2: {mem: 2}\n  vars: {role: frontend}\n"
    )
    (root / "group_vars" / "big.yml").write_text("tier: large\n")
    (root / "02-constructed.yml").write_text(
        "plugin: ansible.builtin.constructed\nstrict: true\n"
        "groups:\n  big: mem > 4\n"
        "compose:\n  memory_mb: mem * 1024\n"
    )
    ours = opsfix_list([root], capsys=capsys)
    assert ours["big"]["hosts"] == ["web1"]
    assert ours["_meta"]["hostvars"]["web1"]["tier"] == "large"
    assert ours == ansible_list([root])


def ansible_text(sources: list[Path], *extra: str) -> str:
    argv = [str(BIN / "ansible-inventory"), *extra]
    for source in sources:
        argv += ["-i", str(source)]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def opsfix_text(sources: list[Path], *extra: str, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["inventory", *extra]
    for source in sources:
        argv += ["-i", str(source)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "extra",
    [
        ["--list", "-l", "web01*"],
        ["--list", "-l", "web:&eu:!web02*"],
        ["--list", "--yaml"],
        ["--list", "--yaml", "-l", "web01*:bastion"],
        ["--host", "web01.example.com"],
        ["--host", "bastion", "--yaml"],
    ],
)
def test_limit_yaml_and_host_print_the_same(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    sources = [DATA / "pair" / "site.ini", DATA / "layered" / "hosts.yml"]
    ours, theirs = opsfix_text(sources, *extra, capsys=capsys), ansible_text(sources, *extra)
    parse = yaml.safe_load if "--yaml" in extra else json.loads
    assert without_secrets(parse(ours)) == without_secrets(parse(theirs))
    if "password" not in theirs:  # nothing masked: the very same text
        assert ours == theirs


def test_a_limit_filters_the_graph_too(capsys: pytest.CaptureFixture[str]) -> None:
    """ansible-inventory 2.19 ignores --limit with --graph; opsfix applies it."""
    out = opsfix_text([DATA / "pair" / "site.ini"], "--graph", "-l", "web01*", capsys=capsys)
    assert "web01.example.com" in out and "web02" not in out and "bastion" not in out
    assert main(["inventory", "-i", str(DATA / "pair" / "site.ini"), "--list", "-l", "nope"]) == 1
    assert "matches no host" in capsys.readouterr().err


def test_a_host_list_on_the_command_line_lists_the_same(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no group_vars/ of the current folder takes part
    hosts = [Path("web1,10.0.0.7:2222,db.example.com,")]
    assert opsfix_list(hosts, capsys=capsys) == ansible_list(hosts, cwd=tmp_path)


def test_ansible_inventory_names_the_sources_when_nothing_else_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSFIX_INVENTORY", raising=False)
    sources = f"{DATA / 'pair' / 'site.ini'},{DATA / 'layered' / 'hosts.yml'}"
    monkeypatch.setenv("ANSIBLE_INVENTORY", sources)
    assert main(["inventory", "--list"]) == 0
    ours = json.loads(capsys.readouterr().out)
    paths = [DATA / "pair" / "site.ini", DATA / "layered" / "hosts.yml"]
    assert without_secrets(ours) == without_secrets(ansible_list(paths))
