"""Variable precedence, lowest to highest (Ansible's order, without roles):

1. inventory group vars (`all`, then parents, then children), then group_vars/ files
2. inventory host vars, then host_vars/ files
3. playbook `vars`
4. extra vars (`-e k=v`, `-e @file.yml`, `-e '{"k": 1}'`)

plus the magic variables `inventory_hostname`, `group_names` and `playbook_dir`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opsfix.errors import Location, OptionsError, VariableError
from opsfix.inventory.host import Host
from opsfix.playbook import yamlpos


def parse_extra_vars(items: Sequence[str]) -> dict[str, Any]:
    """`-e` values: `k=v k2=v2` (strings), `@file.yml`, or inline YAML/JSON mappings."""
    merged: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            data = yamlpos.load(Path(item[1:]), error=VariableError)
            source = item[1:]
        elif item.lstrip().startswith(("{", "[")):
            data = yamlpos.loads(item, "--extra-vars", error=VariableError)
            source = "--extra-vars"
        else:
            data = _key_values(item)
            source = "--extra-vars"
        if not isinstance(data, Mapping):
            raise VariableError("extra vars must be a mapping", Location(source, 1, 1))
        merged.update(data)
    return merged


def _key_values(item: str) -> dict[str, str]:
    """`k=v` pairs split as a shell would, as Ansible does: `banner="two words" n=1`."""
    import shlex

    try:
        pairs = shlex.split(item)
    except ValueError as exc:
        raise OptionsError(f"--extra-vars: {item!r}: {exc} (quotes must be closed)") from None
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise OptionsError(
                f"--extra-vars: expected key=value, @file or a mapping, got {pair!r}"
            )
        result[key] = value
    return result


def host_variables(
    host: Host, playbook_vars: Mapping[str, Any], extra_vars: Mapping[str, Any], playbook_dir: Path
) -> dict[str, Any]:
    """All variables visible to one host, merged by precedence (unrendered)."""
    merged: dict[str, Any] = {
        "inventory_hostname": host.name,
        "group_names": list(host.groups),
        "playbook_dir": str(playbook_dir),
    }
    merged.update(host.vars)
    merged.update(playbook_vars)
    merged.update(extra_vars)
    return merged
