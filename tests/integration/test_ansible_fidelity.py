"""What an Ansible user already has, on lab hosts: bastions given in the inventory's ssh
arguments, hosts defined only in an Include'd ssh_config file, become through su and doas.

Each case is judged by the hosts themselves: their sshd logs (one line per connection,
with the address it came from) and their repaired nginx.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.lab import Lab

from .conftest import LAB_SUBNET
from .helpers import (
    EXPECTED,
    break_host,
    config_ok,
    http_body,
    log_marks,
    log_since,
    reset_hosts,
    run_playbook,
    unused_address,
)

pytestmark = pytest.mark.integration

LOGIN = "Accepted publickey"


@pytest.fixture
def hosts(lab: Lab) -> Iterator[Lab]:
    reset_hosts(lab)
    yield lab
    reset_hosts(lab)


def with_host_vars(lab: Lab, path: Path, host: str, **variables: Any) -> Path:
    """The lab's inventory with more variables for one host."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["all"]["children"]["web"]["hosts"][host].update(variables)
    path.write_text(yaml.safe_dump(inventory))
    return path


def logins_from(log: str) -> list[str]:
    return re.findall(rf"{LOGIN} for \S+ from (\S+) port", log)


@pytest.fixture
def only_reachable_through_web1(hosts: Lab) -> Iterator[str]:
    """web2 answers web1 alone: its replies to this machine (the lab's bridge) go nowhere."""
    gateway = str(next(ipaddress.ip_network(LAB_SUBNET).hosts()))  # .1 is the bridge
    hosts.exec("web2", f"ip route add blackhole {gateway}/32")
    try:
        yield gateway
    finally:
        hosts.exec("web2", f"ip route del blackhole {gateway}/32", check=False)


def test_a_host_behind_a_proxy_jump_in_ssh_common_args_is_repaired(
    hosts: Lab, only_reachable_through_web1: str, tmp_path: Path
) -> None:
    web1 = hosts.hosts["web1"]
    direct = run_playbook(hosts, "check", ["web2"], "--timeout", "2")
    assert direct.returncode == 3, str(direct)  # the proof that web2 cannot be reached directly
    inventory = with_host_vars(
        hosts,
        tmp_path / "inventory.yml",
        "web2",
        ansible_ssh_common_args=f"-o ProxyJump=root@{web1}",
    )
    break_host(hosts, "web2", ["conf_d_syntax", "index_emptied"])
    marks = log_marks(hosts)

    run = run_playbook(hosts, "apply", ["web2"], inventory=inventory)

    assert run.returncode == 0, str(run)
    assert run.host("web2")["status"] == "repaired"
    assert config_ok(hosts, "web2")[0] and EXPECTED in http_body(hosts, "web2")
    assert set(logins_from(log_since(hosts, "web2", marks))) == {web1}
    assert logins_from(log_since(hosts, "web1", marks))  # the jump host's own login


def test_a_dead_jump_host_leaves_the_host_unreachable_never_reached_directly(
    hosts: Lab, tmp_path: Path
) -> None:
    """web2 is reachable directly here; the run still must not go there but through -J."""
    dead = unused_address(hosts)
    inventory = with_host_vars(
        hosts, tmp_path / "inventory.yml", "web2", ansible_ssh_extra_args=f"-J root@{dead}"
    )
    marks = log_marks(hosts)

    run = run_playbook(hosts, "check", ["web2"], "--timeout", "2", inventory=inventory)

    assert run.returncode == 3, str(run)
    assert run.host("web2")["status"] == "unreachable"
    assert f"jump host root@{dead}:22" in run.host("web2")["reason"]
    assert log_since(hosts, "web2", marks) == "", "web2 was contacted directly"


def test_a_host_defined_only_in_an_included_ssh_config_is_repaired(
    hosts: Lab, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".ssh" / "conf.d").mkdir(parents=True)
    (home / ".ssh" / "conf.d" / "lab.conf").write_text(
        f"Host web3.behind.example\n  HostName {hosts.hosts['web3']}\n  Port 22\n"
    )
    (home / ".ssh" / "config").write_text(f"Include {home}/.ssh/conf.d/*.conf\n")
    inventory = with_host_vars(
        hosts, tmp_path / "inventory.yml", "web3", ansible_host="web3.behind.example"
    )
    break_host(hosts, "web3", ["nginx_stopped", "index_deleted"])
    marks = log_marks(hosts)

    run = run_playbook(hosts, "apply", ["web3"], inventory=inventory, home=home)

    assert run.returncode == 0, str(run)
    assert run.host("web3")["status"] == "repaired"
    assert EXPECTED in http_body(hosts, "web3")
    assert logins_from(log_since(hosts, "web3", marks))
    without = run_playbook(hosts, "check", ["web3"], "--timeout", "2", inventory=inventory)
    assert without.returncode == 3, str(without)  # no ssh_config: the name resolves nowhere


