"""A host's peers: the other hosts of the groups that list it, never `all` or parents."""

from pathlib import Path

from opsfix.inventory import load_inventory
from opsfix.runner import peers_of

INVENTORY = """
all:
  hosts:
    lonely: {}
  children:
    prod:
      children:
        web:
          hosts: {web1: {}, web2: {}, web3: {}}
        db:
          hosts: {db1: {}}
    canary:
      hosts: {web3: {}, edge1: {}}
"""


def test_peers_are_the_groups_that_list_the_host(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    inventory = load_inventory([path])

    def names(host: str) -> list[str]:
        return [h.name for h in peers_of(inventory, inventory.hosts[host])]

    assert names("web1") == ["web2", "web3"]  # not db1, though prod holds both
    assert names("web3") == ["web1", "web2", "edge1"]
    assert names("db1") == []
    assert names("lonely") == []
