"""A transport is one file: `data/transports/opsfix_nsenter.py` enters a lab host's
namespaces as `docker exec` enters a container, and once installed as a package installs
it (a module and its `opsfix.transports` entry point), a real check, repair and verify
run through it, with no SSH at all."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from opsfix.lab import Lab

from . import helpers as h

NSENTER = h.DATA / "transports" / "opsfix_nsenter.py"
HOST = "web1"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder on PYTHONPATH holding the transport as pip would install it."""
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(NSENTER, folder / NSENTER.name)
    info = folder / "opsfix_nsenter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: opsfix-nsenter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[opsfix.transports]\nnsenter = opsfix_nsenter\n")
    return folder


@pytest.fixture
def inventory(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    """The lab's inventory, its web1 reached by entering its namespaces (ansible_host: the
    PID of its PID 1) instead of over SSH."""
    h.reset_hosts(lab, [HOST])
    data = yaml.safe_load(lab.inventory_path.read_text())
    web = data["all"]["children"]["web"]
    pid = lab._init_pid(HOST)
    web["hosts"] = {HOST: {"ansible_connection": "nsenter", "ansible_host": str(pid)}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    yield path
    h.reset_hosts(lab, [HOST])


def test_a_one_file_transport_checks_repairs_and_verifies_a_lab_host(
    lab: Lab, site: Path, inventory: Path, tmp_path: Path
) -> None:
    marks = h.log_marks(lab)
    h.break_host(lab, HOST, ["nginx_stopped"])
    env = {**h.clean_env(tmp_path), "PYTHONPATH": str(site)}
    listed = h.opsfix_with_env("plugins", env=env)
    assert "nsenter                  package opsfix-nsenter" in listed.stdout, listed

    run = h.opsfix_with_env(
        "apply", h.GENERIC, "-i", inventory, "--limit", HOST, "--format", "json", env=env
    )

    assert run.returncode == 0, run
    host = run.host(HOST)
    assert host["status"] == "repaired", run
    running = next(s for s in host["steps"] if s["name"] == "nginx is running")
    assert (running["before"]["status"], running["after"]["status"]) == ("failed", "passed")
    assert [r["status"] for r in running["remediations"]] == ["applied"], run
    verified = {v["test"]: v["outcome"] for v in host["verify"]}
    assert verified and set(verified.values()) == {"passed"}, run
    assert "test_nginx.py::test_nginx_is_running" in verified
    assert h.nginx_processes(lab, HOST).master is not None  # seen from inside, not by opsfix
    assert h.EXPECTED in h.http_body(lab, HOST)
    assert "Accepted publickey" not in h.log_since(lab, HOST, marks)  # no SSH at all


def test_without_the_package_the_name_is_refused_where_it_was_set(
    lab: Lab, inventory: Path, tmp_path: Path
) -> None:
    run = h.opsfix_with_env(
        "check", h.GENERIC, "-i", inventory, "--limit", HOST, env=h.clean_env(tmp_path)
    )
    assert run.returncode == 4, run
    assert f"{inventory}:" in run.stderr, run
    assert (
        f"host '{HOST}': ansible_connection: refused: unsupported value 'nsenter' "
        "(expected one of: local, ssh, smart, paramiko)"
    ) in run.stderr, run
