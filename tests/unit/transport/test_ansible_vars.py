"""The one rule: every ansible_* variable and ssh option is honoured or refused, with why."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from opsfix.errors import InventoryError
from opsfix.inventory.host import Host
from opsfix.transport import ansible_vars, ssh_options
from opsfix.transport.settings import resolve_spec

# Ansible's own plugins whose documented variables an Ansible inventory may carry.
PLUGINS = (
    "ansible.plugins.connection.ssh",
    "ansible.plugins.connection.paramiko_ssh",
    "ansible.plugins.connection.local",
    "ansible.plugins.become.sudo",
    "ansible.plugins.become.su",
    "ansible.plugins.shell.sh",
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def documented_variables() -> set[str]:
    """Every variable Ansible's connection, become and shell plugins document, and the
    magic connection variables (ansible-core is a test dependency)."""
    pytest.importorskip("ansible", reason="ansible-core is in the dev extra")
    from ansible import constants
    from ansible.plugins.loader import fragment_loader
    from ansible.utils.plugin_docs import get_docstring

    names: set[str] = set()
    for module in PLUGINS:
        doc = get_docstring(importlib.import_module(module).__file__, fragment_loader)[0]
        for option in (doc.get("options") or {}).values():
            names.update(v["name"] for v in option.get("vars") or [])
    for aliases in constants.MAGIC_VARIABLE_MAPPING.values():
        names.update(aliases)
    return {n for n in names if n.startswith("ansible_")}


def test_every_documented_variable_is_honoured_or_refused() -> None:
    names = documented_variables()
    assert len(names) > 60  # the walk found Ansible's lists
    unlisted = sorted(n for n in names if n not in ansible_vars.HONOURED | ansible_vars.REFUSED)
    assert unlisted == []
    assert not set(ansible_vars.HONOURED) & set(ansible_vars.REFUSED)


@pytest.mark.parametrize("name", sorted(ansible_vars.REFUSED))
def test_each_refused_variable_stops_the_run_naming_host_variable_and_why(name: str) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_spec(Host("web1", vars={name: "x"}))
    why = ansible_vars.REFUSED[name]
    assert caught.value.message == f"host 'web1': {name}: refused: {why}"


@pytest.mark.parametrize("name", ["ansible_facts", "ansible_limit", "ansible_version"])
def test_reserved_variables_are_refused(name: str) -> None:
    with pytest.raises(InventoryError, match=f"host 'web1': {name}: refused: reserved"):
        resolve_spec(Host("web1", vars={name: "x"}))


def test_an_unknown_ansible_variable_is_refused_with_the_closest_name() -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_spec(Host("web1", vars={"ansible_becom_user": "www-data"}))
    assert caught.value.message == (
        "host 'web1': ansible_becom_user: refused: unknown to opsfix, so it cannot tell what "
        "it would change (did you mean 'ansible_become_user'?)"
    )


def test_honoured_variables_that_need_nothing_pass() -> None:
    inert = {
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_perl_interpreter": "/usr/bin/perl",
        "ansible_pipelining": True,
        "ansible_control_path": "%(directory)s/%%h",
        "ansible_remote_tmp": "/var/tmp",
        "other_var": "not Ansible's",
    }
    assert resolve_spec(Host("web1", vars=inert)).hostname == "web1"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"ansible_become_method": "runas"},
            "ansible_become_method: refused: 'runas' is not supported (expected one of: "
            "sudo, su, doas)",
        ),
        (
            {"ansible_become_method": "pbrun"},
            "ansible_become_method: refused: 'pbrun' is not supported",
        ),
        ({"ansible_connection": "winrm"}, "ansible_connection: refused: unsupported value"),
        ({"ansible_shell_type": "csh"}, "ansible_shell_type: refused: 'csh': opsfix's scripts"),
        (
            {"ansible_shell_executable": "/bin/bash"},
            "ansible_shell_executable: refused: '/bin/bash'",
        ),
        (
            {"ansible_host_key_checking": False},
            "ansible_host_key_checking: refused: false: it would accept a changed host key",
        ),
        (
            {"ansible_ssh_host_key_checking": "no"},
            "ansible_ssh_host_key_checking: refused: false: it would accept a changed host key",
        ),
    ],
)
def test_values_opsfix_cannot_honour_are_refused(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_spec(Host("web1", vars=variables))
    assert caught.value.message.startswith(f"host 'web1': {message}")


@pytest.mark.parametrize("method", ["sudo", "su", "doas"])
def test_become_methods_opsfix_has(method: str) -> None:
    spec = resolve_spec(Host("web1", vars={"ansible_become_method": method}))
    assert spec.become_method == method


@pytest.mark.parametrize("connection", ["ssh", "smart", "paramiko"])
def test_ssh_connection_names(connection: str) -> None:
    assert resolve_spec(Host("a", vars={"ansible_connection": connection})).connection == "ssh"


def test_host_key_checking_true_and_timeout_are_honoured() -> None:
    host = Host("a", vars={"ansible_host_key_checking": True, "ansible_timeout": 7})
    assert resolve_spec(host, connect_timeout=3).connect_timeout == 7


# --- ssh arguments ---------------------------------------------------------------------------


def spec_with(**variables: Any) -> Any:
    return resolve_spec(Host("web1", vars=variables))


def test_common_args_proxy_jump_and_friends_are_applied() -> None:
    spec = spec_with(
        ansible_host="10.0.0.5",
        ansible_ssh_common_args="-o ProxyJump=jumper@192.0.2.1:2200 -oCompression=yes",
        ansible_ssh_extra_args="-p 2222 -l deploy -i /keys/web",
    )
    assert (spec.hostname, spec.port, spec.user, spec.key_file) == (
        "10.0.0.5",
        2222,
        "deploy",
        "/keys/web",
    )
    assert spec.proxy_jump == "jumper@192.0.2.1:2200"
    assert spec.compress


def test_j_flag_and_quoted_proxy_command_with_tokens() -> None:
    assert spec_with(ansible_ssh_common_args="-J bastion").proxy_jump == "bastion:22"
    spec = spec_with(
        ansible_host="10.0.0.9",
        ansible_user="ops",
        ansible_ssh_common_args='-o ProxyCommand="ssh -W %h:%p -q %r@gateway"',
    )
    assert spec.proxy_command == "ssh -W 10.0.0.9:22 -q ops@gateway"
    assert spec.proxy_jump is None


def test_first_value_wins_in_ansibles_order() -> None:
    """ssh_args, then the inventory's own variables, then common args, then extra args."""
    spec = spec_with(
        ansible_ssh_args="-o Port=1001",
        ansible_port=1002,
        ansible_user="from-var",
        ansible_ssh_common_args="-o User=from-common -o Port=1003",
        ansible_ssh_extra_args="-l from-extra -o ConnectTimeout=4",
    )
    assert (spec.port, spec.user, spec.connect_timeout) == (1001, "from-var", 4)


