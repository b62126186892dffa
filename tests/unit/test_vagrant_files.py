"""The Vagrantfile is valid for Vagrant and Ruby, and inventory/vagrant.yml agrees with it.

CI cannot boot VMs. `vagrant validate -p` (Debian's vagrant 2.3.4 validates without a
provider that way) catches core errors such as a missing provisioning script; `ruby -c`
catches syntax errors. The Vagrantfile is then evaluated by Ruby against a stub of
Vagrant's configuration API that records each machine's name, address and provisioner,
and those are compared with the inventory opsfix reads.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from opsfix.inventory import load_inventory
from opsfix.playbook.templating import LazyVars, TemplateEngine
from opsfix.runner import connection_spec

ROOT = Path(__file__).resolve().parents[2]
VAGRANTFILE = ROOT / "Vagrantfile"
INVENTORY = ROOT / "inventory" / "vagrant.yml"
VIRTUALBOX_RANGE = ipaddress.ip_network("192.168.56.0/21")
LIBVIRT_MANAGEMENT = ipaddress.ip_network("192.168.121.0/24")

needs_ruby = pytest.mark.skipif(not shutil.which("ruby"), reason="needs ruby (apt install ruby)")
needs_vagrant = pytest.mark.skipif(
    not shutil.which("vagrant"),
    reason="needs vagrant (apt install --no-install-recommends vagrant)",
)

# The libvirt driver is given: probing KVM (vagrant/kvm-probe.sh) takes seconds.
NO_PROBE = {**os.environ, "OPSFIX_LIBVIRT_DRIVER": "qemu"}

# Records what the Vagrantfile declares; any other setting is accepted and ignored.
RECORDER = r"""
require "json"
class Recorder
  def initialize(log, name) @log, @name = log, name end
  def vm() self end
  def define(name, *_args)
    @log[name.to_s] = {"networks" => [], "provisioners" => []}
    yield Recorder.new(@log, name.to_s) if block_given?
  end
  def box=(value) (@name ? @log[@name] : @log)["box"] = value end
  def hostname=(value) @log[@name]["hostname"] = value if @name end
  def network(kind, **opts)
    @log[@name]["networks"] << {"kind" => kind, "ip" => opts[:ip]} if @name
  end
  def provision(kind, **opts)
    @log[@name]["provisioners"] << {"kind" => kind, "path" => opts[:path]} if @name
  end
  def provider(name, *_args) (@log["providers"] ||= []) << name; yield self if block_given? end
  def method_missing(*_args, **_opts) yield self if block_given?; self end
  def respond_to_missing?(*_args) true end
end
module Vagrant
  LOG = {}
  def self.configure(_version) yield Recorder.new(LOG, nil) end
