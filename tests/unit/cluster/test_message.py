"""What a task carries: routing by site, secrets refused, the worker's inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opsfix.cluster import message, routing
from opsfix.cluster.worker import task_inventory
from opsfix.errors import InventoryError, Location, OptionsError
from opsfix.inventory import load_inventory
from opsfix.inventory.host import Host
from opsfix.secret import Secret

OPTIONS = dict.fromkeys(message.OPTIONS, 1)


def host(name: str = "web1", **variables: object) -> Host:
    origins = {k: Location("inventory/hosts.yml", 7, 5, f"all.hosts.{name}.{k}") for k in variables}
    return Host(name, ("web",), dict(variables), origins)


def test_a_host_goes_to_its_site_s_queue_and_one_without_a_site_to_the_default() -> None:
    assert routing.queue_of(host(opsfix_site="paris-1")) == "paris-1"
    assert routing.queue_of(host()) == routing.DEFAULT_QUEUE


@pytest.mark.parametrize("site", ["", "two words", "../x", "a" * 65, 42])
def test_a_site_that_cannot_be_a_queue_names_where_it_was_set(site: object) -> None:
    with pytest.raises(InventoryError) as caught:
        routing.queue_of(host(opsfix_site=site))
    assert str(caught.value).startswith("inventory/hosts.yml:7:5: all.hosts.web1.opsfix_site: ")


def test_a_vault_secret_in_the_inventory_never_goes_into_a_task() -> None:
    with pytest.raises(OptionsError, match="'ansible_become_password' of web1 is a secret"):
        message.entry(host(ansible_become_password=Secret("hunter2")))
    with pytest.raises(OptionsError, match="secrets never travel"):
        message.entry(host(nested={"deep": [Secret("hunter2")]}))


def test_a_secret_extra_var_never_goes_into_a_task() -> None:
    with pytest.raises(OptionsError, match="extra variable 'token' is a secret"):
        message.envelope(
            run_id="r", mode="apply", host=message.entry(host()), peers=[],
            extra_vars={"token": Secret("x")}, options=OPTIONS, bundle_sha256="0", lifetime=1,
        )  # fmt: skip


def test_the_envelope_holds_only_the_options_that_shape_a_host_s_run() -> None:
    env = message.envelope(
        run_id="r", mode="check", host=message.entry(host()), peers=[], extra_vars={},
        options={**OPTIONS, "become_password": "no"}, bundle_sha256="0", lifetime=60,
    )  # fmt: skip
    assert set(env["options"]) == set(message.OPTIONS)
    assert "become_password" not in str(env)


def test_the_worker_s_inventory_gives_the_host_its_groups_vars_and_peers() -> None:
    env = {
        "run_id": "r1",
        "host": {"name": "web1", "groups": ["prod", "web"], "vars": {"a": 1, "opsfix_site": "x"}},
        "peers": [{"name": "web2", "groups": ["web"], "vars": {"a": 2}}],
    }
    inventory = task_inventory(env)
    assert set(inventory.hosts["web1"].groups) == {"prod", "web"}
    assert inventory.hosts["web1"].vars == {"a": 1, "opsfix_site": "x"}
    assert inventory.hosts["web2"].vars == {"a": 2}
    assert inventory.groups["web"].hosts == ("web1", "web2")


def test_the_worker_s_inventory_reads_as_the_same_content_in_a_file_would(
    tmp_path: Path,
) -> None:
    env = {
        "run_id": "r1",
        "host": {
            "name": "web1",
            "groups": ["web"],
            "vars": {"n": 1, "l": [1, "a"], "d": {"k": None}},
        },
        "peers": [],
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(message.inventory_doc(env)))
    from_file, in_memory = load_inventory([path]), task_inventory(env)
    assert in_memory.hosts["web1"].vars == from_file.hosts["web1"].vars
    assert in_memory.hosts["web1"].groups == from_file.hosts["web1"].groups
