"""The lab's plan: names, addresses and generated text, checked without root or hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opsfix.errors import LabError
from opsfix.lab.plan import (
    BRIDGE_MAX_PORTS,
    inventory_text,
    known_hosts_text,
    neighbour_limits,
    network_down_commands,
    network_up_commands,
    plan_lab,
    sshd_config_text,
)


def test_hosts_are_numbered_from_one_with_addresses_from_dot_eleven() -> None:
    plan = plan_lab(3, "opsfix", "10.231.0.0/24")
    assert [(h.name, h.address, h.netns, h.veth) for h in plan.hosts] == [
        ("web1", "10.231.0.11", "opsfix-web1", "opsfix-v1"),
        ("web2", "10.231.0.12", "opsfix-web2", "opsfix-v2"),
        ("web3", "10.231.0.13", "opsfix-web3", "opsfix-v3"),
    ]
    assert (plan.bridge, plan.gateway) == ("opsfix-br", "10.231.0.1")


def test_a_hundred_hosts_fit_the_default_subnet_and_interface_names() -> None:
    plan = plan_lab(100, "opsfix", "10.231.0.0/24")
    assert plan.hosts[-1].address == "10.231.0.110"
    assert max(len(h.veth) for h in plan.hosts) <= 15


def test_a_thousand_hosts_fit_a_slash_22_and_one_bridge() -> None:
    plan = plan_lab(1000, "obench", "10.244.0.0/22")
    assert (plan.hosts[0].address, plan.hosts[-1].address) == ("10.244.0.11", "10.244.3.242")
    assert len({h.address for h in plan.hosts}) == 1000
    assert max(len(h.veth) for h in plan.hosts) <= 15 and plan.hosts[-1].veth == "obench-v1000"
    assert plan_lab(1012, "o", "10.244.0.0/22").hosts[-1].address == "10.244.3.254"
    assert len(network_up_commands(plan)) == 3 + 3 * 1000


def test_a_lab_wants_room_in_the_neighbour_table_for_two_entries_a_host() -> None:
    limits = neighbour_limits(1000)
    assert sorted(limits.values()) == [2000, 4000, 8000]
    assert sorted(limits) == [f"/proc/sys/net/ipv4/neigh/default/gc_thresh{i}" for i in (1, 2, 3)]
    assert max(neighbour_limits(3).values()) < 128  # small labs leave the defaults alone


@pytest.mark.parametrize(
    ("count", "name", "subnet", "message"),
    [
        (0, "opsfix", "10.231.0.0/24", "at least 1 host"),
        (2, "Ops-Fix", "10.231.0.0/24", "lowercase letters and digits"),
        (2, "", "10.231.0.0/24", "lowercase letters and digits"),
        (2, "averyverylongname", "10.231.0.0/24", "exceeds 15 characters"),
        (2, "opsfix", "10.231.0.1/24", "has host bits set"),
        (2, "opsfix", "not-a-net", "does not appear to be"),
        (2, "opsfix", "fd00::/64", "expected an IPv4 network"),
        (6, "opsfix", "10.231.0.0/28", "holds at most 4 lab hosts"),
        (245, "opsfix", "10.231.0.0/24", "holds at most 244 lab hosts"),
        (1013, "o", "10.231.0.0/22", "holds at most 1012 lab hosts"),
        (BRIDGE_MAX_PORTS + 1, "o", "10.231.0.0/21", "one Linux bridge, which holds at most 1024"),
    ],
)
def test_bad_requests_are_refused_with_the_bad_value(
    count: int, name: str, subnet: str, message: str
) -> None:
    with pytest.raises(LabError, match=message):
        plan_lab(count, name, subnet)


def test_network_commands_build_and_remove_the_same_objects() -> None:
    plan = plan_lab(2, "oft", "10.232.0.0/24")
    assert network_up_commands(plan) == [
        "link add oft-br type bridge",
        "addr add 10.232.0.1/24 dev oft-br",
        "link set oft-br up",
        "netns add oft-web1",
        "link add oft-v1 type veth peer name eth0 netns oft-web1",
        "link set oft-v1 master oft-br up",
        "netns add oft-web2",
        "link add oft-v2 type veth peer name eth0 netns oft-web2",
        "link set oft-v2 master oft-br up",
    ]
    assert network_down_commands(plan) == [
        "link del oft-v1",
        "link del oft-v2",
        "netns del oft-web1",
        "netns del oft-web2",
        "link del oft-br",
    ]


def test_inventory_is_ansible_yaml_with_the_lab_vars() -> None:
    plan = plan_lab(2, "opsfix", "10.231.0.0/24")
    text = inventory_text(plan, Path("/var/lib/opsfix-lab"), Path("/opt/app/webapp"))
    assert "        web1: {ansible_host: 10.231.0.11}\n" in text
    assert yaml.safe_load(text) == {
        "all": {
            "children": {
                "web": {
                    "hosts": {
                        "web1": {"ansible_host": "10.231.0.11"},
                        "web2": {"ansible_host": "10.231.0.12"},
                    },
                    "vars": {
                        "ansible_user": "root",
                        "ansible_port": 22,
                        "ansible_ssh_private_key_file": "/var/lib/opsfix-lab/id_ed25519",
                        "opsfix_known_hosts_file": "/var/lib/opsfix-lab/known_hosts",
                        "practice": True,
                        "web_root": "/var/www/html",
                        "expected_content": "opsfix practice app",
                        "spa_deep_link": "/app/settings",
                        "release_dir": "/opt/app/webapp",
                    },
                }
            }
        }
    }


@pytest.mark.parametrize("state_dir", ["/tmp/a b/lab", "/tmp/x: y/#lab", "/tmp/'q'/lab", "/tmp/é"])
def test_inventory_quotes_paths_that_yaml_would_misread(state_dir: str) -> None:
    text = inventory_text(plan_lab(1, "opsfix", "10.231.0.0/24"), Path(state_dir))
    variables = yaml.safe_load(text)["all"]["children"]["web"]["vars"]
    assert variables["ansible_ssh_private_key_file"] == f"{state_dir}/id_ed25519"


def test_known_hosts_keys_each_host_key_by_its_address() -> None:
    plan = plan_lab(2, "opsfix", "10.231.0.0/24")
    keys = {"web1": "ssh-ed25519 AAAA1 root@web1", "web2": "ssh-ed25519 AAAA2 root@web2"}
    assert known_hosts_text(plan, keys) == (
        "10.231.0.11 ssh-ed25519 AAAA1\n10.231.0.12 ssh-ed25519 AAAA2\n"
    )


def test_sshd_config_allows_root_by_key_only_on_the_host_address() -> None:
    host = plan_lab(1, "opsfix", "10.231.0.0/24").hosts[0]
    lines = set(sshd_config_text(host, "/run/opsfix-lab").splitlines())
    assert {
        "ListenAddress 10.231.0.11:22",
        "HostKey /run/opsfix-lab/ssh_host_ed25519_key",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PidFile /run/sshd.pid",
        "AuthorizedKeysFile /run/opsfix-lab/authorized_keys .ssh/authorized_keys",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
    } <= lines
