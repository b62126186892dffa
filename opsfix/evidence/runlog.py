"""What a run says while it works: `-v` lines, the log file, and `--format jsonl` events.

Verbosity is Ansible's: `-v` hosts and steps (connecting, checking, each repair tried,
the host's end); `-vv` also every command script sent to a host, with its exit status and
time; `-vvv` also SSH-level detail (which address, port, user and key, kept connection or
a new one, how long connecting took; paramiko's own debug lines where the run connects
itself). `--log-file PATH` (or `$OPSFIX_LOG`) appends everything `-vvv` shows, with
timestamps, whatever the terminal shows. Lines go through `logging`, one lock per
handler, so lines of hosts working in parallel never mix, on a terminal or in a pipe.
Host output is escaped before it is logged (opsfix.escape.printable).

`--format jsonl` prints one JSON document per line on stdout as the run goes:
`host_started`, `step` (its check before and after), `remediation` (each one tried),
`host_done`, `verify` (the host's tests), and last `run` (the summary and exit code).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from opsfix.escape import printable

LOGGER = "opsfix.run"
COMMANDS = 15  # between INFO (-v) and DEBUG (-vvv): -vv
LEVELS = {1: logging.INFO, 2: COMMANDS, 3: logging.DEBUG}
FORMAT = "%(asctime)s %(message)s"
SCRIPT_LIMIT = 4000  # characters of a command script shown


def log_path(given: Path | None) -> Path | None:
    """--log-file, else $OPSFIX_LOG, else none."""
    if given is not None:
        return given
    env = os.environ.get("OPSFIX_LOG", "").strip()
    return Path(env) if env else None


def setup(verbosity: int, log_file: Path | None, stream: IO[str] | None = None) -> Any:
    """The run's logger, or None when nothing is to be said (no -v, no log file)."""
    if verbosity <= 0 and log_file is None:
        return None
    logger = logging.getLogger(LOGGER)
    logger.handlers.clear()
    logger.propagate = False
    logging.addLevelName(COMMANDS, "COMMAND")
    if verbosity > 0:
        shown = logging.StreamHandler(stream or sys.stderr)
        shown.setLevel(LEVELS[min(verbosity, 3)])
        shown.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(shown)
    if log_file is not None:
        kept = logging.FileHandler(log_file, encoding="utf-8")
        kept.setLevel(logging.DEBUG)
        kept.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(kept)
    logger.setLevel(min(h.level for h in logger.handlers))
    if logger.isEnabledFor(logging.DEBUG):
        paramiko = logging.getLogger("paramiko")
        paramiko.setLevel(logging.DEBUG)
        for each in logger.handlers:
            if each.level <= logging.DEBUG:
                paramiko.addHandler(each)
    return logger


class _Masked(logging.Filter):
    """Secret values (vault, become password, secret vars) never reach a log line: the
    command scripts -vv shows carry the values a plan writes."""

    def __init__(self, secrets: list[str]) -> None:
        from opsfix.evidence.output import redactor

        super().__init__()
        self.redact = redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = self.redact(text)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


def mask(logger: Any, secrets: list[str]) -> None:
    """Mask `secrets` in everything the logger's handlers write (paramiko's lines too)."""
    masked = _Masked([s for s in secrets if s])
    for handler in logger.handlers:
        handler.addFilter(masked)


def close(logger: Any) -> None:
    if logger is None:
        return
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
        logging.getLogger("paramiko").removeHandler(handler)


def events(logger: Any) -> Callable[[str, str], None]:
    """The engine's on_event hook as -v lines: `HOST | what it does now`."""

    def event(host: str, text: str) -> None:
        logger.info("%s | %s", printable(host, one_line=True), printable(text, one_line=True))

    return event


