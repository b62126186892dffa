"""Run one command and measure it: wall time, CPU of its whole process tree, peak memory.

- Wall time runs from just before the process starts until it has exited.
- CPU is user + system of every process of the tree: `os.wait4` returns the child's own
  time plus that of every descendant it reaped. Daemons a tool leaves behind (OpenSSH's
  ControlPersist masters under Ansible) are orphans: this process is made their
  "subreaper", so they become its children; they are stopped and reaped after the run
  and their time is added.
- `peak_rss` is the largest resident set of any single process of the tree (`ru_maxrss`):
  for a one-process tool, its peak memory. `tree_pss` (optional, sampled) is the peak of
  the *sum* over the tree, shared pages split (PSS): what a forking tool really holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # seconds, user + system, whole tree
    peak_rss: int  # bytes, largest single process
    exit_status: int
    tree_pss: int | None = None  # bytes, peak sum over the tree (sampled), when asked
    threads: int | None = None  # peak threads of the process itself (sampled), when asked
    fds: int | None = None  # peak open file descriptors of the process itself (sampled)
    output: str = ""


def idle_fraction(seconds: float = 0.5) -> float:
    """How idle the machine's CPUs were over the next `seconds` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(threshold: float, limit: float) -> float:
    """Wait (at most `limit` seconds) until the CPUs are at least `threshold` idle."""
    deadline = time.monotonic() + limit
    idle = idle_fraction()
    while idle < threshold and time.monotonic() < deadline:
        idle = idle_fraction()
    return idle


def become_subreaper() -> None:
    """Orphans of our children are re-parented to us instead of to PID 1."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | Path | None = None,
    sample_memory: bool = False,
    timeout: float = 600,
    keep_orphans: bool = False,
) -> Sample:
    """Run `argv` to completion; output goes to a file so that pipes never block it.

    Processes the run leaves behind (Ansible's ControlPersist masters) are stopped and
    their time added, unless `keep_orphans`: opsfix's connection keeper must outlive the
    run to serve the next one (its time is counted by the caller, see run.py)."""
    before = set(_children())
    with open(os.devnull, "rb") as stdin, _output_file() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
        sampler = _TreeSampler(proc.pid) if sample_memory else None
        if sampler:
            sampler.start()
        timer = threading.Timer(timeout, _kill_group, args=(proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stop()
        cpu = usage.ru_utime + usage.ru_stime
        peak = usage.ru_maxrss * 1024
        for pid in set() if keep_orphans else set(_children()) - before:  # orphans, now ours
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                _, _, left = os.wait4(pid, 0)
                cpu += left.ru_utime + left.ru_stime
                peak = max(peak, left.ru_maxrss * 1024)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Sample(
        wall,
        cpu,
        peak,
        proc.returncode,
        tree_pss=sampler.peak if sampler else None,
        threads=sampler.threads if sampler else None,
        fds=sampler.fds if sampler else None,
        output=text,
    )


def reap(timeout: float = 10) -> None:
    """Wait for children that are exiting (a keeper told to stop) and collect them."""
    deadline = time.monotonic() + timeout
    while _children() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)


@contextlib.contextmanager
def _output_file():  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryFile() as f:
        yield f


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _children(parent: int | None = None) -> list[int]:
    """Direct children of `parent` (default: this process), from /proc."""
    parent = os.getpid() if parent is None else parent
    return [pid for pid, ppid in _ppids().items() if ppid == parent]


def _ppids() -> dict[int, int]:
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            found[int(entry.name)] = int(stat.rsplit(b")", 1)[1].split()[1])
    return found


def _descendants(root: int) -> list[int]:
    by_parent: dict[int, list[int]] = {}
    for pid, ppid in _ppids().items():
        by_parent.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += by_parent.get(pid, [])
    return found


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _TreeSampler(threading.Thread):
    """Peak of the tree's summed PSS, sampled every 20 ms (costly: use in untimed runs)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = self.threads = self.fds = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(OSError):
                self.fds = max(self.fds, len(os.listdir(f"/proc/{self.root}/fd")))
                status = Path(f"/proc/{self.root}/status").read_text()
                threads = next(x for x in status.splitlines() if x.startswith("Threads:"))
                self.threads = max(self.threads, int(threads.split()[1]))
            pids = _descendants(self.root) + [
                p for p in _children() if p != self.root and _is_ssh_master(p)
            ]
            self.peak = max(self.peak, sum(_pss(p) for p in pids))
            self._stop_event.wait(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _is_ssh_master(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"
    except OSError:
        return False
