"""Who may start a run, and how much they may send: credentials, body size, rate limits.

Credentials come from a file (never the command line, where `ps` shows them): a bearer
token (Alertmanager's `http_config.authorization.credentials_file`) or `user:password`
for basic auth (`http_config.basic_auth`). They are compared in constant time
(`hmac.compare_digest`) on the bytes of the whole header value.
"""

from __future__ import annotations

import base64
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsfix.errors import OptionsError

__all__ = ["Credentials", "RateLimiter"]


@dataclass(frozen=True)
class Credentials:
    """The one `Authorization` header value that is accepted."""

    expected: bytes
    scheme: str  # "Bearer" or "Basic", for the WWW-Authenticate answer

    @classmethod
    def bearer_file(cls, path: Path) -> Credentials:
        token = _read_secret(path, "--token-file")
        return cls(f"Bearer {token}".encode(), "Bearer")

    @classmethod
    def basic_file(cls, path: Path) -> Credentials:
        pair = _read_secret(path, "--basic-auth-file")
        if ":" not in pair:
            raise OptionsError(f"--basic-auth-file {path}: expected one line 'user:password'")
        encoded = base64.b64encode(pair.encode()).decode()
        return cls(f"Basic {encoded}".encode(), "Basic")

    def accepts(self, header: str | None) -> bool:
        given = (header or "").strip().encode("utf-8", "replace")
        return hmac.compare_digest(given, self.expected)


def _read_secret(path: Path, option: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionsError(f"{option} {path}: cannot read: {exc}") from None
    if not text or "\n" in text:
        raise OptionsError(f"{option} {path}: expected one non-empty line")
    if len(text) < 16 and option == "--token-file":
        raise OptionsError(f"{option} {path}: a token needs at least 16 characters")
    return text


class RateLimiter:
    """A token bucket per client address: `rate` requests a second, bursts of `burst`."""

    MAX_CLIENTS = 10_000

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._buckets) > self.MAX_CLIENTS:
                self._buckets.clear()  # a flood of addresses: start over, not grow
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return False
            self._buckets[client] = (tokens - 1, now)
            return True
