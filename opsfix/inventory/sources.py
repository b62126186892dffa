"""Find the inventory files in a source and read each with the right format.

A folder is read like Ansible reads it: its entries in name order, folders recursively,
skipping hidden names, `group_vars`, `host_vars`, `vars_plugins` and backup or doc files.
A file is YAML when its name ends in .yml, .yaml or .json, or when it has no extension and
parses as a YAML mapping; anything else is INI.
"""

from __future__ import annotations

import os
from pathlib import Path

from opsfix.errors import InventoryError, Location
from opsfix.inventory import dynamic
from opsfix.inventory.draft import InventoryDraft
from opsfix.inventory.ini_source import read_ini
from opsfix.inventory.yaml_source import read_yaml
from opsfix.playbook import vault, yamlpos

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
        plugin = _plugin_in(path)
        if plugin:  # Ansible's code must read it all (a plugin may use the other files)
            dynamic.read_through_ansible(path, draft, plugin)
            return
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            if not is_skipped(entry.name):
                read_source(entry, draft)
    elif path.is_file():
        read_file(path, draft)
    elif "," in str(path):
        read_host_list(str(path), draft)
    else:
        raise InventoryError(
            "inventory source not found; expected a YAML or INI file or a folder",
            Location(str(path)),
        )


def read_host_list(text: str, draft: InventoryDraft) -> None:
    """`-i 'web1,web2:2222,'`: hosts named on the command line, as Ansible's host_list."""
    for item in text.split(","):
        name = item.strip()
        if not name:
            continue
        host, _, port = name.rpartition(":") if name.count(":") == 1 else (name, "", "")
        if port and not port.isdigit():
            raise InventoryError(f"host list: {name!r}: expected HOST or HOST:PORT")
        draft.add_host(host or name, "ungrouped", int(port) if port else None)


def _plugin_in(folder: Path) -> str | None:
    """The plugin of the first inventory plugin config among a folder's YAML files."""
    for entry in sorted(folder.rglob("*")):
        relative = entry.relative_to(folder).parts
        if any(is_skipped(part) for part in relative) or entry.suffix not in (".yml", ".yaml"):
            continue
        try:
            head = entry.read_text(encoding="utf-8", errors="replace")[:65536]
        except OSError:
            continue
        if "plugin:" in head:
            data = yamlpos.loads(head, str(entry), error=InventoryError)
            if plugin := dynamic.plugin_name(data):
                return plugin
    return None


def is_skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_NAMES or name.endswith(SKIPPED_ENDINGS)


def read_file(path: Path, draft: InventoryDraft) -> None:
    file = str(path)
    text = vault.file_text(_text(path), Location(file))
    suffix = os.path.splitext(path.name)[1]
    if suffix == ".toml":
        dynamic.read_through_ansible(path, draft, "toml")
        return
    if text.startswith("#!") and os.access(path, os.X_OK):
        dynamic.read_script(path, draft)
        return
    if suffix in YAML_SUFFIXES:
        data = yamlpos.loads(text, file, error=InventoryError)
        plugin = dynamic.plugin_name(data)
        if plugin:
            dynamic.read_through_ansible(path, draft, plugin)
        else:
            read_yaml(data, file, draft)
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
