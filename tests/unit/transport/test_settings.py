"""ConnectionSpec resolution: inventory vars, then ssh_config, as Ansible does it."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.errors import InventoryError
from opsfix.inventory.host import Host
from opsfix.secret import Secret
from opsfix.transport import ssh_config
from opsfix.transport.settings import resolve_spec

SSH_CONFIG = """
Host web1 web-alias
    HostName 10.0.0.5
    User deploy
    Port 2222
    IdentityFile ~/.ssh/missing_key
    IdentityFile ~/.ssh/id_web
    UserKnownHostsFile ~/kh_one /etc/kh_two
    ProxyJump bastion

Host bastion
    HostName 192.0.2.1
    User jumper
    Port 2200

Host proxied
    ProxyCommand nc -X connect %h %p

Host *
    User fallback
    GSSAPIAuthentication yes
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_web").write_text("not really a key")
    return tmp_path


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "ssh_config"
    # OpenSSH expands ~ in UserKnownHostsFile to the passwd home, not $HOME
    path.write_text(SSH_CONFIG.replace("~/kh_one", f"{home}/kh_one"))
    return path


def test_alias_takes_everything_from_ssh_config(config: Path, home: Path) -> None:
    spec = resolve_spec(Host("web-alias"), ssh_config=config)
    assert (spec.host, spec.hostname, spec.port, spec.user) == (
        "web-alias",
        "10.0.0.5",
        2222,
        "deploy",
    )
    assert spec.key_file == str(home / ".ssh" / "id_web")  # the first IdentityFile that exists
    assert spec.proxy_jump == "jumper@192.0.2.1:2200"  # each hop resolved through ssh_config too
    assert spec.known_hosts_files == (
        str(home / "kh_one"),
        "/etc/kh_two",
        str(home / ".ssh" / "known_hosts"),
    )


def test_inventory_vars_win_over_ssh_config(config: Path) -> None:
    host = Host(
        "web1",
        vars={
            "ansible_port": "2022",
            "ansible_user": "admin",
            "ansible_ssh_private_key_file": "/keys/admin",
        },
    )
    spec = resolve_spec(host, ssh_config=config)
    assert (spec.hostname, spec.port, spec.user, spec.key_file) == (
        "10.0.0.5",
        2022,
        "admin",
        "/keys/admin",
    )


def test_ssh_config_is_looked_up_by_ansible_host(config: Path) -> None:
    spec = resolve_spec(Host("frontend", vars={"ansible_host": "web-alias"}), ssh_config=config)
    assert (spec.host, spec.hostname, spec.user) == ("frontend", "10.0.0.5", "deploy")


def test_unmatched_host_gets_defaults_and_wildcard_values(config: Path) -> None:
    spec = resolve_spec(Host("db9", vars={"ansible_host": "192.0.2.9"}), ssh_config=config)
    assert (spec.hostname, spec.port, spec.user, spec.key_file) == (
        "192.0.2.9",
        22,
        "fallback",
        None,
    )
    assert spec.proxy_jump is None and spec.proxy_command is None


def test_proxy_command_tokens_are_expanded(config: Path) -> None:
    spec = resolve_spec(Host("proxied"), ssh_config=config)
    assert spec.proxy_command == "nc -X connect proxied 22"


def test_no_ssh_config_file_is_fine(home: Path) -> None:
    spec = resolve_spec(Host("plain", vars={"ansible_host": "192.0.2.3"}))
    assert (spec.hostname, spec.port, spec.user) == ("192.0.2.3", 22, None)
    assert spec.known_hosts_files == (str(home / ".ssh" / "known_hosts"),)


def test_default_ssh_config_is_read(home: Path) -> None:
    (home / ".ssh" / "config").write_text("Host box\n  HostName 192.0.2.7\n  Port 2201\n")
    spec = resolve_spec(Host("box"))
    assert (spec.hostname, spec.port) == ("192.0.2.7", 2201)


def test_known_hosts_files_most_specific_first(config: Path, home: Path) -> None:
    host = Host("web1", vars={"opsfix_known_hosts_file": "~/lab_known_hosts"})
    spec = resolve_spec(host, ssh_config=config, known_hosts=["/run/cli_known_hosts", "~/kh_one"])
    assert spec.known_hosts_files == (
        "/run/cli_known_hosts",
        str(home / "kh_one"),  # named twice, kept once
        str(home / "lab_known_hosts"),
        "/etc/kh_two",
        str(home / ".ssh" / "known_hosts"),
    )


def test_become_settings(home: Path) -> None:
    host = Host(
        "web1",
        vars={
            "ansible_become": "yes",
            "ansible_become_user": "www-data",
            "ansible_become_pass": "s3",
        },
    )
    spec = resolve_spec(host, become_password=Secret("from-prompt"))
    assert (spec.become, spec.become_user, spec.become_password) == (True, "www-data", Secret("s3"))
    assert "s3" not in repr(spec)


def test_become_password_argument_fills_in_and_secrets_stay_secrets(home: Path) -> None:
    spec = resolve_spec(Host("a", vars={"ansible_become": False}), become_password=Secret("p"))
    assert (spec.become, spec.become_user, spec.become_password) == (False, "root", Secret("p"))
    given = Secret("vaulted")
    spec = resolve_spec(Host("b", vars={"ansible_become_password": given}))
    assert spec.become_password is given


def test_options_pass_through(home: Path) -> None:
    spec = resolve_spec(Host("a"), trust_new_host_keys=True, connect_timeout=3, command_timeout=9)
    assert (spec.trust_new_host_keys, spec.connect_timeout, spec.command_timeout) == (True, 3, 9)


def test_local_connection(home: Path) -> None:
    assert resolve_spec(Host("ctl", vars={"ansible_connection": "local"})).connection == "local"


def test_unknown_connection_names_the_host(home: Path) -> None:
    with pytest.raises(
        InventoryError,
        match=r"host 'win1': ansible_connection: refused: .*'winrm'.*local, ssh, smart, paramiko",
    ):
        resolve_spec(Host("win1", vars={"ansible_connection": "winrm"}))


def test_bad_port_names_the_host(home: Path) -> None:
    with pytest.raises(InventoryError, match=r"host 'web1': ansible_port: 'eighty'"):
        resolve_spec(Host("web1", vars={"ansible_port": "eighty"}))


def test_ssh_config_is_asked_once_per_address(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ssh -G` is a process: once per address and file version, plus one for defaults."""
    calls: list[tuple[str, str]] = []
    real = ssh_config._ssh_g

    def counting(ssh: str, file: str, address: str) -> ssh_config.Options:
        calls.append((file, address))
        return real(ssh, file, address)

    monkeypatch.setattr(ssh_config, "_cache", {})
    monkeypatch.setattr(ssh_config, "_baseline", {})
    monkeypatch.setattr(ssh_config, "_ssh_g", counting)
    for name in ("web1", "web-alias", "proxied", "other", "web1"):
        resolve_spec(Host(name), ssh_config=config)
    asked = [address for file, address in calls if file == str(config)]
    assert sorted(asked) == ["bastion", "other", "proxied", "web-alias", "web1"]
    assert len(calls) == len(asked) + 1  # the defaults, once
    config.write_text(SSH_CONFIG + "\nHost extra\n  Port 2\n")  # edited: asked again
    assert resolve_spec(Host("extra"), ssh_config=config).port == 2
    assert resolve_spec(Host("web1"), ssh_config=config).port == 2222
    assert len(calls) == len(asked) + 1 + 3  # extra, web1 and its jump host bastion
