"""Messages between a run and the connection keeper (opsfix.transport.keeper.daemon).

A message is a 4-byte length and a pickle. Both ends are this same opsfix, on one
machine, as one user: the socket lives in a private folder and the keeper checks each
peer's uid, so nothing else can speak on it. Errors cross as plain data and come back
as the exception types the in-process transport raises.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from typing import Any

from opsfix.errors import CommandTimeout, ConnectionFailed, HostKeyError

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 256 << 20  # a put of a large file is the largest message


class Closed(Exception):
    """The other end closed the socket."""


def send(sock: socket.socket, lock: threading.Lock, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        sock.sendall(_HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> Any:
    """The next message; raises Closed once the other end has closed."""
    (size,) = _HEADER.unpack(_exactly(sock, _HEADER.size))
    if size > MAX_MESSAGE:
        raise Closed(f"message of {size} bytes")
    return pickle.loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise Closed("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_error(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, CommandTimeout):
        return ("timeout", exc.host, exc.command, exc.timeout, exc.stdout, exc.stderr)
    if isinstance(exc, HostKeyError):
        return ("hostkey", exc.host, exc.reason)
    if isinstance(exc, ConnectionFailed):
        return ("failed", exc.host, exc.reason)
    return ("other", f"{type(exc).__name__}: {exc}")


def decode_error(data: tuple[Any, ...], host: str) -> Exception:
    kind, *args = data
    if kind == "timeout":
        return CommandTimeout(*args)
    if kind == "hostkey":
        return HostKeyError(*args)
    if kind == "failed":
        return ConnectionFailed(*args)
    return ConnectionFailed(host, f"connection keeper: {args[0]}")
