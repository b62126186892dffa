"""Inventories that are programs: scripts (run with --list) and plugin configs
(resolved through ansible-inventory), alone and in folders with static files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from opsfix.errors import InventoryError, Location
from opsfix.inventory import dynamic, load_inventory

LISTED = {
    "web": {"hosts": ["web1", "web2"], "vars": {"http_port": 80}, "children": ["canary"]},
    "canary": ["web3"],
    "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1"}, "web3": {"tier": "c"}}},
}


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def test_a_script_is_run_with_list_and_its_meta_hostvars_are_used(tmp_path: Path) -> None:
    inv = script(tmp_path / "inventory.sh", f"cat <<'EOF'\n{json.dumps(LISTED)}\nEOF\n")
    inventory = load_inventory([inv])
    assert inventory.groups["web"].members == ("web1", "web2", "web3")
    assert inventory.hosts["web1"].vars == {"http_port": 80, "ansible_host": "10.0.0.1"}
    assert inventory.hosts["web3"].vars == {"http_port": 80, "tier": "c"}


def test_without_meta_each_host_is_asked_with_host(tmp_path: Path) -> None:
    body = (
        'if [ "$1" = --list ]; then echo \'{"db": ["db1", "db2"]}\'; '
        'else printf \'{"name": "%s"}\' "$2"; fi\n'
    )
    inventory = load_inventory([script(tmp_path / "inv", body)])
    assert inventory.hosts["db2"].vars == {"name": "db2"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("echo oops >&2; exit 3\n", "inventory script exited 3: oops"),
        ("echo not json\n", "inventory program printed no JSON"),
        ("echo '[1]'\n", "inventory program printed JSON that is not a mapping"),
        ("echo '{\"web\": 7}'\n", "group 'web': expected a list of hosts or a mapping"),
    ],
)
def test_a_failing_script_names_itself(tmp_path: Path, body: str, message: str) -> None:
    inv = script(tmp_path / "inv", body)
    with pytest.raises(InventoryError) as caught:
        load_inventory([inv])
    assert caught.value.location == Location(str(inv))
    assert caught.value.message.startswith(message)


def test_a_plugin_config_without_ansible_inventory_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamic, "ansible_inventory", lambda: None)
    config = tmp_path / "aws_ec2.yml"
    config.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    for source in (config, tmp_path):  # alone, or in a folder with static files
        (tmp_path / "static.ini").write_text("[web]\nweb1\n")
        with pytest.raises(InventoryError) as caught:
            load_inventory([source])
        assert caught.value.message == (
            "an inventory plugin config (plugin: amazon.aws.aws_ec2): opsfix resolves these "
            "through ansible-inventory, which is not installed here; install ansible-core on "
            "this machine (pip install ansible-core, or apt install ansible-core)"
        )


def test_a_folder_of_static_files_and_scripts_is_read_by_opsfix(tmp_path: Path) -> None:
    (tmp_path / "01-static.yml").write_text("web: {hosts: {web1: {}}}\n")
    script(tmp_path / "02-script", 'echo \'{"db": ["db1"], "_meta": {"hostvars": {}}}\'\n')
    inventory = load_inventory([tmp_path])
    assert list(inventory.hosts) == ["web1", "db1"]
