"""`opsfix apply` and `opsfix check`: run a playbook against the inventory."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from opsfix import startup_gc
from opsfix.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_UNREACHABLE,
    become_password,
    inventory_sources,
    run_options,
)
from opsfix.engine import rollout
from opsfix.errors import OptionsError
from opsfix.escape import printable


def register(sub: Any) -> None:
    apply = sub.add_parser("apply", help="check, remediate, verify")
    run_options(apply)
    apply.add_argument(
        "--check",
        dest="dry_run",
        action="store_true",
        help="dry run: show what each remediation would do, change nothing",
    )
    apply.add_argument("--diff", action="store_true", help="show file diffs in a real run too")
    apply.add_argument(
        "--serial",
        metavar="N[,N%...]",
        help="hosts per batch, e.g. 1,25%%,100%% (overrides the playbook)",
    )
    apply.add_argument(
        "--max-fail-percentage",
        type=float,
        metavar="PCT",
        help="stop the rollout when a batch has more failing hosts than this",
    )
    apply.add_argument(
        "--defer-ok",
        action="store_true",
        help="exit 0 when the only problems left are repairs deferred to a maintenance window",
    )
    apply.add_argument(
        "--override-window",
        action="store_true",
        help="run disruptive repairs outside maintenance windows (needs --reason)",
    )
    apply.add_argument("--reason", help="why the window is overridden (recorded)")
    apply.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another run that holds a host",
    )
    apply.add_argument(
        "--no-flap-guard",
        dest="flap_guard",
        action="store_false",
        help="repair even a step that was repaired too often lately (a person decided)",
    )
    evidence_options(apply)
    apply.set_defaults(func=_cmd_run, mode="apply")

    check = sub.add_parser("check", help="run the checks only; never changes a host")
    run_options(check)
    evidence_options(check)
    for parser in (apply, check):
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="only the hosts the last recorded run of this playbook left failed, "
            "unreachable or not attempted",
        )
    for parser in (apply, check):
        cluster_options(parser)
    check.set_defaults(
        func=_cmd_run,
        mode="check",
        dry_run=False,
        diff=False,
        serial=None,
        max_fail_percentage=None,
        defer_ok=False,
        override_window=False,
        reason=None,
        lock_wait=60.0,
        flap_guard=False,
    )


def cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster",
        metavar="URL",
        help="send the hosts to `opsfix worker`s over this broker (redis://..., amqp://...)",
    )
    p.add_argument(
        "--cluster-key-file",
        type=Path,
        metavar="FILE",
        help="the key that signs the tasks (default $OPSFIX_CLUSTER_KEY_FILE)",
    )


def evidence_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--junit",
        type=Path,
        metavar="PATH",
        help="write checks and verify results as JUnit XML (host x check as test cases)",
    )
    p.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="write Prometheus metrics for node_exporter's textfile collector (*.prom)",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from opsfix.evidence.statedir import private_folder, state_dir
    from opsfix.transport.keeper.link import keeper_link, max_age_seconds, persist_seconds

    private_folder(state_dir())  # a folder others could write in is refused before anything
    if args.cluster:
        return _run(args, None)  # the workers connect to the hosts, not this process
    # first: a keeper this run starts loads paramiko while this process loads the rest
    persist = persist_seconds(args.persist)
    with keeper_link(persist, max_age_seconds(args.persist_max_age)) as keeper:
        return _run(args, keeper)


def _run(args: argparse.Namespace, keeper: Any) -> int:
    from opsfix.engine.fleet import Mode
    from opsfix.runner import RunRequest, run_playbook
    from opsfix.transport.settings import output_limit_bytes

    if args.forks < 1:
        raise OptionsError("--forks must be at least 1")
    mode: Mode = "dry-run" if args.dry_run else args.mode
    if args.override_window and not (args.reason or "").strip():
        raise OptionsError("--override-window needs --reason TEXT (it is recorded)")
    serial = None
    if args.serial:
        try:
            serial = rollout.validate_serial(
                [int(s) if s.strip().isdigit() else s.strip() for s in args.serial.split(",")]
            )
        except ValueError as exc:
            raise OptionsError(f"--serial: {exc}") from None
    if args.max_fail_percentage is not None and not 0 <= args.max_fail_percentage <= 100:
        raise OptionsError("--max-fail-percentage must be between 0 and 100")
    _check_paths(args)
    request = RunRequest(
        playbook=args.playbook,
        inventory=inventory_sources(args.inventory),
        limit=args.limit,
        mode=mode,
        forks=args.forks,
        extra_vars=args.extra_vars,
        plugin_dirs=args.plugins,
        ssh_config=args.ssh_config,
        known_hosts=args.known_hosts,
        trust_new_host_keys=args.trust_new_host_keys,
        become_password=become_password(args.ask_become_pass),
        connect_timeout=args.timeout,
        command_timeout=args.command_timeout,
        output_limit=output_limit_bytes(args.output_limit),
        serial=serial,
        max_fail_percentage=args.max_fail_percentage,
        show_diff=args.diff,
        override_reason=args.reason if args.override_window else None,
        lock_wait=args.lock_wait,
        flap_guard=args.flap_guard,
        retry_failed=args.retry_failed,
    )
    live = _live_progress(args, mode)
    logger = _run_logger(args, live is not None)
    jsonl = None
    if args.format == "jsonl":
        from opsfix.evidence.runlog import JsonLines

        jsonl = JsonLines()
    try:
        with live or contextlib.nullcontext():
            if args.cluster:
                report, warnings, secrets = _run_cluster(args, request, live, logger, jsonl)
            else:
                report, warnings, secrets = run_playbook(
                    request,
                    on_event=_on_event(live, logger),
                    on_bound=startup_gc.settled,
                    keeper=keeper,
                    on_record=_recorder(jsonl, logger),
                    wrap_connect=_wrap_connect(logger),
                )
    finally:
        if logger is not None:
            from opsfix.evidence import runlog

            runlog.close(logger)
    for warning in warnings:
        print(f"WARNING: {printable(warning)}", file=sys.stderr)
    from opsfix.evidence import output

    code = exit_code(report, defer_ok=args.defer_ok)
    run_id = _record(args, report, secrets, code)
    if jsonl is not None:
        jsonl.summary(report, code, run_id)
    else:
        if args.format == "json":
            text = _json_with_run_id(output.to_json(report), run_id)
        else:
            text = output.to_text(report, args.verbose)
        print(output.redact(text, secrets))
    return _finish(args, report, secrets, code, run_id, interactive=live is not None)


def _run_cluster(args: argparse.Namespace, request: Any, live: Any, logger: Any, jsonl: Any) -> Any:
    """The run's hosts as tasks to Celery workers (opsfix.cluster, docs/scale.md)."""
    try:
        import celery  # noqa: F401
    except ImportError:
        raise OptionsError(
            "--cluster needs Celery: pip install 'opsfix[cluster]' (scripts/setup.sh does)"
        ) from None
    from opsfix.cluster.coordinator import ClusterOptions, run_cluster

    return run_cluster(
        request,
        ClusterOptions(args.cluster, args.cluster_key_file),
        on_event=_on_event(live, logger),
        on_bound=startup_gc.settled,
        on_record=_recorder(jsonl, logger),
    )


