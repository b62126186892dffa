"""`opsfix worker`: a Celery worker that runs the hosts cluster runs send (docs/scale.md)."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from opsfix.commands.common import EXIT_OK, ssh_options
from opsfix.errors import OptionsError

MISSING = "opsfix worker needs Celery: pip install 'opsfix[cluster]' (scripts/setup.sh does)"
BROKER_ENV = "OPSFIX_CLUSTER_BROKER"
PASSWORD_FILE_ENV = "OPSFIX_BECOME_PASSWORD_FILE"


def register(sub: Any) -> None:
    p = sub.add_parser("worker", help="run the hosts that `apply --cluster` sends")
    p.add_argument(
        "--broker",
        metavar="URL",
        help=f"redis://HOST:PORT/DB or amqp://USER@HOST//; default ${BROKER_ENV}",
    )
    p.add_argument(
        "-Q",
        "--queue",
        action="append",
        default=[],
        metavar="SITE",
        help="take the hosts whose opsfix_site is SITE (repeatable; default: hosts with none)",
    )
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="hosts run at once, one process each (default %(default)s)",
    )
    p.add_argument("--name", help="this worker's name in reports (default: the machine's)")
    p.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the cluster key (default $OPSFIX_CLUSTER_KEY_FILE)",
    )
    p.add_argument(
        "--become-password-file",
        type=Path,
        metavar="FILE",
        help="the sudo password for this worker's hosts (default $OPSFIX_BECOME_PASSWORD_FILE, "
        "else $OPSFIX_BECOME_PASSWORD)",
    )
    ssh_options(p)
    p.add_argument(
        "--print-unit",
        action="store_true",
        help="print a systemd unit template (opsfix-worker@SITE.service) and exit",
    )
    p.set_defaults(func=_cmd_worker)


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.print_unit:
        from importlib import resources

        unit = resources.files("opsfix.cluster").joinpath("opsfix-worker@.service")
        print(unit.read_text(encoding="utf-8"), end="")
        return EXIT_OK
    try:
        import celery  # noqa: F401
    except ImportError:
        raise OptionsError(MISSING) from None
    from opsfix.cluster.routing import DEFAULT_QUEUE, check_queue
    from opsfix.cluster.signing import load_key
    from opsfix.cluster.worker import WorkerSettings, default_cache, serve

    broker = args.broker or os.environ.get(BROKER_ENV)
    if not broker:
        raise OptionsError(f"opsfix worker: --broker URL or ${BROKER_ENV} is needed")
    if args.concurrency < 1:
        raise OptionsError("--concurrency must be at least 1")
    try:
        queues = [check_queue(q, "--queue") for q in args.queue] or [DEFAULT_QUEUE]
    except ValueError as exc:
        raise OptionsError(str(exc)) from None
    settings = WorkerSettings(
        key=load_key(args.key_file),
        cache=default_cache(),
        name=args.name or f"opsfix-{'-'.join(queues)}-{socket.gethostname()}",
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=_become_password(args.become_password_file),
    )
    serve(broker, settings, queues, args.concurrency)
    return EXIT_OK


def _become_password(path: Path | None) -> Any:
    """From the worker's own file or environment: never from the broker."""
    from opsfix.commands.common import become_password
    from opsfix.secret import Secret

    if path is None and os.environ.get(PASSWORD_FILE_ENV):
        path = Path(os.environ[PASSWORD_FILE_ENV])
    if path is None:
        return become_password(False)
    try:
        text = path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise OptionsError(f"--become-password-file {path}: {exc.strerror}") from None
    return Secret(text) if text else None
