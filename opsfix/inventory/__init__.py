"""Read Ansible inventories (YAML, INI, folders, group_vars/ and host_vars/) as they are.

`load_inventory` parses and resolves; it never connects to a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.masking import SECRET_VARS
from opsfix.inventory.model import Group, Inventory, Selection
from opsfix.inventory.patterns import split_pattern
from opsfix.inventory.resolve import resolve
from opsfix.inventory.sources import read_source

__all__ = ["SECRET_VARS", "Group", "Inventory", "Selection", "load_inventory", "split_pattern"]


def load_inventory(sources: Sequence[Path]) -> Inventory:
    """Read every source in order into one inventory; later sources override earlier ones."""
    draft = InventoryDraft()
    for source in sources:
        path = Path(source)
        read_source(path, draft)
        draft.sources.append(path)
    return resolve(draft)
