"""The Celery application both sides share: broker, JSON only, and late acknowledgement.

A task is acknowledged only when its host is done (`task_acks_late`), and a worker
process that dies mid-host has its task put back (`task_reject_on_worker_lost`), so
another attempt recovers the host as the next apply would. A worker takes one task at a
time per process (`worker_prefetch_multiplier=1`): a task waiting in a dead worker's
prefetch is a host waiting for nothing. Redis hands an unacknowledged task to another
worker after `visibility_timeout` seconds; it must be longer than any host run, or a
slow host would be started twice (the host lock would refuse the second, but the host
would be reported failed): $OPSFIX_CLUSTER_VISIBILITY_TIMEOUT, default one hour.
Nothing is ever pickled: tasks and results are JSON, and nothing else is accepted.
"""

from __future__ import annotations

import os
from typing import Any

from opsfix.cluster.routing import DEFAULT_QUEUE

TASK = "opsfix.run_host"
VISIBILITY_ENV = "OPSFIX_CLUSTER_VISIBILITY_TIMEOUT"
BACKEND_ENV = "OPSFIX_CLUSTER_BACKEND"
RESULT_TTL = 24 * 3600  # results nobody fetched are dropped after a day


def backend_for(broker: str, env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Where results go: $OPSFIX_CLUSTER_BACKEND, else the Redis broker itself, else
    back over the broker (`rpc://`, for RabbitMQ)."""
    if env.get(BACKEND_ENV):
        return env[BACKEND_ENV]
    if broker.startswith(("redis://", "rediss://", "redis+socket://")):
        return broker
    return "rpc://"


def visibility_timeout(env: dict[str, str] | os._Environ[str] = os.environ) -> float:
    value = env.get(VISIBILITY_ENV, "3600")
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        from opsfix.errors import OptionsError

        raise OptionsError(f"{VISIBILITY_ENV}={value!r}: expected seconds, more than 0")
    return seconds


def make_app(broker: str) -> Any:
    """A Celery app for `broker` (redis://, amqp://, ...), configured for opsfix."""
    from celery import Celery

    app = Celery("opsfix", broker=broker, backend=backend_for(broker))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE,
        broker_transport_options={"visibility_timeout": visibility_timeout()},
        broker_connection_retry_on_startup=True,
        result_expires=RESULT_TTL,
        worker_redirect_stdouts=False,
    )
    return app
