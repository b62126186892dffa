"""Run history: every run is recorded in the state database, its secrets masked first.

A run is kept as its *evidence bundle*: one JSON document holding the whole report (the
check evidence before and after, each remediation's status, reason, commands, validate
output and diff, the verify results), who ran it, the options (sanitised) and the exit
code. Its canonical form is `json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)`; those ASCII bytes are what the database stores and what
`opsfix report RUN_ID --format bundle` writes, so the sha256 that reports quote is the
plain `sha256sum` of that file, recomputable by anyone, with any tool, later.

Secrets are masked in the document itself (every string, before it is serialised), so
neither the bundle nor the query columns derived from it ever hold one.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import secrets as random
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from opsfix import __version__
from opsfix.errors import OptionsError
from opsfix.evidence import output
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    RemediationOutcome,
    RunReport,
    StepReport,
    VerifyOutcome,
)
from opsfix.evidence.state import HostRow, RemediationRow, RunRecord, StepRow, Store

BUNDLE_FORMAT = "opsfix-run/1"
MASK = "********"
LATEST = ("last", "latest")
_T = TypeVar("_T")


def new_run_id(now: float | None = None) -> str:
    """Sortable by time, unique enough: `20250119T143002Z-3fa9c1`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{random.token_hex(3)}"


def who() -> str:
    """user@controller; with sudo, the person behind it too."""
    user = f"{getpass.getuser()}@{socket.gethostname()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo from {sudo})" if sudo and sudo != getpass.getuser() else user


def mask(value: Any, secrets: Sequence[str]) -> Any:
    """`value` with every secret masked in every string (keys too), at any depth."""
    if not secrets:
        return value
    return _masked(value, output.redactor(secrets), set(secrets))


def _masked(value: Any, redact: Callable[[str], str], secrets: set[str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _masked(v, redact, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, redact, secrets) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return MASK if str(value) in secrets else value
    return value


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def bundle_sha256(bundle: str) -> str:
    return hashlib.sha256(bundle.encode("ascii")).hexdigest()


def bundle_doc(
    report: RunReport,
    *,
    run_id: str,
    playbook_path: Path | str,  # a str is kept as it is: "(ad-hoc)" for opsfix exec
    options: Mapping[str, Any],
    exit_code: int,
    secrets: Sequence[str],
    user: str | None = None,
) -> dict[str, Any]:
    """The run as one document, secrets masked: what history stores and hashes."""
    doc = {
        "format": BUNDLE_FORMAT,
        "run_id": run_id,
        "opsfix_version": __version__,
        "user": user or who(),
        "playbook_path": (
            str(playbook_path.resolve()) if isinstance(playbook_path, Path) else playbook_path
        ),
        "options": dict(options),
        "exit_code": exit_code,
        "report": output.to_data(report),
    }
    return dict(mask(doc, secrets))


def record_of(doc: Mapping[str, Any]) -> RunRecord:
    """The database rows of a bundle document (already masked)."""
    report = doc["report"]
    bundle = canonical(doc)
    hosts, steps, remediations = [], [], []
    for host in report["hosts"]:
        name = host["host"]
        hosts.append(HostRow(name, host["status"], host["reason"], host["duration"]))
        for i, step in enumerate(host["steps"]):
            after = step["after"]
            check = step["before"]["check"]
            steps.append(
                StepRow(
                    name,
                    i,
                    step["name"],
                    check,
                    step["before"]["status"],
                    after["status"] if after else None,
                )
            )
            remediations += [
                RemediationRow(
                    name, i, j, step["name"], check, r["remediation"], r["status"], r["reason"]
                )
                for j, r in enumerate(step["remediations"])
            ]
    return RunRecord(
        id=doc["run_id"],
        playbook=report["playbook"],
        playbook_path=doc["playbook_path"],
        mode=report["mode"],
        user=doc["user"],
        started=report["started"],
        finished=report["finished"],
        exit_code=doc["exit_code"],
        options=canonical(doc["options"]),
        bundle=bundle,
        bundle_sha256=bundle_sha256(bundle),
        hosts=tuple(hosts),
        steps=tuple(steps),
        remediations=tuple(remediations),
    )


def record(store: Store, doc: Mapping[str, Any]) -> RunRecord:
    run = record_of(doc)
    store.add_run(run)
    return run


def resolve(store: Store, ref: str) -> str:
    """A run id from what a person typed: the id, a unique start of it, or `last`."""
    ids = store.run_ids("" if ref in LATEST else ref)
    if not ids:
        raise OptionsError(f"no recorded run {ref!r} (`opsfix history` lists the runs)")
    if ref in LATEST or ids[0] == ref or len(ids) == 1:
        return ids[0]
    if ref in ids:
        return ref
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    raise OptionsError(f"run {ref!r} is ambiguous: {shown}")


def load(store: Store, ref: str) -> tuple[str, dict[str, Any]]:
    """The run's bundle text and its document."""
    run_id = resolve(store, ref)
    bundle = store.run_bundle(run_id)
    assert bundle is not None
    return bundle, dict(json.loads(bundle))


def masked(report: RunReport, secrets: Sequence[str]) -> RunReport:
    """A copy of the report with every secret masked, for the outputs built from it."""
    return report_from_dict(mask(output.to_data(report), secrets))


def report_from_dict(data: Mapping[str, Any]) -> RunReport:
    """A RunReport again, from its JSON form (`--format json`, or a bundle's `report`).

    Fields this opsfix does not know are left out; fields the data lacks take defaults.
    """
    hosts = [_host(h) for h in data.get("hosts", [])]
    return _build(RunReport, data, hosts=hosts)


def _host(data: Mapping[str, Any]) -> HostReport:
    steps = [_step(s) for s in data.get("steps", [])]
    verify = [_build(VerifyOutcome, v) for v in data.get("verify", [])]
    return _build(HostReport, data, steps=steps, verify=verify)


def _step(data: Mapping[str, Any]) -> StepReport:
    before = _build(CheckOutcome, data["before"])
    after = _build(CheckOutcome, data["after"]) if data.get("after") else None
    if after == before:
        after = before  # the text renderer shows "[FAILED]", not "[FAILED -> FAILED]"
    remediations = [_remediation(r) for r in data.get("remediations", [])]
    return _build(StepReport, data, before=before, after=after, remediations=remediations)


def _remediation(data: Mapping[str, Any]) -> RemediationOutcome:
    recheck = data.get("recheck")
    return _build(
        RemediationOutcome, data, recheck=_build(CheckOutcome, recheck) if recheck else None
    )


def _build(kind: type[_T], data: Mapping[str, Any], **parts: Any) -> _T:
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{k: v for k, v in data.items() if k in names and k not in parts}, **parts)


def counts_text(hosts: Mapping[str, int]) -> str:
    return " ".join(f"{status}={n}" for status, n in sorted(hosts.items()))


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
