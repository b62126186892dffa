"""Inventories that are programs: executable scripts, and inventory plugin configs.

A script speaks Ansible's script protocol: `SCRIPT --list` prints the groups as JSON
(`{"web": {"hosts": [...], "vars": {...}, "children": [...]}, "_meta": {"hostvars": ...}}`);
without `_meta`, `SCRIPT --host NAME` gives each host's vars. An inventory plugin config
(a YAML file with `plugin:`; aws_ec2, constructed, ...) is Ansible's own code to run, so
ansible-inventory resolves it: `ansible-inventory -i SOURCE --list --export` prints the
same JSON, group vars kept with their groups, and opsfix reads that. A folder holding a
plugin config goes to ansible-inventory whole, as Ansible reads it, since a plugin such
as `constructed` works on the hosts of the other files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from opsfix.errors import InventoryError, Location
from opsfix.inventory.draft import InventoryDraft
from opsfix.secret import Secret

RUN_TIMEOUT = 120.0
MAX_OUTPUT = 64 << 20


def plugin_name(data: Any) -> str | None:
    """The `plugin:` of an inventory plugin config, or None for a plain YAML inventory."""
    if isinstance(data, dict) and isinstance(data.get("plugin"), str):
        return str(data["plugin"])
    return None


def read_script(path: Path, draft: InventoryDraft) -> None:
    """Run an executable inventory script with --list (and --host without _meta)."""
    data = _json(_run([str(path.resolve()), "--list"], path, "inventory script"), path)
    if "_meta" not in data:
        hosts = {h for body in data.values() for h in _group_hosts(body)}
        data["_meta"] = {
            "hostvars": {
                host: _json(
                    _run([str(path.resolve()), "--host", host], path, "inventory script"), path
                )
                for host in sorted(hosts)
            }
        }
    read_list(data, str(path), draft)


def read_through_ansible(path: Path, draft: InventoryDraft, plugin: str) -> None:
    """A source with a plugin config, resolved by ansible-inventory."""
    program = ansible_inventory()
    if program is None:
        raise InventoryError(
            f"an inventory plugin config (plugin: {plugin}): opsfix resolves these through "
            "ansible-inventory, which is not installed here; install ansible-core on this "
            "machine (pip install ansible-core, or apt install ansible-core)",
            Location(str(path)),
        )
    argv = [program, "-i", str(path.resolve()), "--list", "--export"]
    read_list(_json(_run(argv, path, "ansible-inventory"), path), str(path), draft)


def ansible_inventory() -> str | None:
    """ansible-inventory on PATH, else beside this Python (a virtualenv's bin)."""
    found = shutil.which("ansible-inventory")
    beside = Path(sys.executable).parent / "ansible-inventory"
    return found or (str(beside) if os.access(beside, os.X_OK) else None)


def read_list(data: dict[str, Any], file: str, draft: InventoryDraft) -> None:
    """The `--list` JSON of a script or of ansible-inventory, into the draft."""
    where = Location(file)
    meta = data.get("_meta") or {}
    groups = {name: _body(body, file, name) for name, body in data.items() if name != "_meta"}
    for name in groups:
        draft.add_group(name)
    for name, body in groups.items():
        for child in body.get("children") or []:
            draft.add_group(str(child))
            draft.add_child(name, str(child), where)
        for host in body.get("hosts") or []:
            draft.add_host(str(host), name)
        for key, value in (body.get("vars") or {}).items():
            at = Location(file, field=f"{name}.vars.{key}")
            draft.set_group_var(name, str(key), _vaulted(value, at), at)
    for host, variables in (meta.get("hostvars") or {}).items():
        if host not in draft.hosts:
            draft.add_host(str(host), "ungrouped")
        for key, value in (variables or {}).items():
            where = Location(file, field=f"{host}.{key}")
            draft.set_host_var(str(host), str(key), _vaulted(value, where), where)


def _vaulted(value: Any, where: Location) -> Any:
    """ansible-inventory prints a vault value as {"__ansible_vault": ENVELOPE}."""
    if isinstance(value, dict) and set(value) == {"__ansible_vault"}:
        from opsfix.playbook import vault

        try:
            return Secret(vault.decrypt(str(value["__ansible_vault"])).decode("utf-8", "replace"))
        except vault.VaultError as exc:
            raise InventoryError(f"!vault value: {exc}", where) from None
    return value


def _body(body: Any, file: str, name: str) -> dict[str, Any]:
    if isinstance(body, list):
        return {"hosts": body}
    if isinstance(body, dict):
        return body
    raise InventoryError(
        f"group {name!r}: expected a list of hosts or a mapping, got {type(body).__name__}",
        Location(file),
    )


def _group_hosts(body: Any) -> list[str]:
    if isinstance(body, list):
        return [str(h) for h in body]
    return [str(h) for h in (body.get("hosts") or [])] if isinstance(body, dict) else []


def _run(argv: list[str], path: Path, what: str) -> str:
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
            cwd=path.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(
            f"{what} gave no answer in {RUN_TIMEOUT:g}s", Location(str(path))
        ) from None
    except OSError as exc:
        raise InventoryError(
            f"cannot run {what}: {exc.strerror or exc}", Location(str(path))
        ) from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise InventoryError(
            f"{what} exited {done.returncode}: {' / '.join(tail) or 'no message'}",
            Location(str(path)),
        )
    if len(done.stdout) > MAX_OUTPUT:
        raise InventoryError(f"{what} printed more than 64 MiB (refused)", Location(str(path)))
    return done.stdout.decode("utf-8", "replace")


def _json(text: str, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(
            f"inventory program printed no JSON: {exc.msg} at line {exc.lineno}",
            Location(str(path)),
        ) from None
    if not isinstance(data, dict):
        raise InventoryError(
            "inventory program printed JSON that is not a mapping", Location(str(path))
        )
    return data


__all__ = ["ansible_inventory", "plugin_name", "read_list", "read_script", "read_through_ansible"]
