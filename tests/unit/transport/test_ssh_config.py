"""ssh_config resolution: OpenSSH's `ssh -G` and the paramiko fallback, on the same configs."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.errors import InventoryError
from opsfix.inventory.host import Host
from opsfix.transport import ssh_config
from opsfix.transport.settings import resolve_spec
from opsfix.transport.spec import ConnectionSpec

RESOLVERS = ("openssh", "paramiko")


@pytest.fixture(params=RESOLVERS)
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs once through `ssh -G` and once through the fallback parser."""
    if request.param == "openssh" and ssh_config.ssh_program() is None:
        pytest.skip("the OpenSSH client is not installed (apt install openssh-client)")
    if request.param == "paramiko":
        monkeypatch.setattr(ssh_config, "ssh_program", lambda: None)
    monkeypatch.setattr(ssh_config, "_cache", {})
    yield request.param


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def spec(name: str, config: Path, **variables: object) -> ConnectionSpec:
    return resolve_spec(Host(name, vars=dict(variables)), ssh_config=config)


def where(s: ConnectionSpec) -> tuple[str, int, str | None]:
    return s.hostname, s.port, s.user


def test_a_host_defined_only_in_an_included_file(resolver: str, home: Path) -> None:
    (home / "conf.d").mkdir()
    (home / "conf.d" / "10-web.conf").write_text(
        "Host web7\n  HostName 192.0.2.7\n  Port 2207\n  User deploy\n"
    )
    (home / "conf.d" / "20-db.conf").write_text("Host db*\n  User dba\n")
    (home / "conf.d" / "notes.txt").write_text("Host web7\n  Port 1\n")  # not in the glob
    config = home / "config"
    config.write_text(f"Include {home}/conf.d/*.conf\n\nHost *\n  User everyone\n")
    assert where(spec("web7", config)) == ("192.0.2.7", 2207, "deploy")
    assert where(spec("db1", config)) == ("db1", 22, "dba")
    assert where(spec("other", config)) == ("other", 22, "everyone")


def test_an_include_inside_a_host_block_applies_within_it(resolver: str, home: Path) -> None:
    (home / "common").write_text("Port 2201\n")
    config = home / "config"
    config.write_text(f"Host web*\n  Include {home}/common\n  User after\nHost *\n  User all\n")
    assert where(spec("web1", config)) == ("web1", 2201, "after")
    assert where(spec("db1", config)) == ("db1", 22, "all")


def test_first_value_wins_and_match_host(resolver: str, home: Path) -> None:
    config = home / "config"
    config.write_text(
        "Match host 10.1.*\n  User net\n"
        "Host app\n  HostName 10.1.0.4\n"
        "Host app\n  Port 2300\n  HostName ignored.example\n"
        "Match originalhost app\n  User original\n"
        "Host *\n  Port 2400\n"
    )
    assert where(spec("app", config)) == ("10.1.0.4", 2300, "original")
    assert where(spec("10.1.9.9", config)) == ("10.1.9.9", 2400, "net")


def test_match_exec_runs_its_command(
    resolver: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # paramiko's `invoke.run` reads stdin
    config = home / "config"
    config.write_text('Match exec "test %h = box"\n  User matched\nHost *\n  User other\n')
    assert spec("box", config).user == "matched"
    assert spec("crate", config).user == "other"


def test_tokens_are_expanded(resolver: str, home: Path) -> None:
    config = home / "config"
    config.write_text(
        "Host web*\n  HostName %h.example.org\n  User ops\n"
        "  IdentityFile ~/.ssh/id_%h_%r\n  ProxyCommand nc -X connect %h %p\n"
    )
    s = spec("web2", config)
    assert s.hostname == "web2.example.org"
    assert s.key_file == str(home / ".ssh" / "id_web2.example.org_ops")
    assert s.proxy_command == "nc -X connect web2.example.org 22"


def test_proxy_jump_hops_resolve_through_the_config(resolver: str, home: Path) -> None:
    config = home / "config"
    config.write_text(
        "Host inner\n  ProxyJump edge,jumper@mid:2022\n"
        "Host edge\n  HostName 192.0.2.1\n  User gate\n  Port 2200\n"
    )
    assert spec("inner", config).proxy_jump == "gate@192.0.2.1:2200,jumper@mid:2022"
    assert spec("other", config).proxy_jump is None


def test_settings_the_config_does_not_set_stay_unset(resolver: str, home: Path) -> None:
    config = home / "config"
    config.write_text("Host named\n  Port 2000\n")
    s = spec("plain", config)
    assert (s.user, s.key_file, s.proxy_jump, s.proxy_command) == (None, None, None, None)
    assert s.known_hosts_files == (str(home / ".ssh" / "known_hosts"),)


def test_a_nested_block_inside_an_included_block(resolver: str, home: Path) -> None:
    """OpenSSH applies an included file's own Host blocks only inside the outer block;
    paramiko cannot say that, so the fallback refuses instead of guessing."""
    (home / "inc").write_text("Port 1111\nHost b\n  Port 2222\n")
    config = home / "config"
    config.write_text(f"Host a\n  Include {home}/inc\n  User after\n")
    if resolver == "paramiko":
        with pytest.raises(InventoryError, match="only OpenSSH resolves that"):
            spec("b", config)
        return
    assert where(spec("a", config)) == ("a", 1111, "after")
    assert where(spec("b", config)) == ("b", 22, None)


def test_a_broken_config_is_an_input_error(home: Path) -> None:
    if ssh_config.ssh_program() is None:
        pytest.skip("the OpenSSH client is not installed (apt install openssh-client)")
    config = home / "config"
    config.write_text("Host a\n  Frobnicate yes\n")
    with pytest.raises(
        InventoryError,
        match=r"ssh_config cannot be read: .*line 2: Bad configuration option: frobnicate",
    ):
        spec("a", config)


def test_many_hosts_are_looked_up_together(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_config, "_cache", {})
    config = home / "config"
    config.write_text("Host web*\n  User ops\n")
    ssh_config.prefetch([f"web{i}" for i in range(6)], config)
    assert {key[3] for key in ssh_config._cache} == {f"web{i}" for i in range(6)}
