"""What an ssh_config file sets for a host, with OpenSSH's own semantics.

When the ssh client is installed, OpenSSH itself is asked (`ssh -G -F FILE HOST` prints
the effective configuration after Include, Match, Host and CanonicalizeHostname): no
hand-written parser can follow every rule it has. `ssh -G` also prints every default, so
a second call with an empty config (once per run) tells which values the file set.
Without the client, paramiko's parser reads the file, with `Include` expanded first
(paramiko has none). Like `ssh -F FILE`, only that one file (and what it includes) is
read, never /etc/ssh/ssh_config.

Each lookup is a process (~5 ms of CPU): answers are cached per file version and
address, asked only when the file exists, and many hosts are asked in parallel.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from opsfix.errors import InventoryError, Location

if TYPE_CHECKING:
    import paramiko

Options = dict[str, list[str]]  # lowercase keyword -> its values, in the order given

DEFAULT_FILE = "~/.ssh/config"
LOOKUP_TIMEOUT = 15.0  # a `Match exec` command may take a while; it may not hang a run
MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH

_lock = threading.Lock()
_cache: dict[tuple[str, int, int, str], Options] = {}
_baseline: dict[str, Options] = {}
_parsed_files: dict[tuple[str, int, int], paramiko.SSHConfig] = {}


def config_file(path: Path | None) -> Path:
    return Path(path) if path else Path(DEFAULT_FILE).expanduser()


def lookup(address: str, path: Path | None = None) -> Options:
    """The options `path` (default ~/.ssh/config) sets for `address`; {} without a file."""
    file = config_file(path)
    try:
        st = file.stat()
    except FileNotFoundError:
        return {}
    key = (str(file), st.st_mtime_ns, st.st_size, address)
    with _lock:
        if key in _cache:
            return _cache[key]
    ssh = ssh_program()
    found = from_openssh(file, address, ssh) if ssh else from_paramiko(file, address)
    with _lock:
        _cache[key] = found
    return found


def ssh_program() -> str | None:
    """The OpenSSH client, when installed (else paramiko's parser stands in)."""
    return shutil.which("ssh")


def prefetch(addresses: Iterable[str], path: Path | None = None) -> None:
    """Look many addresses up at once (each `ssh -G` is a process; they overlap)."""
    wanted = list(dict.fromkeys(addresses))
    if len(wanted) < 2 or not config_file(path).is_file():
        return
    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        list(pool.map(lambda a: _quietly(a, path), wanted))


def _quietly(address: str, path: Path | None) -> None:
    with contextlib.suppress(InventoryError):  # reported when its host's spec is resolved
        lookup(address, path)


# --- OpenSSH --------------------------------------------------------------------------------


def from_openssh(file: Path, address: str, ssh: str = "ssh") -> Options:
    """The values `ssh -G` shows for `address` that differ from OpenSSH's defaults."""
    effective = _ssh_g(ssh, str(file), address)
    defaults = _defaults(ssh, address)
    effective.pop("host", None)
    found = {k: v for k, v in effective.items() if k != "hostname" and defaults.get(k) != v}
    if effective.get("hostname", [address.lower()]) != [address.lower()]:
        found["hostname"] = effective["hostname"]
    return found


def _defaults(ssh: str, address: str) -> Options:
    """What `ssh -G` prints with an empty config (no value in it depends on the host)."""
    with _lock:
        if ssh in _baseline:
            return _baseline[ssh]
    found = _ssh_g(ssh, os.devnull, address)
    with _lock:
        _baseline[ssh] = found
    return found


def _ssh_g(ssh: str, file: str, address: str) -> Options:
    try:
        done = subprocess.run(
            [ssh, "-G", "-F", file, "--", address],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LOOKUP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(
            f"`ssh -G {address}` gave no answer within {LOOKUP_TIMEOUT:g}s "
            "(a Match exec command that hangs?)",
            Location(file),
        ) from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if "Pseudo-terminal" not in ln]
        raise InventoryError(
            f"ssh_config cannot be read: {'; '.join(lines[-3:]) or f'ssh exit {done.returncode}'}",
            Location(file),
        )
    options: Options = {}
    for line in done.stdout.splitlines():
        keyword, _, value = line.partition(" ")
        options.setdefault(keyword.lower(), []).append(value)
    return options


# --- without the ssh client: paramiko, Include expanded first -------------------------------


def from_paramiko(file: Path, address: str) -> Options:
    """The same answer from paramiko's parser, for controllers without the ssh client."""
    config = _parsed(file)
    found: Options = {}
    for keyword, value in config.lookup(address).items():
        values = value if isinstance(value, list) else [value]
        found[keyword.lower()] = [str(v) for v in values]
    if found.get("hostname") == [address]:
        del found["hostname"]
    return found


def _parsed(file: Path) -> paramiko.SSHConfig:
    """Each version of a file is parsed once."""
    st = file.stat()
    key = (str(file), st.st_mtime_ns, st.st_size)
    with _lock:
        if key in _parsed_files:
            return _parsed_files[key]
    import paramiko  # only without the ssh client (a run through the keeper has no paramiko)

    config = paramiko.SSHConfig.from_text(expand_includes(file))
    with _lock:
        _parsed_files[key] = config
    return config


def expand_includes(file: Path, depth: int = 0) -> str:
    """The file's text with every `Include` replaced by the files it names.

    As in OpenSSH, relative paths are under ~/.ssh, globs are sorted, and a file that is
    missing is skipped. After the included text the including block resumes (its line is
    repeated; `Host *` at the top level). An included file with blocks of its own inside
    a block is refused: OpenSSH applies them only within the outer block, which paramiko
    cannot express.
    """
    if depth > MAX_INCLUDE_DEPTH:
        raise InventoryError("Include nested too deeply", Location(str(file)))
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"cannot read ssh_config: {e}", Location(str(file))) from None
    out: list[str] = []
    block = ""
    for line in lines:
        words = line.replace("=", " ", 1).split()
        keyword = words[0].lower() if words else ""
        if keyword in ("host", "match"):
            block = line
        if keyword != "include":
            out.append(line)
            continue
        for pattern in words[1:]:
            for name in _include_paths(pattern):
                text = expand_includes(Path(name), depth + 1)
                if block and _has_blocks(text):
                    raise InventoryError(
                        f"Include {name} inside {block.strip()!r} has Host or Match blocks "
                        "of its own: only OpenSSH resolves that (install openssh-client)",
                        Location(str(file)),
                    )
                out.append(text)
        out.append(block or "Host *")  # back in the including block (or the top level)
    return "\n".join(out)


def _has_blocks(text: str) -> bool:
    return any(
        line.split()[0].lower() in ("host", "match") for line in text.splitlines() if line.split()
    )


def _include_paths(pattern: str) -> list[str]:
    home = pwd.getpwuid(os.getuid()).pw_dir  # OpenSSH's ~ is the passwd home, not $HOME
    path = home + pattern[1:] if pattern.startswith("~/") else pattern
    if not os.path.isabs(path):
        path = os.path.join(home, ".ssh", path)
    return sorted(p for p in glob.glob(path) if os.path.isfile(p))


__all__ = ["Options", "config_file", "expand_includes", "from_openssh", "from_paramiko"]
__all__ += ["lookup", "prefetch", "ssh_program"]
