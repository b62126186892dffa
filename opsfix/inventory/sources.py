"""Find the inventory files in a source and read each with the right format.

A folder is read like Ansible reads it: its entries in name order, folders recursively,
skipping hidden names, `group_vars`, `host_vars`, `vars_plugins` and backup or doc files.
A file is YAML when its name ends in .yml, .yaml or .json, or when it has no extension and
parses as a YAML mapping; anything else is INI.
"""

from __future__ import annotations

import os
from pathlib import Path

from opsfix import vault, yamlpos
from opsfix.errors import InventoryError, Location
from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.ini_source import read_ini
from opsfix.inventory.yaml_source import read_yaml

YAML_SUFFIXES = frozenset({".yml", ".yaml", ".json"})
SKIPPED_NAMES = frozenset({"group_vars", "host_vars", "vars_plugins"})
SKIPPED_ENDINGS = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)


def read_source(path: Path, draft: InventoryDraft) -> None:
    """Read one source (file or folder) into `draft`."""
    if path.is_dir():
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            if not is_skipped(entry.name):
                read_source(entry, draft)
    elif path.is_file():
        read_file(path, draft)
    else:
        raise InventoryError(
            "inventory source not found; expected a YAML or INI file or a folder",
            Location(str(path)),
        )


def is_skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_NAMES or name.endswith(SKIPPED_ENDINGS)


def read_file(path: Path, draft: InventoryDraft) -> None:
    file = str(path)
    text = vault.file_text(_text(path), Location(file))
    suffix = os.path.splitext(path.name)[1]
    if suffix == ".toml":
        raise InventoryError(
            "TOML inventories are not supported; expected YAML or INI", Location(file)
        )
    if text.startswith("#!") and os.access(path, os.X_OK):
        raise InventoryError(
            "executable inventory scripts are not run by opsfix; expected a static YAML or "
            "INI file",
            Location(file, 1),
        )
    if suffix in YAML_SUFFIXES:
        read_yaml(yamlpos.loads(text, file, error=InventoryError), file, draft)
    elif not suffix and isinstance(data := _yaml_or_none(text, file), dict):
        read_yaml(data, file, draft)
    else:
        read_ini(text, file, draft)


def _yaml_or_none(text: str, file: str) -> object:
    try:
        return yamlpos.loads(text, file, error=InventoryError)
    except InventoryError:
        return None


def _text(path: Path) -> str:
    return yamlpos.read_text(path, error=InventoryError)