# --- become through su and doas, a password over the pty --------------------------------------

ROOT_PASSWORD = "r00t-Secret-9"
DEPLOY_PASSWORD = "depl0y-Secret-7"


@pytest.fixture
def deploy_user(hosts: Lab) -> Iterator[str]:
    """web4 gets a login user `deploy` (home in the host's private /tmp, the lab's key)
    and root a password; doas lets deploy become root with deploy's password. Undone
    afterwards."""
    root_before = hosts.exec("web4", "getent shadow root | cut -d: -f2").stdout.strip()
    setup = (
        "useradd -M -d /tmp/deploy -s /bin/sh deploy && mkdir -p /tmp/deploy/.ssh && "
        "for k in /run/opsfix-lab/authorized_keys /root/.ssh/authorized_keys; do "
        '[ -f "$k" ] && cp "$k" /tmp/deploy/.ssh/ && break; done && '
        "chown -R deploy /tmp/deploy && "
        f"printf '%s\\n' {shlex.quote('deploy:' + DEPLOY_PASSWORD)} "
        f"{shlex.quote('root:' + ROOT_PASSWORD)} | chpasswd && "
        "printf 'permit deploy as root\\n' > /etc/doas.conf && chmod 0400 /etc/doas.conf"
    )
    hosts.exec("web4", setup)
    try:
        yield "deploy"
    finally:
        hosts.exec(
            "web4",
            # systemd hosts keep a user manager for a user who logged in: -f removes anyway
            "pkill -KILL -u deploy; userdel -f deploy; rm -rf /tmp/deploy /etc/doas.conf; "
            f"usermod -p {shlex.quote(root_before)} root",
            check=False,
        )


def needs(lab: Lab, program: str) -> None:
    if lab.exec("web4", f"command -v {program}", check=False).returncode != 0:
        pytest.skip(f"{program} is not installed on this lab's hosts (the systemd hosts' tree)")


@pytest.mark.parametrize(("method", "password"), [("su", ROOT_PASSWORD), ("doas", DEPLOY_PASSWORD)])
def test_become_su_and_doas_with_a_password_repair_the_host(
    hosts: Lab, deploy_user: str, tmp_path: Path, method: str, password: str
) -> None:
    needs(hosts, method)
    inventory = with_host_vars(
        hosts,
        tmp_path / "inventory.yml",
        "web4",
        ansible_user=deploy_user,
        ansible_become=True,
        ansible_become_method=method,
        ansible_become_password=password,
    )
    break_host(hosts, "web4", ["conf_d_syntax", "index_emptied"])

    run = run_playbook(hosts, "apply", ["web4"], inventory=inventory)

    assert run.returncode == 0, str(run)
    assert run.host("web4")["status"] == "repaired"
    assert config_ok(hosts, "web4")[0] and EXPECTED in http_body(hosts, "web4")
    assert password not in run.stdout + run.stderr
    owner = hosts.exec("web4", "stat -c %U /etc/nginx/nginx.conf").stdout.strip()
    assert owner == "root"


@pytest.mark.parametrize("method", ["su", "doas"])
def test_a_wrong_become_password_is_reported_plainly_and_changes_nothing(
    hosts: Lab, deploy_user: str, tmp_path: Path, method: str
) -> None:
    needs(hosts, method)
    inventory = with_host_vars(
        hosts,
        tmp_path / "inventory.yml",
        "web4",
        ansible_user=deploy_user,
        ansible_become=True,
        ansible_become_method=method,
        ansible_become_password="not-the-password",
    )
    break_host(hosts, "web4", ["index_emptied"])

    run = run_playbook(hosts, "apply", ["web4"], inventory=inventory)

    assert run.returncode == 2, str(run)
    assert f"{method}: incorrect password" in str(run.host("web4"))
    assert "not-the-password" not in run.stdout + run.stderr
    assert EXPECTED not in http_body(hosts, "web4")