def _run_logger(args: argparse.Namespace, live: bool) -> Any:
    """-v lines on stderr (none while the live view draws there) and the log file; None
    (and logging never imported) when neither is asked for."""
    verbosity = 0 if live else args.verbose
    if verbosity <= 0 and args.log_file is None and not os.environ.get("OPSFIX_LOG", "").strip():
        return None
    from opsfix.evidence.runlog import log_path, setup

    return setup(verbosity, log_path(args.log_file))


def _on_event(live: Any, logger: Any) -> Any:
    """Host events to the live view and/or the log (both when both are on)."""
    if logger is None:
        return live.event if live else None
    from opsfix.evidence.runlog import events

    logged = events(logger)
    if live is None:
        return logged

    def both(host: str, text: str) -> None:
        live.event(host, text)
        logged(host, text)

    return both


def _recorder(jsonl: Any, logger: Any) -> Any:
    """The engine's structured progress to --format jsonl, and the run's secret values
    (told before any host is contacted) to both it and the log, which mask them."""
    if jsonl is None and logger is None:
        return None

    def record(kind: str, data: Any) -> None:
        if kind == "secrets" and logger is not None:
            from opsfix.evidence.runlog import mask

            mask(logger, data)
        if jsonl is not None:
            jsonl(kind, data)

    return record


def _wrap_connect(logger: Any) -> Any:
    if logger is None:
        return None
    from opsfix.evidence.runlog import COMMANDS, wrap_connect

    return wrap_connect(logger) if logger.isEnabledFor(COMMANDS) else None


def exit_code(report: Any, defer_ok: bool = False) -> int:
    """2 failed (or not attempted, or deferred without --defer-ok), 3 unreachable, else 0."""
    statuses = {h.status for h in report.hosts}
    if statuses & {"failed", "not_attempted"} or ("deferred" in statuses and not defer_ok):
        return EXIT_FAILED
    if "unreachable" in statuses:
        return EXIT_UNREACHABLE
    return EXIT_OK


# -- evidence: history, JUnit, metrics, live progress (docs/observability.md) -------------


