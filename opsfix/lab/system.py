"""The lab's dealings with the kernel: `ip`, namespaces, processes and TCP probes.

Everything here runs argument lists (never shell strings) and turns failures into
LabError with the command and what it printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from opsfix.errors import LabError

NETNS_DIR = Path("/run/netns")
HOST_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "LANG": "C.UTF-8",
}


def run(argv: list[str], *, input: str | None = None, timeout: float = 60.0) -> str:
    """Run a controller-side command; its stdout, or LabError naming it and its output."""
    try:
        done = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{shlex.join(argv)}: no answer after {timeout:g}s") from None
    if done.returncode != 0:
        raise LabError(f"{shlex.join(argv)}: exit {done.returncode}: {tail(done.stderr)}")
    return done.stdout


def tail(text: str, lines: int = 8) -> str:
    """The last lines of some output, for error messages."""
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


def ip_batch(lines: Iterable[str], *, force: bool = False) -> None:
    """Run many `ip` commands in one process: ~100x faster than one process each."""
    argv = ["ip", *(["-force"] if force else []), "-batch", "-"]
    script = "\n".join(lines) + "\n"
    if force:
        subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
    else:
        run(argv, input=script)


def raise_sysctls(wanted: Mapping[str, int]) -> dict[str, int]:
    """Raise each /proc/sys value to at least the wanted one (a higher value stays);
    returns the values it changed. A machine-wide setting: it outlives the lab."""
    changed = {}
    for path, value in wanted.items():
        try:
            now = int(Path(path).read_text().split()[0])
            if now < value:
                Path(path).write_text(f"{value}\n")
                changed[path] = value
        except (OSError, ValueError, IndexError) as exc:
            raise LabError(f"{path}: cannot raise to {value}: {exc}") from None
    return changed


def interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _ns_id(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def netns_members(netns_names: Iterable[str]) -> dict[str, list[int]]:
    """Live PIDs in each named netns, found from /proc (like `ip netns pids`, in one scan)."""
    wanted = {ident: name for name in netns_names if (ident := _ns_id(NETNS_DIR / name))}
    members: dict[str, list[int]] = {name: [] for name in wanted.values()}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (ident := _ns_id(f"/proc/{entry}/ns/net")) in wanted:
            members[wanted[ident]].append(int(entry))
    return members


def in_netns(pid: int, netns: str) -> bool:
    ident = _ns_id(NETNS_DIR / netns)
    return ident is not None and _ns_id(f"/proc/{pid}/ns/net") == ident


def is_namespace_init(pid: int) -> bool:
    """True for a PID 1 of a child pid namespace (NSpid ends in 1 at a deeper level)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            levels = line.split()[1:]
            return len(levels) > 1 and levels[-1] == "1"
    return False


def command_name(pid: int) -> str:
    """A process's command name (what `ps -o comm` shows), '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def nsenter_argv(pid: int) -> list[str]:
    """Enter every namespace a lab host owns, through that host's PID 1."""
    return ["nsenter", f"--target={pid}", "--net", "--mount", "--uts", "--pid", "--"]


def tcp_answers(address: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection there (from the root namespace)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll until `predicate()` is true or the time is up; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
