"""Keep passwords out of every printout: wrap them in `Secret` as the inventory resolves."""

from __future__ import annotations

from typing import Any

from opsfix.secret import Secret

MASK = "********"

# Connection and become passwords, under every name Ansible accepts for them.
SECRET_VARS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "ansible_su_pass",
    }
)


def mask_secrets(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `values` with each password wrapped in `Secret`."""
    return {key: _wrap(value) if key in SECRET_VARS else value for key, value in values.items()}


def _wrap(value: Any) -> Any:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value if isinstance(value, str) else str(value))


def shown(value: Any) -> Any:
    """What a printout may show for `value`: the mask in place of a secret."""
    return MASK if isinstance(value, Secret) else value