def test_arguments_win_over_ssh_config(home: Path) -> None:
    config = home / "config"
    config.write_text("Host web1\n  ProxyJump cfgjump\n  Port 2200\n  User cfguser\n")
    spec = resolve_spec(
        Host("web1", vars={"ansible_ssh_common_args": "-o ProxyCommand='nc %h %p'"}),
        ssh_config=config,
    )
    assert (spec.proxy_command, spec.proxy_jump, spec.port, spec.user) == (
        "nc web1 2200",
        None,  # ssh takes the first of ProxyCommand and ProxyJump only
        2200,
        "cfguser",
    )


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ("-A", "'-A': opsfix applies only -o Key=Value, -J, -p, -i, -l and -C"),
        ("-t -t", "'-t': opsfix applies only"),
        ("-L 8080:localhost:80", "'-L': opsfix applies only"),
        ("-o", "-o needs a value"),
        ("-o ProxyJump", "-o 'ProxyJump': expected Key=Value"),
        ("-o 'unbalanced", '"-o \'unbalanced" cannot be split as a shell would: No closing'),
        ("-o Frobnicate=yes", "frobnicate=yes: an ssh option opsfix does not know"),
    ],
)
def test_ssh_arguments_opsfix_cannot_apply_are_refused(args: str, why: str) -> None:
    with pytest.raises(InventoryError) as caught:
        spec_with(ansible_ssh_extra_args=args)
    assert caught.value.message.startswith(f"host 'web1': ansible_ssh_extra_args: refused: {why}")


@pytest.mark.parametrize("option", sorted(ssh_options.REFUSED))
def test_each_refused_ssh_option_names_host_variable_and_why(option: str) -> None:
    with pytest.raises(InventoryError) as caught:
        spec_with(ansible_ssh_common_args=f"-o {option}=value")
    why = ssh_options.REFUSED[option]
    assert caught.value.message == (
        f"host 'web1': ansible_ssh_common_args: refused: {option}=value: {why}"
    )


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ("StrictHostKeyChecking=no", ssh_options.WEAK_CHECKING),
        ("StrictHostKeyChecking=off", ssh_options.WEAK_CHECKING),
        ("UserKnownHostsFile=/dev/null", ssh_options.WEAK_KNOWN_HOSTS),
    ],
)
def test_weaker_host_key_checking_is_refused_unless_trust_new_host_keys(
    option: str, why: str
) -> None:
    host = Host("web1", vars={"ansible_ssh_common_args": f"-o {option}"})
    with pytest.raises(InventoryError) as caught:
        resolve_spec(host)
    key, value = option.split("=")
    assert caught.value.message == (
        f"host 'web1': ansible_ssh_common_args: refused: {key.lower()}={value}: {why}"
    )
    assert "--trust-new-host-keys" in why
    spec = resolve_spec(host, trust_new_host_keys=True)  # what the flag allows, no more
    assert spec.trust_new_host_keys
    assert "/dev/null" not in spec.known_hosts_files


def test_accept_new_is_trust_on_first_use_for_that_host() -> None:
    spec = spec_with(ansible_ssh_common_args="-o StrictHostKeyChecking=accept-new")
    assert spec.trust_new_host_keys
    assert not spec_with().trust_new_host_keys


def test_ansibles_default_ssh_args_are_accepted() -> None:
    spec = spec_with(ansible_ssh_args="-C -o ControlMaster=auto -o ControlPersist=60s")
    assert spec.compress


def test_a_refused_ssh_config_option_names_the_file(home: Path) -> None:
    config = home / "config"
    config.write_text("Host web1\n  RemoteCommand /bin/true\n")
    with pytest.raises(InventoryError) as caught:
        resolve_spec(Host("web1"), ssh_config=config)
    assert caught.value.message == (
        f"host 'web1': ssh_config {config}: refused: remotecommand=/bin/true: "
        f"{ssh_options.REFUSED['remotecommand']}"
    )


def test_a_weak_ssh_config_is_refused_too(home: Path) -> None:
    config = home / "config"
    config.write_text("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    with pytest.raises(InventoryError, match=r"stricthostkeychecking=(no|false): it would accept"):
        resolve_spec(Host("web1"), ssh_config=config)
    assert resolve_spec(Host("web1"), ssh_config=config, trust_new_host_keys=True)
