"""Ansible Vault, against values and files made by the real `ansible-vault`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.errors import InventoryError, OptionsError
from opsfix.inventory import load_inventory
from opsfix.playbook import vault
from opsfix.secret import Secret

ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"
pytestmark = pytest.mark.skipif(
    not ANSIBLE_VAULT.exists(), reason="ansible-core (the dev extra) provides ansible-vault"
)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text("correct horse battery\n")
    return path


@pytest.fixture(autouse=True)
def no_passwords() -> Iterator[None]:
    vault.configure([])
    yield
    vault.configure([])


def ansible_vault(*args: str | Path, stdin: str = "") -> str:
    done = subprocess.run(
        [str(ANSIBLE_VAULT), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def encrypt_string(value: str, password_file: Path, vault_id: str = "") -> str:
    """The `!vault |` block ansible-vault prints, without its `name:` line."""
    who = (
        ["--vault-id", f"{vault_id}@{password_file}"]
        if vault_id
        else [
            "--vault-password-file",
            password_file,
        ]
    )
    out = ansible_vault("encrypt_string", *who, "--stdin-name", "x", stdin=value)
    return out.split("!vault |", 1)[1]


def as_password(path: Path, label: str = "default") -> vault.VaultPassword:
    return vault.VaultPassword(label, path.read_text().strip().encode())


@pytest.mark.parametrize("vault_id", ["", "prod"])  # format 1.1, and 1.2 with a vault ID
def test_values_made_by_ansible_vault_decrypt(password_file: Path, vault_id: str) -> None:
    block = encrypt_string("s3cr3t value ünï", password_file, vault_id)
    text = "\n".join(line.strip() for line in block.strip().splitlines())
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;prod" if vault_id else "$ANSIBLE_VAULT;1.1")
    plain = vault.decrypt(text, [as_password(password_file, vault_id or "default")])
    assert plain.decode() == "s3cr3t value ünï"


def test_a_wrong_password_or_none_is_a_plain_error(password_file: Path, tmp_path: Path) -> None:
    text = encrypt_string("x", password_file, "prod").strip()
    with pytest.raises(vault.VaultError, match="--vault-password-file, --vault-id"):
        vault.decrypt(text, [])
    wrong = vault.VaultPassword("prod", b"not it")
    with pytest.raises(vault.VaultError) as caught:
        vault.decrypt(text, [wrong, vault.VaultPassword("dev", b"nor this")])
    assert str(caught.value) == (
        "no vault password given decrypts it (vault ID 'prod'); tried vault IDs: prod, dev"
    )
    with pytest.raises(vault.VaultError, match="damaged"):
        vault.decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz", [wrong])


def write_vaulted_inventory(root: Path, password_file: Path) -> None:
    block = encrypt_string("db-password-1", password_file)
    (root / "hosts.yml").write_text(
        "all:\n  children:\n    db:\n      hosts:\n        db1:\n          ansible_host: 10.0.0.9\n"
    )
    (root / "host_vars").mkdir()
    (root / "host_vars" / "db1.yml").write_text(f"db_password: !vault |{block}plain: visible\n")
    (root / "group_vars").mkdir()
    secret_file = root / "group_vars" / "db.yml"
    secret_file.write_text("api_token: token-42\nreplicas: 3\n")
    ansible_vault("encrypt", "--vault-password-file", password_file, secret_file)
    assert secret_file.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")


def test_vault_values_and_encrypted_vars_files_in_an_inventory(
    tmp_path: Path, password_file: Path
) -> None:
    write_vaulted_inventory(tmp_path, password_file)
    with pytest.raises(InventoryError) as caught:
        load_inventory([tmp_path / "hosts.yml"])
    assert "encrypted with Ansible Vault" in caught.value.message
    vault.configure(vault.passwords_from_options([str(password_file)], [], ask=False, env={}))
    host = load_inventory([tmp_path / "hosts.yml"]).hosts["db1"]
    assert host.vars["db_password"] == Secret("db-password-1")
    assert host.vars["api_token"] == Secret("token-42")  # a whole encrypted file: all secret
    assert host.vars["replicas"] == 3 and host.vars["plain"] == "visible"


def test_the_cli_takes_the_password_file_and_masks_every_value(
    tmp_path: Path, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_vaulted_inventory(tmp_path, password_file)
    inventory = str(tmp_path / "hosts.yml")
    assert (
        main(["inventory", "-i", inventory, "--list", "--vault-password-file", str(password_file)])
        == 0
    )
    out = capsys.readouterr().out
    assert "db-password-1" not in out and "token-42" not in out
    assert out.count("********") == 2
    assert main(["inventory", "-i", inventory, "--list"]) == 4
    assert "encrypted with Ansible Vault" in capsys.readouterr().err


def test_vault_ids_and_the_environment(
    tmp_path: Path, password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-pass"
    other.write_text("second\n")
    found = vault.passwords_from_options(
        [], [f"prod@{password_file}", f"dev@{other}"], ask=False, env={}
    )
    assert [(p.vault_id, p.password) for p in found] == [
        ("prod", b"correct horse battery"),
        ("dev", b"second"),
    ]
    from_env = vault.passwords_from_options(
        [], [], False, env={"ANSIBLE_VAULT_PASSWORD_FILE": str(other)}
    )
    assert [p.password for p in from_env] == [b"second"]
    asked = vault.passwords_from_options(
        [], ["ops@prompt"], ask=True, prompt=lambda _: "typed", env={}
    )
    assert [(p.vault_id, p.password) for p in asked] == [("ops", b"typed"), ("default", b"typed")]
    script = tmp_path / "client.sh"
    script.write_text("#!/bin/sh\necho from-script\n")
    script.chmod(0o755)
    assert (
        vault.passwords_from_options([str(script)], [], False, env={})[0].password == b"from-script"
    )
    with pytest.raises(OptionsError, match="missing"):
        vault.passwords_from_options([str(tmp_path / "missing")], [], False, env={})
