"""Read `vagrant ssh-config` output: how to reach each VM of a Vagrant project.

Vagrant prints one ssh_config `Host` block per running machine (Host, HostName, Port,
User, IdentityFile, and options that switch host-key checking off). paramiko's SSHConfig
parses it exactly as it parses ~/.ssh/config; only the fields opsfix needs are kept.
Vagrant's `StrictHostKeyChecking no` and `UserKnownHostsFile /dev/null` are deliberately
dropped: opsfix checks host keys on every connection, VMs included.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from opsfix.errors import InputError

_HOST_LINE = re.compile(r"^\s*Host\s+(?P<names>.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class VagrantMachine:
    """One VM as `vagrant ssh-config` describes it."""

    name: str
    hostname: str
    port: int
    user: str
    identity_file: str | None
    proxy_command: str | None = None


def parse_ssh_config(text: str, origin: str = "vagrant ssh-config") -> list[VagrantMachine]:
    """Every Host block of `text`, in order; InputError for a pattern or a bad Port."""
    config = paramiko.SSHConfig.from_text(text)
    names = [n for m in _HOST_LINE.finditer(text) for n in m["names"].split()]
    machines = [_machine(name, config.lookup(name), origin) for name in dict.fromkeys(names)]
    if not machines:
        raise InputError(f"{origin}: no `Host` entries (is any machine running? `vagrant up`)")
    return machines


def _machine(name: str, entry: Mapping[str, Any], origin: str) -> VagrantMachine:
    if any(c in name for c in "*?!"):
        raise InputError(f"{origin}: Host {name!r}: a pattern, not a machine name")
    hostname = entry.get("hostname") or name  # as ssh: no HostName means the name itself
    port = str(entry.get("port", "22"))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{origin}: Host {name!r}: Port {port!r} is not a port number")
    keys = entry.get("identityfile") or []
    return VagrantMachine(
        name=name,
        hostname=str(hostname),
        port=int(port),
        user=str(entry.get("user", "vagrant")),
        identity_file=_first_key([str(k) for k in keys]),
        proxy_command=_str_or_none(entry.get("proxycommand")),
    )


def _first_key(paths: list[str]) -> str | None:
    """The first IdentityFile that exists (Vagrant's generated key comes first), else the first."""
    expanded = [os.path.expanduser(p) for p in paths]
    return next((p for p in expanded if os.path.exists(p)), expanded[0] if expanded else None)


def _str_or_none(value: object) -> str | None:
    return None if value in (None, "", "none") else str(value)


def vagrant_ssh_config(project: Path | None = None, timeout: float = 120) -> tuple[str, str | None]:
    """Run `vagrant ssh-config` in `project` (default: here): its output, and a warning.

    With several machines, Vagrant prints the running ones and fails on the others: their
    entries are kept and the failure becomes the warning.
    """
    try:
        done = subprocess.run(
            ["vagrant", "ssh-config"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise InputError(
            "vagrant not found: install it, or pass --ssh-config FILE with the output of "
            "`vagrant ssh-config`"
        ) from None
    except subprocess.TimeoutExpired:
        raise InputError(f"`vagrant ssh-config` gave no answer within {timeout:g}s") from None
    last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    if done.returncode != 0 and "Host " not in done.stdout:
        raise InputError(f"`vagrant ssh-config` failed: {last} (are the VMs up? `vagrant up`)")
    warning = f"`vagrant ssh-config`: {last}" if done.returncode != 0 else None
    return done.stdout, warning


__all__ = ["VagrantMachine", "parse_ssh_config", "vagrant_ssh_config"]