def _check_paths(args: argparse.Namespace) -> None:
    """Plugin folders must exist and output files have a folder, before any host is contacted."""
    for folder in args.plugins:
        if not folder.is_dir():
            raise OptionsError(f"--plugins {folder}: no such folder")
    for option, path in (("--junit", args.junit), ("--metrics-file", args.metrics_file)):
        if path is not None and not path.parent.resolve().is_dir():
            raise OptionsError(f"{option} {path}: no such folder {str(path.parent)!r}")


def _live_progress(args: argparse.Namespace, mode: str) -> Any:
    """Per-host status lines on a terminal; None when nobody watches (pipes, CI)."""
    from opsfix.evidence import progress

    if not progress.is_interactive(sys.stdout, sys.stderr):
        return None
    return progress.LiveProgress(f"{mode} {args.playbook.name}")


def _record(args: argparse.Namespace, report: Any, secrets: list[str], code: int) -> str | None:
    """Record the run in history (secrets masked); its id, or None with a warning."""
    from opsfix.evidence import history
    from opsfix.evidence.state import StateError, open_store

    run_id = history.new_run_id(report.started)
    doc = history.bundle_doc(
        report,
        run_id=run_id,
        playbook_path=args.playbook,
        options=_recorded_options(args),
        exit_code=code,
        secrets=secrets,
    )
    try:
        store = open_store()
        try:
            history.record(store, doc)
        finally:
            store.close()
    except (StateError, OSError, ValueError) as exc:
        print(f"WARNING: run not recorded in history: {exc}", file=sys.stderr)
        return None
    return run_id


def _absolute(path: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _recorded_options(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as history keeps it: -e values left out (names only), no secrets."""
    from opsfix.playbook.variables import parse_extra_vars

    extra = []
    for item in args.extra_vars:
        names = [item] if item.startswith("@") else sorted(parse_extra_vars([item]))
        extra += names
    plain = [
        *("limit", "forks", "serial", "max_fail_percentage", "diff", "defer_ok", "dry_run"),
        *("override_window", "reason", "lock_wait", "format", "verbose", "timeout"),
        *("command_timeout", "trust_new_host_keys", "ask_become_pass", "flap_guard"),
        "retry_failed",
    ]
    options: dict[str, Any] = {key: getattr(args, key, None) for key in plain}
    options["command"] = args.mode
    options["cluster"] = _without_password(args.cluster) if args.cluster else None
    options["extra_vars"] = extra
    # absolute: the report suggests commands with them, to be run from anywhere
    for key in ("plugins", "known_hosts"):
        options[key] = [_absolute(p) for p in getattr(args, key, None) or []]
    try:  # the inventory the run used, given or found ($OPSFIX_INVENTORY, ./inventory)
        options["inventory"] = [_absolute(p) for p in inventory_sources(args.inventory)]
    except OptionsError:
        options["inventory"] = []
    for key in ("ssh_config", "junit", "metrics_file"):
        value = getattr(args, key, None)
        options[key] = _absolute(value) if value is not None else None
    return options


def _without_password(url: str) -> str:
    """A broker URL as history may keep it: any password in it masked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}********@{host}"))


def _json_with_run_id(text: str, run_id: str | None) -> str:
    import json

    data = json.loads(text)
    data["run_id"] = run_id
    return json.dumps(data, indent=2)


def _finish(
    args: argparse.Namespace,
    report: Any,
    secrets: list[str],
    code: int,
    run_id: str | None,
    *,
    interactive: bool,
) -> int:
    """After the report: the summary table on a terminal, then the files asked for."""
    from opsfix.evidence import history

    summary = interactive and args.format == "text"
    if not (summary or args.junit or args.metrics_file):
        return code
    safe = history.masked(report, secrets)
    if summary:
        from opsfix.evidence import progress

        if report.mode != "check":
            progress.print_summary(safe)
        if run_id:
            print(f"recorded as run {run_id}: opsfix show {run_id}", file=sys.stderr)
    try:
        if args.junit is not None:
            from opsfix.evidence.junit import to_junit
            from opsfix.evidence.output import redact

            args.junit.write_text(redact(to_junit(safe), secrets), encoding="utf-8")
        if args.metrics_file is not None:
            _write_metrics(args.metrics_file, safe, args.playbook, run_id is not None)
    except OSError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_UNEXPECTED
    return code


def _write_metrics(path: Path, report: Any, playbook: Path, recorded: bool) -> None:
    """Remediation counts over every recorded run of the playbook (a counter must not go
    down); this run's alone when it could not be recorded."""
    from opsfix.evidence import metrics
    from opsfix.evidence.state import StateError, open_store

    totals = None
    if recorded:
        try:
            store = open_store()
            try:
                totals = store.remediation_totals(str(playbook.resolve()))
            finally:
                store.close()
        except StateError:
            totals = None
    metrics.write_textfile(path, report, totals)
