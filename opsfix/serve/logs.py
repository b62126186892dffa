"""Structured logs: one JSON object a line, `ts`, `event` and the event's fields.

The stream is bound when the log is made: verify's pytest swaps `sys.stderr` while it
captures, and the server's lines must not end up in its capture.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

__all__ = ["JsonLog"]


class JsonLog:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.__stderr__ or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = json.dumps({"ts": f"{stamp}Z", "event": event, **fields}, default=str)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass  # nobody reads the log any more (a closed pipe): the server goes on