def wrap_connect(logger: Any) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """A connector whose connections log what they send (-vv) and how they connect (-vvv)."""

    def wrap(connect: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def logged(spec: Any) -> Any:
            began = time.monotonic()
            logger.debug(
                "%s | ssh: connecting to %s@%s:%s (key %s, %s)",
                spec.host,
                spec.user or "-",
                spec.hostname,
                spec.port,
                spec.key_file or "agent/default",
                spec.connection,
            )
            conn = connect(spec)
            how = "kept connection" if type(conn).__name__ == "KeptConnection" else "new"
            logger.debug(
                "%s | ssh: connected (%s) in %.3fs", spec.host, how, time.monotonic() - began
            )
            return _LoggedConnection(conn, logger)

        return logged

    return wrap


class _LoggedConnection:
    """A connection that logs each script it runs, its exit status and time (-vv)."""

    def __init__(self, conn: Any, logger: Any) -> None:
        self._conn = conn
        self._logger = logger
        self.host = conn.host

    def run(self, script: str, **kwargs: Any) -> Any:
        if self._logger.isEnabledFor(COMMANDS):
            shown = script if len(script) <= SCRIPT_LIMIT else script[:SCRIPT_LIMIT] + "\n[...]"
            body = "\n".join(f"    {line}" for line in printable(shown).splitlines())
            become = " (become)" if kwargs.get("become") else ""
            self._logger.log(COMMANDS, "%s | command%s:\n%s", self.host, become, body)
        began = time.monotonic()
        result = self._conn.run(script, **kwargs)
        self._logger.log(
            COMMANDS,
            "%s | exit %s in %.3fs (%d bytes out, %d err)",
            self.host,
            result.exit_status,
            time.monotonic() - began,
            len(result.stdout),
            len(result.stderr),
        )
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __hash__(self) -> int:
        return id(self)


class JsonLines:
    """`--format jsonl`: the engine's on_record hook, one JSON document per line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        # stdout as the run starts: verify's pytest swaps sys.stdout while hosts still run
        self.stream = stream or sys.stdout
        self.secrets: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, data: Any) -> None:
        if kind == "secrets":
            self.secrets = list(data)
        elif kind == "host_started":
            self.emit({"event": "host_started", "host": data})
        elif kind == "host_done":
            self._host_done(data)
        elif kind == "verified":
            tests = [
                {"test": v.test, "outcome": v.outcome, "duration": v.duration} for v in data.verify
            ]
            self.emit({"event": "verify", "host": data.host, "status": data.status, "tests": tests})

    def _host_done(self, report: Any) -> None:
        for step in report.steps:
            after = step.after or step.before
            self.emit(
                {
                    "event": "step",
                    "host": report.host,
                    "step": step.name,
                    "check": step.before.check,
                    "before": {"status": step.before.status, "summary": step.before.summary},
                    "after": {"status": after.status, "summary": after.summary},
                    "duration": step.duration,
                }
            )
            for rem in step.remediations:
                self.emit(
                    {
                        "event": "remediation",
                        "host": report.host,
                        "step": step.name,
                        "remediation": rem.remediation,
                        "status": rem.status,
                        "reason": rem.reason,
                    }
                )
        self.emit(
            {
                "event": "host_done",
                "host": report.host,
                "status": report.status,
                "reason": report.reason,
                "duration": report.duration,
            }
        )

    def summary(self, report: Any, code: int, run_id: str | None) -> None:
        from opsfix.evidence.output import iso, summary_counts

        self.emit(
            {
                "event": "run",
                "playbook": report.playbook,
                "mode": report.mode,
                "summary": summary_counts(report),
                "exit_code": code,
                "run_id": run_id,
                "started_at": iso(report.started),
                "finished_at": iso(report.finished),
            }
        )

    def emit(self, event: dict[str, Any]) -> None:
        from opsfix.evidence.history import (
            mask,  # secrets masked in the data, before JSON escapes them
        )
        from opsfix.evidence.output import iso

        line = json.dumps(mask({"at": iso(time.time()), **event}, self.secrets), default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
