"""Transports register themselves: built-ins from opsfix.transport.kinds, others from the
`opsfix.transports` entry point group; an inventory can only name a known one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.errors import InventoryError, Location, PluginError
from opsfix.inventory.host import Host
from opsfix.transport import registry
from opsfix.transport.connect import make_connection
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.settings import resolve_spec
from opsfix.transport.spec import ConnectionSpec

EXEC_TRANSPORT = """
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.registry import Transport


class ChrootConnection(LocalConnection):
    def argv(self, command):
        return ["chroot", self.spec.hostname, "/bin/sh", "-c", command]


TRANSPORT = Transport(names=("{name}",), about="a chroot", connect=ChrootConnection)
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where a test installs packages (a module and its dist-info)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.transports.cache_clear()
    yield tmp_path
    registry.transports.cache_clear()


def install(folder: Path, dist: str, module: str, source: str, entry: str) -> None:
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[opsfix.transports]\n{entry}\n")


def test_the_built_ins_answer_to_ansible_s_names() -> None:
    found = registry.transports()
    assert {name: t.name for name, t in found.items()} == {
        "local": "local",
        "ssh": "ssh",
        "smart": "ssh",
        "paramiko": "ssh",
    }
    assert found["ssh"].origin == "built-in opsfix/transport/kinds/ssh.py"
    assert found["local"].testinfra == "local" and found["ssh"].testinfra == "paramiko"


def test_a_spec_gets_the_canonical_name_and_its_transport_s_connection() -> None:
    for name in ("ssh", "smart", "paramiko"):
        assert resolve_spec(Host("w", vars={"ansible_connection": name})).connection == "ssh"
    spec = resolve_spec(Host("ctl", vars={"ansible_connection": "local"}))
    assert isinstance(make_connection(spec), LocalConnection)


def test_an_unknown_connection_is_refused_where_it_was_set() -> None:
    where = Location("inventory/hosts.yml", 7, 27, "ansible_connection")
    host = Host("win1", vars={"ansible_connection": "winrm"}, origins={"ansible_connection": where})
    with pytest.raises(InventoryError) as caught:
        resolve_spec(host)
    assert str(caught.value) == (
        "inventory/hosts.yml:7:27: host 'win1': ansible_connection: refused: unsupported "
        "value 'winrm' (expected one of: local, ssh, smart, paramiko)"
    )


def test_a_transport_s_own_refusal_runs_before_any_host_is_contacted() -> None:
    with pytest.raises(InventoryError, match="su with a password needs a terminal"):
        resolve_spec(
            Host(
                "ctl",
                vars={
                    "ansible_connection": "local",
                    "ansible_become_method": "su",
                    "ansible_become_password": "pw",
                },
            )
        )


def test_an_installed_package_adds_a_transport_in_one_module(installed: Path) -> None:
    install(
        installed,
        "opsfix-chroot",
        "opsfix_chroot",
        EXEC_TRANSPORT.format(name="chroot"),
        "chroot = opsfix_chroot",
    )
    transport = registry.transport_named("chroot")
    assert transport is not None and transport.testinfra == registry.ROUTED
    assert transport.origin == (
        "package opsfix-chroot (opsfix.transports entry point chroot = opsfix_chroot)"
    )
    spec = resolve_spec(Host("jail", vars={"ansible_connection": "chroot", "ansible_host": "/"}))
    connection = make_connection(spec)
    assert connection.run("echo $((6 * 7))").stdout == "42\n"


def test_a_package_may_not_take_a_built_in_s_name(installed: Path) -> None:
    install(installed, "evil", "evil_ssh", EXEC_TRANSPORT.format(name="ssh"), "ssh = evil_ssh")
    with pytest.raises(PluginError) as caught:
        registry.transports()
    assert str(caught.value) == (
        "package evil (opsfix.transports entry point ssh = evil_ssh): transport name 'ssh' "
        "is already provided by built-in opsfix/transport/kinds/ssh.py; a transport never "
        "takes another's name"
    )


@pytest.mark.parametrize(
    ("module", "source", "entry", "message"),
    [
        (
            "odd_a",
            "TRANSPORT = 'ssh'\n",
            "odd = odd_a",
            "odd_a.TRANSPORT is not an opsfix Transport",
        ),
        ("odd_b", "raise ImportError('no lib')\n", "odd = odd_b", "failed to import: ImportError"),
        (
            "odd_c",
            EXEC_TRANSPORT.format(name="jail"),
            "chroot = odd_c",
            "the transport's first name is 'jail'; it is listed under 'chroot'",
        ),
    ],
)
def test_a_malformed_package_transport_is_named(
    installed: Path, module: str, source: str, entry: str, message: str
) -> None:
    install(installed, "odd", module, source, entry)
    with pytest.raises(PluginError) as caught:
        registry.transports()
    assert str(caught.value).startswith(f"package odd (opsfix.transports entry point {entry}): ")
    assert message in str(caught.value)


def test_reading_the_declarations_loads_no_paramiko() -> None:
    code = (
        "import sys\n"
        "from opsfix.transport.registry import transports\n"
        "transports()\n"
        "print('paramiko' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_verify_names_a_routed_host_by_its_transport_s_backend(installed: Path) -> None:
    from opsfix.verify.suite import _hostspec

    install(installed, "c", "c_mod", EXEC_TRANSPORT.format(name="chroot"), "chroot = c_mod")
    spec = ConnectionSpec(host="jail 1", hostname="/", connection="chroot", become=True)
    assert _hostspec("jail 1", spec, set()) == (
        "opsfix://jail-1",
        "opsfix://jail-1?sudo=true&sudo_user=root",
    )
