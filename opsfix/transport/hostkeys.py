"""Host key checking against every known_hosts file a host's spec names.

paramiko reads only `~/.ssh/known_hosts` and ignores ssh_config's UserKnownHostsFile, so
opsfix does the checking itself, with OpenSSH's rules: a known key is accepted, a changed
key is always refused (and never written), and a new key is accepted only under trust on
first use, which records it (hashed, like Debian's `HashKnownHosts yes`). Host patterns
match as OpenSSH's do (`*`, `?`, `!negated`, hashed names). A key on a `@revoked` line is
refused whatever else the files say; a host that a `@cert-authority` line covers and whose
own key is not on file is refused with that reason (opsfix does not check host
certificates: list the host's key itself).
"""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import paramiko
from paramiko.hostkeys import HostKeyEntry, HostKeys

from opsfix.errors import HostKeyError

Verdict = Literal["known", "changed", "new"]

_cache_lock = threading.Lock()
_file_cache: dict[tuple[str, int, int], _Index] = {}
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


@dataclass(frozen=True)
class _Entry:
    """One known_hosts line: its marker (`revoked`, `cert-authority` or none), patterns, key."""

    marker: str | None
    patterns: tuple[str, ...]
    key: paramiko.PKey


class KnownHosts:
    """The union of several known_hosts files (missing files count as empty)."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = tuple(files)

    def keys_for(self, name: str, marker: str | None = None) -> list[KnownKey]:
        """The keys on file for `name`: plain lines, or those with `marker`."""
        return [
            KnownKey(path, entry.key)
            for path in self.files
            for entry in _entries(path).lookup(name)
            if entry.marker == marker
        ]

    def revoked(self, name: str, key: paramiko.PKey) -> str | None:
        """The file that revokes `key` for `name`, if one does."""
        return next((k.path for k in self.keys_for(name, "revoked") if k.key == key), None)

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
        revoked_in = self.known.revoked(hostname, key)
        if revoked_in:
            raise HostKeyError(
                self.host,
                f"host key for {hostname} is REVOKED: {key.get_name()} {fingerprint(key)} "
                f"is marked @revoked in {revoked_in}; refused",
            )
        verdict = self.known.check(hostname, key)
        if verdict == "known":
            return
        authorities = self.known.keys_for(hostname, "cert-authority")
        if verdict == "new" and authorities:
            raise HostKeyError(self.host, authority_message(hostname, key, authorities))
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


def authority_message(name: str, key: paramiko.PKey, authorities: Sequence[KnownKey]) -> str:
    where = ", ".join(dict.fromkeys(a.path for a in authorities))
    return (
        f"host key for {name} ({key.get_name()} {fingerprint(key)}) would need a host "
        f"certificate: {where} trusts a @cert-authority for {name}, and opsfix does not "
        "check host certificates; refused (add the host's own key to a known_hosts file)"
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


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """OpenSSH's rule: a negated pattern that matches excludes; else any pattern includes."""
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_matches(name, pattern[1:] if negated else pattern):
            if negated:
                return False
            matched = True
    return matched


def _pattern_matches(name: str, pattern: str) -> bool:
    if pattern.startswith("|1|"):
        return HostKeys.hash_host(name, pattern) == pattern
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == name.lower()
    return _wildcard(pattern).fullmatch(name.lower()) is not None


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """`*` and `?` only: brackets are literal (`[host]:2222` is a name, not a class)."""
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern.lower())
    return re.compile("".join(parts), re.DOTALL)


class _Index:
    """A file's entries, found by name without reading every line.

    A line whose patterns are all plain names is filed under each name; only the rest
    (wildcards, negations, hashed names) are matched one by one. Scanning every line for
    every host costs a fleet of n hosts n² pattern matches: 1.6 s of CPU at 1,000.
    """

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._by_name: dict[str, list[tuple[int, _Entry]]] = {}
        self._others: list[tuple[int, _Entry]] = []
        for number, entry in enumerate(entries):
            if all(_is_plain(p) for p in entry.patterns):
                for name in dict.fromkeys(p.lower() for p in entry.patterns):
                    self._by_name.setdefault(name, []).append((number, entry))
            else:
                self._others.append((number, entry))

    def lookup(self, name: str) -> list[_Entry]:
        """The entries whose patterns match `name`, in file order."""
        found = self._by_name.get(name.lower(), [])
        found = found + [(n, e) for n, e in self._others if _matches(name, e.patterns)]
        return [entry for _, entry in sorted(found, key=lambda pair: pair[0])]


_NO_ENTRIES = _Index(())


def _is_plain(pattern: str) -> bool:
    return not (pattern.startswith(("!", "|1|")) or "*" in pattern or "?" in pattern)


def _entries(path: str) -> _Index:
    """A file's parsed entries, re-read only when the file changed."""
    try:
        st = os.stat(path)
    except OSError:
        return _NO_ENTRIES
    key = (path, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key not in _file_cache:
            _file_cache[key] = _Index(_parse(path))
        return _file_cache[key]


MARKERS = ("@revoked", "@cert-authority")


def _parse(path: str) -> list[_Entry]:
    entries = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            marker = None
            if line.startswith("@"):
                marker, _, line = line.partition(" ")
                if marker not in MARKERS:
                    continue  # an unknown marker: OpenSSH skips the line too
            try:
                entry = HostKeyEntry.from_line(line.strip())
            except Exception:  # a corrupt line must not hide the others
                continue
            if entry is not None and entry.key is not None:
                entries.append(_Entry(marker and marker[1:], tuple(entry.hostnames), entry.key))
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
