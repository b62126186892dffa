"""The cluster key and the signature on every task: workers run only what it signed.

Coordinator and workers share one secret key (at least 32 bytes, from
`$OPSFIX_CLUSTER_KEY_FILE` or `--key-file`, else `$OPSFIX_CLUSTER_KEY`; never a command
line value, never printed). A task's envelope (run, host, inventory entry, options, the
bundle's sha256, an expiry) is signed with HMAC-SHA256 over its canonical JSON; the
bundle itself is checked against the hash the signature covers. Anyone who can write to
the broker but lacks the key can neither change a task nor forge one; an old task
replayed after its expiry is refused too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsfix.cluster.bundle import TaskRefused
from opsfix.errors import OptionsError

KEY_ENV = "OPSFIX_CLUSTER_KEY"
KEY_FILE_ENV = "OPSFIX_CLUSTER_KEY_FILE"
MIN_KEY_BYTES = 32


class ClusterKey:
    """The shared key; str() and repr() never show it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise OptionsError(
                f"the cluster key is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed "
                "(e.g. `head -c 48 /dev/urandom | base64 > cluster.key`)"
            )
        self._key = key

    def __repr__(self) -> str:
        return "ClusterKey('********')"

    __str__ = __repr__

    def sign(self, envelope: Mapping[str, Any]) -> str:
        return hmac.new(self._key, canonical(envelope), hashlib.sha256).hexdigest()

    def verify(self, envelope: Any, signature: Any, now: float | None = None) -> None:
        """Raise TaskRefused unless `signature` is this key's over `envelope` and the
        envelope has not expired."""
        if not isinstance(envelope, Mapping) or not isinstance(signature, str):
            raise TaskRefused("the task carries no signed envelope")
        if not hmac.compare_digest(self.sign(envelope), signature):
            raise TaskRefused("signature does not match (another cluster key, or changed)")
        expires = envelope.get("expires")
        if not isinstance(expires, int | float) or (now or time.time()) > expires:
            raise TaskRefused("the task has expired (an old task sent again?)")


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def load_key(path: Path | None = None, env: Mapping[str, str] | None = None) -> ClusterKey:
    """The key from `path`, else $OPSFIX_CLUSTER_KEY_FILE, else $OPSFIX_CLUSTER_KEY.

    A key file others may read is refused: whoever reads it may command every worker."""
    env = os.environ if env is None else env
    named = path or (Path(env[KEY_FILE_ENV]) if env.get(KEY_FILE_ENV) else None)
    if named is not None:
        return ClusterKey(_read_private(named))
    if env.get(KEY_ENV):
        return ClusterKey(env[KEY_ENV].encode())
    raise OptionsError(
        f"no cluster key: set {KEY_FILE_ENV} (a file only you can read) or {KEY_ENV}, "
        "the same on the coordinator and every worker"
    )


def _read_private(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise OptionsError(
                    f"cluster key file {path}: others may read it (mode {stat.S_IMODE(mode):o});"
                    f" chmod 600 {path}"
                )
            return handle.read().strip()
    except OSError as exc:
        raise OptionsError(f"cluster key file {path}: {exc.strerror}") from None
