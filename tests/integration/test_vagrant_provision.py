"""vagrant/provision.sh, run for real on a lab host, makes a host nginx_recovery.yml finds healthy.

A lab host is the closest thing to a fresh VM that CI can have: it has every package the
script wants (a namespace host shares /usr with this machine, a systemd host's tree has
them), so the script must install nothing; it starts or reloads nginx with systemctl on a
systemd host and with nginx's own control on a namespace host. Vagrant is imitated
where it matters: the machine key sits in /home/vagrant/.ssh/authorized_keys, and the
playbook then logs in as the `opsfix` user the script made and works through its sudo.
/home is shared with this machine too, so the test gives the host a private one first.
"""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import EXPECTED, REPO, http_body, inventory_copy, run_playbook

pytestmark = pytest.mark.integration

HOST = "web4"
# The checkout is copied into the host, as Vagrant's rsync folder copies it into a VM:
# the host cannot see the controller's /tmp (where a CI checkout may live).
SOURCE = "/run/practice-src"
SCRIPT = f"{SOURCE}/vagrant/provision.sh"


def stage_checkout(lab: Lab) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder in ("vagrant", "templates"):
            tar.add(REPO / folder, arcname=folder)
    data = base64.b64encode(buffer.getvalue()).decode()
    lab.exec(HOST, f"mkdir -p {SOURCE} && base64 -d | tar -xz -C {SOURCE}", input=data)


PACKAGES = ("nginx", "curl", "iproute2", "procps", "sudo", "python3", "python3-jinja2")


def missing_packages() -> list[str]:
    """What the script would install here; on a lab host that would write into /usr."""
    return [
        p
        for p in PACKAGES
        if "Status: install ok installed"
        not in subprocess.run(["dpkg", "-s", p], capture_output=True, text=True).stdout
    ]


@pytest.fixture
def provisioned(clean_lab: Lab) -> Iterator[tuple[Lab, subprocess.CompletedProcess[str]]]:
    missing = missing_packages()
    if missing:
        pytest.skip(f"install {' '.join(missing)} first (scripts/setup.sh does)")
    lab = clean_lab
    stage_checkout(lab)
    lab.exec(HOST, "mount -t tmpfs -o size=8m,mode=0755 practice-home /home")
    try:
        lab.exec(
            HOST,
            "install -d -m 0700 /home/vagrant/.ssh && "
            "cp /root/.ssh/authorized_keys /home/vagrant/.ssh/authorized_keys",
        )
        done = lab.exec(HOST, f"sh {SCRIPT} {SOURCE}", False)
        yield lab, done
    finally:
        lab.exec(
            HOST,
            f"userdel opsfix; rm -f /etc/sudoers.d/opsfix; umount /home; rm -rf {SOURCE}",
            check=False,
        )
        lab.reset(HOST)


def test_provisioning_installs_nothing_present_and_starts_the_site(provisioned) -> None:
    lab, done = provisioned
    assert done.returncode == 0, done.stderr
    assert "packages already installed" in done.stdout
    assert "nginx reloaded (" in done.stdout  # "(systemd)" or "(no systemd)": the host says
    assert EXPECTED in http_body(lab, HOST, "/app/settings")  # SPA deep link
    sudoers = lab.exec(HOST, "visudo -cf /etc/sudoers.d/opsfix && cat /etc/sudoers.d/opsfix")
    assert "opsfix ALL=(ALL) NOPASSWD:ALL" in sudoers.stdout
    keys = lab.exec(HOST, "stat -c '%U %a' /home/opsfix/.ssh/authorized_keys").stdout.split()
    assert keys == ["opsfix", "600"]


def test_a_second_run_changes_nothing_and_reloads(provisioned) -> None:
    lab, first = provisioned
    assert first.returncode == 0, first.stderr
    again = lab.exec(HOST, f"sh {SCRIPT} {SOURCE}")
    assert "user opsfix created" not in again.stdout
    assert "nginx reloaded" in again.stdout


def test_nginx_recovery_finds_the_provisioned_host_healthy(provisioned, tmp_path: Path) -> None:
    """Over SSH as `opsfix`, through its passwordless sudo, as on the VMs."""
    lab, done = provisioned
    assert done.returncode == 0, done.stderr
    inventory = inventory_copy(
        lab, tmp_path / "inventory.yml", ansible_user="opsfix", ansible_become=True
    )
    run = run_playbook(lab, "apply", [HOST], inventory=inventory)
    assert run.returncode == 0, run
    assert run.host(HOST)["status"] == "healthy", run
    assert all(v["outcome"] == "passed" for v in run.host(HOST)["verify"]), run
