"""Load `group_vars/` and `host_vars/` beside an inventory source, as Ansible finds them.

For an entity `web` under `group_vars/` the first of `web` (file or folder), `web.yml`,
`web.yaml`, `web.json` that exists is used; the others are ignored. A folder contributes
all its YAML files (no extension, .yml, .yaml, .json), subfolders included, merged in
name order with later files replacing earlier keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from opsfix.errors import InventoryError, Location
from opsfix.inventory.describe import describe
from opsfix.playbook import vault, yamlpos

SUFFIXES = ("", ".yml", ".yaml", ".json")


class VarsFiles:
    """Vars files beside the inventory sources, read once per group or host."""

    def __init__(self, sources: list[Path]) -> None:
        self.bases = [source if source.is_dir() else source.parent for source in sources]
        self.warnings: list[str] = []
        self._loaded: dict[tuple[Path, str, str], dict[str, Any]] = {}
        self._origins: dict[tuple[Path, str, str], dict[str, Location]] = {}
        self._listed: dict[Path, frozenset[str]] = {}

    def load(self, base: Path, kind: str, name: str) -> dict[str, Any]:
        """Merged vars of group or host `name` from `base/kind/` (group_vars or host_vars)."""
        key = (base, kind, name)
        if key not in self._loaded:
            self._loaded[key], self._origins[key] = self._merge(base / kind, name)
        return self._loaded[key]

    def origins(self, base: Path, kind: str, name: str) -> dict[str, Location]:
        """Where each var that `load` returns was set (file:line)."""
        self.load(base, kind, name)
        return self._origins[(base, kind, name)]

    def _merge(self, folder: Path, name: str) -> tuple[dict[str, Any], dict[str, Location]]:
        entries = self._entries(folder)
        merged: dict[str, Any] = {}
        origins: dict[str, Location] = {}
        if name.startswith(os.sep):
            return merged, origins
        for path in find(folder, name, entries):
            data = read_vars_file(path)
            merged.update(data)
            for key in data:
                origins[key] = Location(str(path), *yamlpos.position(data, key), key)
        return merged, origins

    def _entries(self, folder: Path) -> frozenset[str]:
        """Names in `folder`, listed once: a big inventory looks up many names there."""
        if folder not in self._listed:
            self._listed[folder] = frozenset()
            if folder.is_dir():
                self._listed[folder] = frozenset(os.listdir(folder))
            elif folder.exists():
                self.warnings.append(f"{folder}: not a folder, skipped")
        return self._listed[folder]


def find(folder: Path, name: str, entries: frozenset[str]) -> list[Path]:
    """The files holding `name`'s vars: the first of name, name.yml, name.yaml, name.json."""
    for suffix in SUFFIXES:
        if f"{name}{suffix}" not in entries:
            continue
        candidate = folder / f"{name}{suffix}"
        return _folder_files(candidate) if candidate.is_dir() else [candidate]
    return []


def _folder_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        suffix = os.path.splitext(entry.name)[1]
        if entry.is_dir() and not suffix:
            found.extend(_folder_files(entry))
        elif entry.is_file() and suffix in SUFFIXES:
            found.append(entry)
    return found


def read_vars_file(path: Path) -> dict[str, Any]:
    """The vars in one YAML file; an empty file holds none. A file encrypted with Ansible
    Vault is decrypted, and every value in it is a secret."""
    data = yamlpos.load(path, error=InventoryError)
    if _is_vaulted(path):
        data = vault.as_secrets(data)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(
            f"expected a mapping of variable names to values, got {describe(data)}",
            Location(str(path), *yamlpos.position(data, None)),
        )
    for key in data:
        if not isinstance(key, str) or not key:
            raise InventoryError(
                f"variable name must be a non-empty string, got {describe(key)}",
                Location(str(path), *yamlpos.key_position(data, key)),
            )
    return data


def _is_vaulted(path: Path) -> bool:
    with path.open("rb") as file:
        return vault.is_encrypted(file.read(64).decode("utf-8", "replace"))
