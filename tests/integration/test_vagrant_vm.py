"""The Vagrantfile, booted: `vagrant up --provider=libvirt` brings up web1 from the locally
built box (vagrant/build-box.sh), and `opsfix apply -i inventory/vagrant.yml
playbooks/nginx_recovery.yml` repairs it over the VM's private network after a drill broke
it. Slow (several minutes under qemu's emulation), so marked `vm`; a developer skips it with
OPSFIX_SKIP_VM=1. The VM's networks lie in this session's address range (OPSFIX_TEST_LAB's
subnet, 8 and 9 subnets on), clear of other labs.

The shipped inventory is used as it is: opsfix runs from a folder whose `.vagrant` is the
test's VAGRANT_DOTFILE_PATH (a relative key path is relative to where opsfix runs, as in
Ansible), and an inventory given after it moves `vagrant_net` where OPSFIX_VAGRANT_NET moved
the VMs.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LAB_SUBNET
from .helpers import REPO, opsfix_with_env

pytestmark = [pytest.mark.integration, pytest.mark.vm]

BOX_SCRIPT = REPO / "vagrant" / "build-box.sh"
INVENTORY = REPO / "inventory" / "vagrant.yml"
# Under qemu's emulation a login that starts the user's systemd manager takes longer than
# the default 10 s to open a channel.
SLOW = ("--timeout", "60")
NEEDS = ("vagrant", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "mmdebstrap")


def subnet(offset: int) -> ipaddress.IPv4Network:
    net = ipaddress.ip_network(LAB_SUBNET)
    first = int(net.network_address) + offset * net.num_addresses
    return ipaddress.IPv4Network((first, 24))


def private_net() -> str:
    """The private network's first three octets (OPSFIX_VAGRANT_NET, vagrant_net)."""
    return str(subnet(9).network_address).rpartition(".")[0]


def vagrant_env(project: Path) -> dict[str, str]:
    """Vagrant's state in `project`/.vagrant, never the checkout's own (nor one the caller
    set: the test destroys what it holds)."""
    return {
        **os.environ,
        "VAGRANT_DOTFILE_PATH": str(project / ".vagrant"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "OPSFIX_VAGRANT_NET": private_net(),
        "OPSFIX_LIBVIRT_MGMT": str(subnet(8)),
    }


def vagrant(env: dict[str, str], *args: str, timeout: float = 1500) -> str:
    done = subprocess.run(
        ["vagrant", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"vagrant {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr}"
    return done.stdout


def start_libvirt() -> None:
    """Where systemd does not run libvirt, start its daemons by hand (as setup.sh does)."""
    for daemon in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon, "-d"], check=True, timeout=30)


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """web1 up under libvirt; destroyed afterwards."""
    if os.environ.get("OPSFIX_SKIP_VM") == "1":
        pytest.skip("OPSFIX_SKIP_VM=1: the practice VM test is skipped")
    missing = [tool for tool in NEEDS if not shutil.which(tool)]
    if missing or os.geteuid() != 0:
        pytest.skip(f"the VM test needs root and {', '.join(missing) or 'nothing else'}")
    start_libvirt()
    subprocess.run(["bash", str(BOX_SCRIPT)], check=True, capture_output=True, timeout=1800)
    env = vagrant_env(tmp_path_factory.mktemp("vagrant-project"))
    try:
        vagrant(env, "up", "web1", "--provider=libvirt")
        yield env
    finally:
        subprocess.run(["vagrant", "destroy", "-f"], cwd=REPO, env=env, timeout=600, check=False)


def test_opsfix_repairs_a_vm_a_drill_broke_over_its_network(
    vm: dict[str, str], tmp_path: Path
) -> None:
    env = {**vm, "HOME": str(tmp_path), "OPSFIX_PERSIST": "0", "OPSFIX_STATE_DIR": str(tmp_path)}
    project = Path(vm["VAGRANT_DOTFILE_PATH"]).parent
    moved = tmp_path / "moved.yml"
    moved.write_text(
        f"all:\n  children:\n    web:\n      vars:\n        vagrant_net: {private_net()}\n"
    )
    inv = ["-i", INVENTORY, "-i", moved, "--limit", "web1", "--trust-new-host-keys", *SLOW]
    playbook = REPO / "playbooks" / "nginx_recovery.yml"

    # The first run on the healthy VM records its known-good nginx config.
    first = opsfix_with_env(
        "apply", playbook, *inv, "--format", "json", env=env, timeout=600, cwd=project
    )
    assert first.returncode == 0, first
    assert first.host("web1")["status"] == "healthy", first
    broke = opsfix_with_env("drill", "break", "bad_config", *inv, env=env, timeout=600, cwd=project)
    assert broke.returncode == 0, broke
    found = opsfix_with_env("check", playbook, *inv, env=env, timeout=600, cwd=project)
    assert found.returncode == 2, found
    repaired = opsfix_with_env(
        "apply", playbook, *inv, "--format", "json", env=env, timeout=600, cwd=project
    )
    assert repaired.returncode == 0, repaired
    assert repaired.host("web1")["status"] == "repaired", repaired
    again = opsfix_with_env("check", playbook, *inv, env=env, timeout=600, cwd=project)
    assert again.returncode == 0, again
    # Over the private network: that is the address whose host key the runs recorded.
    known = subprocess.run(
        ["ssh-keygen", "-F", f"{private_net()}.11", "-f", tmp_path / ".ssh" / "known_hosts"],
        capture_output=True,
    )
    assert known.returncode == 0, known
    reset = opsfix_with_env("drill", "reset", *inv, env=env, timeout=600, cwd=project)
    assert reset.returncode == 0, reset


def test_an_inventory_from_vagrant_reaches_the_vm_on_its_management_network(
    vm: dict[str, str], tmp_path: Path
) -> None:
    inventory = tmp_path / "vagrant.yml"
    env = {**vm, "HOME": str(tmp_path), "OPSFIX_PERSIST": "0", "OPSFIX_STATE_DIR": str(tmp_path)}
    ssh_config = tmp_path / "ssh-config"
    ssh_config.write_text(vagrant(vm, "ssh-config", "web1"))
    made = opsfix_with_env(
        "inventory", "from-vagrant", "--ssh-config", str(ssh_config), "-o", str(inventory), env=env
    )
    assert made.returncode == 0, made
    # vagrant-libvirt reaches a VM on its management network: a real libvirt network
    [host] = [
        line.split()[1] for line in inventory.read_text().splitlines() if "ansible_host" in line
    ]
    assert ipaddress.ip_address(host) in subnet(8), host
    inv = ["-i", str(inventory), "--limit", "web1", "--trust-new-host-keys", *SLOW]
    healthy = opsfix_with_env(
        "check", REPO / "playbooks" / "practice_app.yml", *inv, env=env, timeout=600
    )
    assert healthy.returncode == 0, healthy
