"""The floor: the least any tool can do for health-4 with paramiko.

One connection per host (host key checked against known_hosts), TCP_NODELAY, the four
commands in one exec, every host at once in its own thread. Prints one line per host.

Two things every paramiko program at 1,000 hosts needs, opsfix included: known_hosts is
read once and looked up by name (paramiko's `load_host_keys` in each thread parses the
whole file per connection, n² under logging's global lock: the run never ends), and
each connection's reader thread wakes once a second when idle, not ten times. Logins
under way at once are bounded as opsfix bounds them (32 per core): a thousand at once
on two busy cores all pass their timeouts together.

    python floor.py KEY KNOWN_HOSTS ADDRESS...
"""

from __future__ import annotations

import os
import socket
import sys
import threading

import paramiko
from paramiko.hostkeys import HostKeyEntry

SCRIPT = "nginx -t; ss -ltnH 'sport = :80' | grep -q .; df -P /var/log; du -sk /var/log"
TIMEOUT = 60  # a host that takes longer counts as failed; the run never hangs
LOGINS = threading.BoundedSemaphore(32 * (os.cpu_count() or 1))


class Transport(paramiko.Transport):
    _active_check_timeout = 1.0


class KnownHosts(paramiko.MissingHostKeyPolicy):
    """Every host's key from one read of known_hosts; an unknown or other key is refused."""

    def __init__(self, path: str) -> None:
        self.keys: dict[str, paramiko.PKey] = {}
        with open(path) as f:
            for line in f:
                entry = HostKeyEntry.from_line(line)
                if entry is not None and entry.key is not None:
                    self.keys.update(dict.fromkeys(entry.hostnames, entry.key))

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.keys.get(hostname) != key:
            raise paramiko.SSHException(f"host key of {hostname} not in known_hosts")


def probe(address: str, pkey: paramiko.PKey, known: KnownHosts, out: dict[str, str]) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(known)
    try:
        with LOGINS:
            sock = socket.create_connection((address, 22), timeout=TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.connect(
                address,
                username="root",
                pkey=pkey,
                sock=sock,
                look_for_keys=False,
                allow_agent=False,
                timeout=TIMEOUT,
                banner_timeout=TIMEOUT,
                auth_timeout=TIMEOUT,
                transport_factory=Transport,
            )
        _, stdout, stderr = client.exec_command(SCRIPT, timeout=TIMEOUT)
        text = stdout.read().decode() + stderr.read().decode()
        stdout.channel.recv_exit_status()
        out[address] = text
    except Exception as exc:  # the host counts as failed; the others go on
        print(address, "error:", exc, file=sys.stderr)
    finally:
        client.close()


def main(key: str, known_hosts: str, *addresses: str) -> int:
    pkey = paramiko.Ed25519Key.from_private_key_file(key)
    known = KnownHosts(known_hosts)
    out: dict[str, str] = {}
    threads = [threading.Thread(target=probe, args=(a, pkey, known, out)) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for address in addresses:
        healthy = "test is successful" in out.get(address, "")
        print(address, "ok" if healthy else "FAILED")
    return 0 if len(out) == len(addresses) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
