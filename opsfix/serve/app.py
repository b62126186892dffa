"""The ASGI application: `POST /alerts` (Alertmanager's webhook), `/healthz`, `/metrics`,
`/status`.

A request is refused, in this order, when its client sent too many (429), it carries no
valid credentials (401), its body is too large (413) or it is not a version-4
notification (400). A request never names what runs: alerts only select a configured
rule's playbook and an inventory host.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opsfix.serve.dispatch import Dispatcher
from opsfix.serve.guard import Credentials, RateLimiter
from opsfix.serve.metrics import ServeMetrics
from opsfix.serve.payload import PayloadError, parse

__all__ = ["Guards", "build_app"]


@dataclass(frozen=True)
class Guards:
    credentials: Credentials
    max_body: int = 1 << 20
    limiter: RateLimiter | None = None
    drain: float = 300.0  # seconds a run under way may take to finish on shutdown


class _TooLarge(Exception):
    pass


def build_app(
    dispatcher: Dispatcher,
    metrics: ServeMetrics,
    guards: Guards,
    log: Callable[..., None],
) -> Starlette:
    async def alerts(request: Request) -> Response:
        refusal = _refusal(request, guards)
        if refusal is None:
            try:
                body = await _body(request, guards.max_body)
                notification = parse(body)
            except _TooLarge:
                refusal = _error(413, f"body larger than {guards.max_body} bytes")
            except PayloadError as exc:
                refusal = _error(400, f"not an Alertmanager v4 notification: {exc}")
        if refusal is not None:
            metrics.requests.labels(str(refusal.status_code)).inc()
            log(
                "request_refused",
                code=refusal.status_code,
                client=_client(request),
                detail=bytes(refusal.body).decode()[:300],
            )
            return refusal
        # off the event loop: the host lookup reads the inventory
        decisions = await anyio.to_thread.run_sync(dispatcher.receive, notification)
        metrics.requests.labels("200").inc()
        return JSONResponse({"alerts": [asdict(d) for d in decisions]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", **_counts(dispatcher.snapshot())})

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def status(request: Request) -> Response:
        refusal = _refusal(request, guards)
        return refusal or JSONResponse(dispatcher.snapshot())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dispatcher.start()
        _warm_up()
        log("serving", rules=[r.name for r in dispatcher.rules.rules])
        try:
            yield
        finally:
            reason = "opsfix serve stopped before this run started"
            await anyio.to_thread.run_sync(dispatcher.stop, guards.drain, reason)
            log("stopped")

    routes = [
        Route("/alerts", alerts, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _warm_up() -> None:
    """What the first run needs loads now, on a thread of its own, not once an alert
    waits for it (the engine, the SSH transport, pytest and testinfra for verify)."""
    from opsfix.runner import import_soon

    for module in ("opsfix.runner", "opsfix.transport.ssh", "opsfix.verify.suite"):
        import_soon(module)


def _refusal(request: Request, guards: Guards) -> Response | None:
    if guards.limiter is not None and not guards.limiter.allow(_client(request)):
        return _error(429, "too many requests", {"Retry-After": "1"})
    if not guards.credentials.accepts(request.headers.get("authorization")):
        challenge = {"WWW-Authenticate": f'{guards.credentials.scheme} realm="opsfix"'}
        return _error(401, "missing or wrong credentials", challenge)
    return None


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(code: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": text}, status_code=code, headers=headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _counts(snapshot: dict[str, Any]) -> dict[str, int]:
    return {key: len(value) for key, value in snapshot.items()}
