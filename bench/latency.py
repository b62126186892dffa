"""How long a connection's first commands take: opsfix's SSH transport against one lab host.

Usage (root: the lab builds network namespaces), from the repository:

    sudo .venv/bin/python bench/latency.py [--connections 20]

The health-4 and recover-1 workloads run 20 or 100 hosts at once on a busy machine, where
a per-connection delay hides behind the others. This one runs a single host, one
connection after another, and times each connection's handshake, first command and second
command, with opsfix's socket as it is and once more without its quick ACKs
(`TCP_QUICKACK` after each read): sshd's two messages right after a login otherwise wait
for the client's delayed ACK (up to 40 ms) before the first channel opens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LAB_NAME = "olatency"
LAB_SUBNET = "10.243.0.0/24"


def measure(connect: Callable[[], Any], count: int) -> dict[str, float]:
    """Median milliseconds of the handshake, the first and the second `true`."""
    phases: dict[str, list[float]] = {"handshake": [], "first command": [], "second command": []}
    for _ in range(count):
        began = time.perf_counter()
        conn = connect()
        opened = time.perf_counter()
        conn.run("true")
        first = time.perf_counter()
        conn.run("true")
        second = time.perf_counter()
        conn.close()
        phases["handshake"].append(opened - began)
        phases["first command"].append(first - opened)
        phases["second command"].append(second - first)
    return {name: 1000 * statistics.median(values) for name, values in phases.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=20, help="per variant (default 20)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from opsfix import lab as lablib
    from opsfix.transport import ssh
    from opsfix.transport.spec import ConnectionSpec

    scratch = Path(tempfile.mkdtemp(prefix="opsfix-latency-"))
    lab = lablib.up(1, state_dir=scratch / "lab", name=LAB_NAME, subnet=LAB_SUBNET)
    try:
        name, address = next(iter(lab.hosts.items()))
        spec = ConnectionSpec(
            host=name,
            hostname=address,
            user="root",
            key_file=str(lab.private_key_path),
            known_hosts_files=(str(lab.known_hosts_path),),
        )

        def connect() -> Any:
            conn = ssh.SSHConnection(spec)
            conn.open()
            return conn

        quick_ack = ssh.quick_ack
        rows = []
        for label, wrap in (("opsfix", quick_ack), ("without quick ACKs", lambda s: s)):
            ssh.quick_ack = wrap  # type: ignore[assignment]
            connect().close()  # warm: key loaded, sshd's pages cached
            rows.append((label, measure(connect, args.connections)))
        ssh.quick_ack = quick_ack
    finally:
        lablib.down(scratch / "lab")
    print(f"one lab host, {args.connections} connections per variant, medians (ms)\n")
    print("| socket | handshake | first command | second command |")
    print("| --- | --: | --: | --: |")
    for label, ms in rows:
        print(
            f"| {label} | {ms['handshake']:.1f} | {ms['first command']:.1f} | "
            f"{ms['second command']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
