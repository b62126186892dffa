"""The ansible.cfg an Ansible user already has: found and read as Ansible does.

The first that exists of `$ANSIBLE_CONFIG` (a file, or a folder holding ansible.cfg),
`./ansible.cfg`, `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`. opsfix takes `inventory`,
`remote_user`, `private_key_file`, `timeout`, `forks` from `[defaults]` and `become`,
`become_method`, `become_user`, `become_ask_pass` from `[privilege_escalation]`; paths are
relative to the file's folder, as Ansible reads them. Settings are the lowest precedence:
the command line, the environment and the inventory's variables win. `-v` shows each.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from opsfix.errors import OptionsError

SEARCH = ("./ansible.cfg", "~/.ansible.cfg", "/etc/ansible/ansible.cfg")
# setting -> (section, inventory variable it stands for, or "" for an option)
KEYS = {
    "inventory": ("defaults", ""),
    "remote_user": ("defaults", "ansible_user"),
    "private_key_file": ("defaults", "ansible_ssh_private_key_file"),
    "timeout": ("defaults", ""),
    "forks": ("defaults", ""),
    "become": ("privilege_escalation", "ansible_become"),
    "become_method": ("privilege_escalation", "ansible_become_method"),
    "become_user": ("privilege_escalation", "ansible_become_user"),
    "become_ask_pass": ("privilege_escalation", ""),
}
_PATHS = ("inventory", "private_key_file")


@dataclass(frozen=True)
class AnsibleConfig:
    path: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def host_defaults(self) -> dict[str, str]:
        """The settings that are inventory variables' defaults (remote_user, become...)."""
        return {KEYS[k][1]: v for k, v in self.settings.items() if KEYS[k][1]}

    def inventory(self) -> list[Path]:
        value = self.settings.get("inventory", "")
        return [Path(p.strip()) for p in value.split(",") if p.strip()]

    def number(self, key: str) -> float | None:
        value = self.settings.get(key)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise OptionsError(f"{self.path}: {key} = {value!r}: expected a number") from None

    def flag(self, key: str) -> bool:
        return self.settings.get(key, "").strip().lower() in ("yes", "true", "1", "on", "y")

    def described(self) -> list[str]:
        return [f"{key} = {value} (from {self.path})" for key, value in self.settings.items()]


def find(env: dict[str, str] | None = None) -> Path | None:
    """The ansible.cfg Ansible would use, or None."""
    env = dict(os.environ) if env is None else env
    given = env.get("ANSIBLE_CONFIG")
    if given:
        path = Path(given).expanduser()
        path = path / "ansible.cfg" if path.is_dir() else path
        if path.is_file():
            return path
    for candidate in SEARCH:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    return None


def load(env: dict[str, str] | None = None) -> AnsibleConfig:
    path = find(env)
    if path is None:
        return AnsibleConfig()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise OptionsError(f"{path}: cannot read ansible.cfg: {exc}") from None
    settings: dict[str, str] = {}
    for key, (section, _) in KEYS.items():
        if parser.has_option(section, key):
            value = parser.get(section, key).strip()
            if key in _PATHS:
                value = ",".join(_relative(path, p) for p in value.split(",") if p.strip())
            settings[key] = value
    return AnsibleConfig(path, settings)


def _relative(cfg: Path, value: str) -> str:
    expanded = os.path.expanduser(value.strip())
    return expanded if os.path.isabs(expanded) else str(cfg.parent / expanded)


__all__ = ["AnsibleConfig", "find", "load"]
