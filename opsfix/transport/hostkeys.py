"""Host key checking against every known_hosts file a host's spec names.

paramiko reads only `~/.ssh/known_hosts` and ignores ssh_config's UserKnownHostsFile, so
opsfix does the checking itself, with OpenSSH's rules: a known key is accepted, a changed
key is always refused (and never written), and a new key is accepted only under trust on
first use, which records it (hashed, like Debian's `HashKnownHosts yes`).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import paramiko
from paramiko.hostkeys import HostKeyEntry, HostKeys

from opsfix.errors import HostKeyError

Verdict = Literal["known", "changed", "new"]

_cache_lock = threading.Lock()
_file_cache: dict[tuple[str, int, int], list[HostKeyEntry]] = {}
_record_lock = threading.Lock()


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint exactly as OpenSSH prints it: `SHA256:<base64, unpadded>`."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(hostname: str, port: int) -> str:
    """How known_hosts names a host: `host` on port 22, `[host]:port` elsewhere."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


@dataclass(frozen=True)
class KnownKey:
    path: str
    key: paramiko.PKey


class KnownHosts:
    """The union of several known_hosts files (missing files count as empty)."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = tuple(files)

    def keys_for(self, name: str) -> list[KnownKey]:
        return [
            KnownKey(path, entry.key)
            for path in self.files
            for entry in _entries(path)
            if _matches(name, entry)
        ]

    def check(self, name: str, key: paramiko.PKey) -> Verdict:
        """Known if any file holds this exact key for `name`; changed if it holds others."""
        known = self.keys_for(name)
        if any(k.key == key for k in known):
            return "known"
        return "changed" if known else "new"

    def record(self, name: str, key: paramiko.PKey) -> str:
        """Append a new key to the first file (created 0600); returns the file's path."""
        if not self.files:
            raise ValueError("no known_hosts file to record a new host key in")
        path = self.files[0]
        with _record_lock:
            if self.check(name, key) == "known":
                return path
            _append_line(path, f"{HostKeys.hash_host(name)} {key.get_name()} {key.get_base64()}\n")
        return path


class VerifyingPolicy(paramiko.MissingHostKeyPolicy):
    """Checks every server key against our files (paramiko's own host key table stays empty)."""

    def __init__(self, host: str, known: KnownHosts, *, trust_new: bool) -> None:
        self.host = host
        self.known = known
        self.trust_new = trust_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        verdict = self.known.check(hostname, key)
        if verdict == "known":
            return
        if verdict == "changed":
            raise HostKeyError(
                self.host, changed_message(hostname, key, self.known.keys_for(hostname))
            )
        if not self.trust_new:
            raise HostKeyError(self.host, unknown_message(hostname, key, self.known.files))
        self.known.record(hostname, key)


def unknown_message(name: str, key: paramiko.PKey, files: Sequence[str]) -> str:
    return (
        f"unknown host key for {name}: {key.get_name()} {fingerprint(key)} is in none of "
        f"{', '.join(files) or 'no known_hosts files'}; check the fingerprint and add it, "
        "or allow trust on first use"
    )


def changed_message(name: str, key: paramiko.PKey, known: Sequence[KnownKey]) -> str:
    expected = "; ".join(f"{k.key.get_name()} {fingerprint(k.key)} in {k.path}" for k in known)
    return (
        f"host key for {name} has CHANGED (possible man-in-the-middle): server offered "
        f"{key.get_name()} {fingerprint(key)}, expected {expected}; refused and not recorded"
    )


def preferred_key_types(offered: Sequence[str], known: Sequence[str]) -> list[str]:
    """Put the key types we already know for a host first, as OpenSSH does.

    Otherwise a server that also has, say, an RSA key might present that one and be
    refused as "changed" although its ed25519 key is on file.
    """
    wanted = []
    for name in known:
        wanted += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if name == "ssh-rsa" else [name]
    first = [t for t in dict.fromkeys(wanted) if t in offered]
    return first + [t for t in offered if t not in first]


def _matches(name: str, entry: HostKeyEntry) -> bool:
    for pattern in entry.hostnames:
        if pattern.startswith("|1|"):
            if HostKeys.hash_host(name, pattern) == pattern:
                return True
        elif pattern == name:
            return True
    return False


def _entries(path: str) -> list[HostKeyEntry]:
    """A file's parsed entries, re-read only when the file changed."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    key = (path, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key not in _file_cache:
            _file_cache[key] = _parse(path)
        return _file_cache[key]


def _parse(path: str) -> list[HostKeyEntry]:
    entries = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", "@")):
                continue
            try:
                entry = HostKeyEntry.from_line(line)
            except Exception:  # a corrupt line must not hide the others
                continue
            if entry is not None:
                entries.append(entry)
    return entries


def _append_line(path: str, line: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        f.write(line.encode())