end
load ARGV[0]
puts JSON.generate(Vagrant::LOG)
"""


@pytest.fixture(scope="module")
def declared() -> dict:
    """What the Vagrantfile declares, evaluated by Ruby."""
    if not shutil.which("ruby"):
        pytest.skip("needs ruby (apt install ruby)")
    done = subprocess.run(
        ["ruby", "-e", RECORDER, str(VAGRANTFILE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=NO_PROBE,
    )
    return dict(json.loads(done.stdout))


def machines(declared: dict) -> dict[str, str]:
    """Machine name -> its private-network address."""
    found = {}
    for name, machine in declared.items():
        if isinstance(machine, dict) and "networks" in machine:
            [network] = [n for n in machine["networks"] if n["kind"] == "private_network"]
            found[name] = network["ip"]
    return found


@needs_ruby
def test_ruby_accepts_the_syntax() -> None:
    done = subprocess.run(["ruby", "-c", str(VAGRANTFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Syntax OK" in done.stdout


@needs_vagrant
def test_vagrant_validates_it_without_a_provider(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VAGRANT_HOME": str(tmp_path / "home"),  # not the user's ~/.vagrant.d
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"),  # no .vagrant/ left in the checkout
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        **NO_PROBE,
    }
    done = subprocess.run(
        ["vagrant", "validate", "-p"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout


@needs_vagrant
def test_vagrant_validate_catches_a_missing_provisioning_script(tmp_path: Path) -> None:
    """The check above is not vacuous: a Vagrantfile whose script is gone fails it."""
    shutil.copy(VAGRANTFILE, tmp_path / "Vagrantfile")
    env = {**NO_PROBE, "VAGRANT_HOME": str(tmp_path / "home"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    done = subprocess.run(
        ["vagrant", "validate", "-p"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "provision.sh" in done.stdout + done.stderr


def test_two_web_machines_on_debian_with_fixed_safe_addresses(declared: dict) -> None:
    found = machines(declared)
    assert {"web1", "web2"} <= set(found)
    assert declared["box"] == "debian/bookworm64"
    assert {"virtualbox", "libvirt"} <= set(declared["providers"])
    addresses = [ipaddress.ip_address(a) for a in found.values()]
    assert len(set(addresses)) == len(addresses), found
    for name, address in zip(found, addresses, strict=True):
        assert address in VIRTUALBOX_RANGE, f"{name}: {address} outside VirtualBox's default range"
        assert address not in LIBVIRT_MANAGEMENT, f"{name}: {address} on libvirt's management net"
        assert declared[name]["hostname"] == name


def test_every_machine_runs_the_provisioning_script(declared: dict) -> None:
    for name in machines(declared):
        paths = [p["path"] for p in declared[name]["provisioners"] if p["kind"] == "shell"]
        assert paths == ["vagrant/provision.sh"], name
        assert (ROOT / paths[0]).is_file()


def reached(inventory: list[Path], pattern: str = "web", **extra: str) -> dict[str, Any]:
    """Each matched host's connection settings, its templates rendered as a run renders
    them (with `extra` as -e vars)."""
    options = SimpleNamespace(
        ssh_config=Path("/nonexistent"), known_hosts=(), trust_new_host_keys=False,
        become_password=None, connect_timeout=10.0, command_timeout=60.0, output_limit=1 << 20,
    )  # fmt: skip
    found = {}
    for host in load_inventory(inventory).match(pattern).hosts:
        scope = LazyVars({**host.vars, **extra}, TemplateEngine())
        found[host.name] = connection_spec(host, options, scope)
    return found


def test_inventory_agrees_with_the_vagrantfile(declared: dict) -> None:
    specs = reached([INVENTORY])
    assert {name: spec.hostname for name, spec in specs.items()} == machines(declared)
    for name, spec in specs.items():
        assert (spec.port, spec.user, spec.become) == (22, "opsfix", True)  # provision.sh's user
        assert spec.key_file == f".vagrant/machines/{name}/libvirt/private_key"
    for host in load_inventory([INVENTORY]).match("web").hosts:
        assert host.vars["practice"] is True


def test_the_inventory_follows_a_moved_network_and_another_provider(tmp_path: Path) -> None:
    """What OPSFIX_VAGRANT_NET moves in the Vagrantfile, vagrant_net moves here: by -e, or
    by an inventory given after this one (as tests/integration/test_vagrant_vm.py does)."""
    moved = tmp_path / "moved.yml"
    moved.write_text("all:\n  children:\n    web:\n      vars:\n        vagrant_net: 10.9.8\n")
    specs = reached([INVENTORY, moved])
    assert [s.hostname for s in specs.values()] == ["10.9.8.11", "10.9.8.12"]
    [web2] = reached([INVENTORY], "web2", vagrant_provider="virtualbox").values()
    assert web2.key_file == ".vagrant/machines/web2/virtualbox/private_key"


def test_provisioning_installs_nothing_that_is_there_and_runs_without_systemd() -> None:
    """Cheap guards on the script; the lab test runs it for real."""
    script = (ROOT / "vagrant" / "provision.sh").read_text()
    assert "dpkg -s" in script and "--no-install-recommends" in script
    assert "/run/systemd/system" in script and "nginx -s reload" in script
    done = subprocess.run(["sh", "-n", str(ROOT / "vagrant" / "provision.sh")])
    assert done.returncode == 0


GEMS = Path("/usr/share/rubygems-integration/all/gems")
VAGRANT_KEYS = sorted(GEMS.glob("vagrant-2*/keys/vagrant.pub"))  # as build-box.sh finds it


@pytest.mark.skipif(
    os.geteuid() != 0 or not VAGRANT_KEYS, reason="build-box.sh runs as root, with Vagrant's key"
)
def test_the_box_script_rebuilds_only_when_its_recipe_changed(tmp_path: Path) -> None:
    """setup.sh runs vagrant/build-box.sh every time: a box stamped with the digest of the
    script and Vagrant's key is up to date, any other is built again (here the build stops
    at once: its cache folder cannot be made; the VM test builds for real)."""
    script = ROOT / "vagrant" / "build-box.sh"
    digest = hashlib.sha256(script.read_bytes() + VAGRANT_KEYS[0].read_bytes()).hexdigest()[:16]
    box = tmp_path / "home/boxes/debian-VAGRANTSLASH-bookworm64/0/libvirt"
    kernel = tmp_path / "cache/vagrant/kernel"
    for folder in (box, kernel):
        folder.mkdir(parents=True)
    (kernel / "vmlinuz").write_bytes(b"kernel")
    env = {**os.environ, "VAGRANT_HOME": str(tmp_path / "home")}

    def run(stamp: str, cache: Path) -> subprocess.CompletedProcess[str]:
        (box / "opsfix-stamp").write_text(f"{stamp}\n")
        argv = ["bash", str(script)]
        both = {**env, "OPSFIX_CACHE_DIR": str(cache)}
        return subprocess.run(argv, env=both, capture_output=True, text=True, timeout=60)

    current = run(digest, tmp_path / "cache")
    assert current.returncode == 0, current.stderr
    assert f"is up to date ({digest})" in current.stdout
    (tmp_path / "not-a-folder").write_text("")
    stale = run("0123456789abcdef", tmp_path / "not-a-folder")
    assert stale.returncode != 0 and "up to date" not in stale.stdout
    assert "mkdir: cannot create directory" in stale.stderr, stale.stderr
