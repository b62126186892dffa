"""The contenders: how each tool is told to do the same work on the same lab hosts.

Every contender gets a fresh working folder under the run's scratch folder, so no tool
finds state (SSH control sockets, caches) left by an earlier round.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PROJECT_PYTHON = Path(sys.executable)
OPSFIX = PROJECT_PYTHON.parent / "opsfix"
BENCH_VENV = BENCH / ".venv"

# The four read-only commands of health-4, as shell text, for the tools that take shell.
HEALTH4_COMMANDS = (
    "nginx -t",
    "ss -ltnH 'sport = :80' | grep -q .",
    "df -P /var/log",
    "du -sk /var/log",
)


@dataclass(frozen=True)
class Fleet:
    """`size` lab hosts and the files that describe them to each tool."""

    size: int
    addresses: tuple[str, ...]
    inventory: Path  # Ansible-format YAML (opsfix and ansible-playbook)
    pyinfra_inventory: Path
    key: Path
    known_hosts: Path


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True)
class Contender:
    name: str
    build: Callable[[Fleet, Path], Command]  # (fleet, fresh scratch folder) -> command


def base_env(home: Path) -> dict[str, str]:
    """A small, fixed environment: no user config of any tool leaks into the run. opsfix
    connects anew in every run (no kept connections), as every other contender does."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "OPSFIX_PERSIST": "0",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def floor(fleet: Fleet, scratch: Path) -> Command:
    script = BENCH / "contenders" / "floor.py"
    argv = [str(PROJECT_PYTHON), str(script), str(fleet.key), str(fleet.known_hosts)]
    return Command([*argv, *fleet.addresses], base_env(scratch))


def opsfix_check(fleet: Fleet, scratch: Path) -> Command:
    argv = [
        str(OPSFIX), "check", str(BENCH / "playbooks" / "health4.yml"),
        "-i", str(fleet.inventory), "-f", str(fleet.size), "--plugins", str(BENCH / "plugins"),
    ]  # fmt: skip
    return Command(argv, base_env(scratch))


def ansible(forks: int | None) -> Callable[[Fleet, Path], Command]:
    def build(fleet: Fleet, scratch: Path) -> Command:
        env = base_env(scratch)
        env.update(
            ANSIBLE_CONFIG=str(BENCH / "playbooks" / "ansible.cfg"),
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(scratch / "cp"),
            ANSIBLE_LOCAL_TEMP=str(scratch / "tmp"),
            ANSIBLE_HOME=str(scratch / "ansible"),
        )
        argv = [
            str(BENCH_VENV / "bin" / "ansible-playbook"),
            "-i", str(fleet.inventory),
            str(BENCH / "playbooks" / "health4-ansible.yml"),
        ]  # fmt: skip
        if forks:
            argv += ["-f", str(forks if forks > 0 else fleet.size)]
        return Command(argv, env)

    return build


def pyinfra(fleet: Fleet, scratch: Path) -> Command:
    argv = [
        str(BENCH_VENV / "bin" / "pyinfra"), "-y", "--parallel", str(fleet.size),
        str(fleet.pyinfra_inventory), str(BENCH / "playbooks" / "health4_pyinfra.py"),
    ]  # fmt: skip
    return Command(argv, base_env(scratch), cwd=scratch)


HEALTH4: dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("floor", floor),
        Contender("opsfix", opsfix_check),
        Contender("pyinfra", pyinfra),
        Contender("ansible", ansible(-1)),  # forks = hosts
        Contender("ansible-f5", ansible(None)),  # ansible's default forks (5)
    )
}


def opsfix_run(
    mode: str, playbook: Path, *extra: str, home: Path | None = None, persist: int = 0
) -> Callable[[Fleet, Path], Command]:
    """`opsfix check|apply PLAYBOOK` on the fleet (recover-1 and verify).

    With `home`, every run shares that home and so opsfix's state folder (run history,
    verify's remembered commands), as runs from one on-call controller do; without, each
    run starts from an empty one. With `persist` (and a `home`), runs keep their SSH
    connections that long for the next run (opsfix's default is 60 s).
    """

    def build(fleet: Fleet, scratch: Path) -> Command:
        argv = [str(OPSFIX), mode, str(playbook), "-i", str(fleet.inventory)]
        env = {**base_env(home or scratch), "OPSFIX_PERSIST": str(persist)}
        return Command([*argv, "-f", str(fleet.size), *extra], env)

    return build


def keeper_pid(home: Path) -> int | None:
    """The pid of the connection keeper serving `home`'s runs (from the socket's peer)."""
    from opsfix.transport.keeper.link import build_tag

    path = home / ".local" / "state" / "opsfix" / "control" / f"keeper-{build_tag()}.sock"
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    except OSError:
        return None
    return int.from_bytes(creds[:4], sys.byteorder)


def close_kept(home: Path) -> None:
    """`opsfix connections close` for `home`'s runs: the keeper exits."""
    subprocess.run(
        [str(OPSFIX), "connections", "close"],
        env=base_env(home),
        capture_output=True,
        check=False,
        timeout=30,
    )


def write_fleet_files(
    folder: Path, size: int, addresses: list[str], key: Path, known_hosts: Path
) -> Fleet:
    """Inventories for `size` hosts: Ansible YAML (opsfix, ansible) and pyinfra's Python."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"web{i}" for i in range(1, size + 1)]
    lines = ["all:", "  children:", "    web:", "      hosts:"]
    lines += [f"        {n}: {{ansible_host: {a}}}" for n, a in zip(names, addresses, strict=True)]
    lines += [
        "      vars:",
        "        ansible_user: root",
        f"        ansible_ssh_private_key_file: {key}",
        f"        opsfix_known_hosts_file: {known_hosts}",
        "        ansible_python_interpreter: /usr/bin/python3",
        "        ansible_ssh_common_args: >-",
        f"          -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
        "        web_root: /var/www/html",
        "        expected_content: opsfix practice app",
        "        spa_deep_link: /app/settings",
        f"        release_dir: {REPO / 'templates' / 'webapp'}",
    ]
    inventory = folder / f"inventory-{size}.yml"
    inventory.write_text("\n".join(lines) + "\n")
    data = {
        "ssh_user": "root",
        "ssh_key": str(key),
        "ssh_known_hosts_file": str(known_hosts),
        "ssh_strict_host_key_checking": "yes",
    }
    hosts = ",\n    ".join(f"({a!r}, {data!r})" for a in addresses)
    py = folder / f"pyinfra-{size}.py"
    py.write_text(f"web = [\n    {hosts},\n]\n")
    return Fleet(size, tuple(addresses), inventory, py, key, known_hosts)


def bench_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def have_bench_tools() -> bool:
    return all(os.access(BENCH_VENV / "bin" / t, os.X_OK) for t in ("ansible-playbook", "pyinfra"))
