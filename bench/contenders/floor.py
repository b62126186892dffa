"""The floor: the least any tool can do for health-4 with paramiko.

One connection per host (host key checked against known_hosts), TCP_NODELAY, the four
commands in one exec, every host at once in its own thread. Prints one line per host.

    python floor.py KEY KNOWN_HOSTS ADDRESS...
"""

from __future__ import annotations

import socket
import sys
import threading

import paramiko

SCRIPT = "nginx -t; ss -ltnH 'sport = :80' | grep -q .; df -P /var/log; du -sk /var/log"


def probe(address: str, pkey: paramiko.PKey, known_hosts: str, out: dict[str, str]) -> None:
    sock = socket.create_connection((address, 22), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.connect(
        address,
        username="root",
        pkey=pkey,
        sock=sock,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    _, stdout, stderr = client.exec_command(SCRIPT)
    text = stdout.read().decode() + stderr.read().decode()
    stdout.channel.recv_exit_status()
    client.close()
    out[address] = text


def main(key: str, known_hosts: str, *addresses: str) -> int:
    pkey = paramiko.Ed25519Key.from_private_key_file(key)
    out: dict[str, str] = {}
    threads = [threading.Thread(target=probe, args=(a, pkey, known_hosts, out)) for a in addresses]
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
