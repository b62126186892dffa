"""A run as Prometheus metrics, in node_exporter's textfile-collector format.

Point `--metrics-file` at a `*.prom` file in the folder node_exporter reads with
`--collector.textfile.directory`. The file is written whole to a temporary file beside it
and renamed over it, so the collector never reads half a file. Every series carries a
`playbook` label (the playbook's name), so several playbooks can write files to the same
folder without clashing:

- `opsfix_check_ok{host,check,playbook}`: 1 if the step's check passed at the end, else 0
  (`check` is the step's name in the playbook)
- `opsfix_remediation_total{host,remediation,result,playbook}`: remediations of this
  playbook by result (applied, rolled_back, refused, ...), counted over every recorded run
  (run history), so it only grows, as a counter must. Dry runs (`apply --check`) never
  count: nothing was done
- `opsfix_would_change{host,remediation,playbook}`: a dry run's findings: 1 for each
  remediation it would have run (`would_change`, or `cannot_tell` behind an earlier
  change); written by dry runs only
- `opsfix_host_ok{host,playbook}`: 1 if the host ended healthy or repaired
- `opsfix_host_status{host,status,playbook}`: 1 for the status the host ended in
  (healthy, repaired, failed, unreachable, deferred, not_attempted), 0 for the others:
  a failed host and an unreachable one are told apart (`opsfix_host_status{status=
  "unreachable"} == 1`)
- `opsfix_run_duration_seconds{playbook}`, `opsfix_last_run_timestamp_seconds{playbook}`
- `opsfix_var_days_until_full{host,playbook}`: the var_growth forecast (+Inf when /var is
  not growing; absent while samples are still being collected)

prometheus_client is imported here only, when a metrics file is asked for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

from opsfix.evidence.results import HostStatus, RunReport

Totals = Mapping[tuple[str, str, str], int]  # (host, remediation, result) -> count


DRY = ("would_change", "cannot_tell")  # a dry run's findings: nothing was done
STATUSES = get_args(HostStatus)


def remediation_counts(report: RunReport) -> dict[tuple[str, str, str], int]:
    """This run's remediations by (host, remediation, result); none for a dry run."""
    if report.mode == "dry-run":
        return {}
    counts: Counter[tuple[str, str, str]] = Counter(
        (host.host, rem.remediation, rem.status)
        for host in report.hosts
        for step in host.steps
        for rem in step.remediations
        if rem.status not in DRY
    )
    return dict(counts)


def would_change(report: RunReport) -> list[tuple[str, str]]:
    """(host, remediation) a dry run would have run."""
    found = {
        (host.host, rem.remediation)
        for host in report.hosts
        for step in host.steps
        for rem in step.remediations
        if rem.status in DRY
    }
    return sorted(found) if report.mode == "dry-run" else []


def days_until_full(report: RunReport) -> dict[str, float]:
    """Per host, the var_growth forecast in days, from the check's evidence."""
    days = {}
    for host in report.hosts:
        for step in host.steps:
            outcome = step.after or step.before
            if outcome.check != "var_growth":
                continue
            if "days_left" in outcome.evidence:
                days[host.host] = float(outcome.evidence["days_left"])
            elif "growth" in outcome.evidence:  # a rate, and it is not positive
                days[host.host] = math.inf
    return days


class RunCollector:
    """The metrics of one finished run (a prometheus_client custom collector)."""

    def __init__(self, report: RunReport, totals: Totals | None = None) -> None:
        self.report = report
        self.totals = remediation_counts(report) if totals is None else totals

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        report, book = self.report, self.report.playbook
        check_ok = GaugeMetricFamily(
            "opsfix_check_ok",
            "1 if the check passed at the end of the run, else 0",
            labels=["host", "check", "playbook"],
        )
        host_ok = GaugeMetricFamily(
            "opsfix_host_ok",
            "1 if the host ended healthy or repaired, else 0",
            labels=["host", "playbook"],
        )
        host_status = GaugeMetricFamily(
            "opsfix_host_status",
            "1 for the status the host ended in, 0 for the others",
            labels=["host", "status", "playbook"],
        )
        for host in report.hosts:
            host_ok.add_metric([host.host, book], float(host.status in ("healthy", "repaired")))
            for status in STATUSES:
                host_status.add_metric([host.host, status, book], float(host.status == status))
            for step in host.steps:
                final = step.after or step.before
                check_ok.add_metric([host.host, step.name, book], float(final.ok))
        remediations = CounterMetricFamily(
            "opsfix_remediation",
            "remediations run by opsfix, by result, over every recorded run",
            labels=["host", "remediation", "result", "playbook"],
        )
        for (host_name, remediation, result), count in sorted(self.totals.items()):
            remediations.add_metric([host_name, remediation, result, book], count)
        dry = GaugeMetricFamily(
            "opsfix_would_change",
            "1 for each remediation a dry run would have run (nothing was changed)",
            labels=["host", "remediation", "playbook"],
        )
        for host_name, remediation in would_change(report):
            dry.add_metric([host_name, remediation, book], 1.0)
        var_days = GaugeMetricFamily(
            "opsfix_var_days_until_full",
            "days until /var's filesystem is full at the current growth rate",
            labels=["host", "playbook"],
        )
        for host_name, days in sorted(days_until_full(report).items()):
            var_days.add_metric([host_name, book], days)
        duration = GaugeMetricFamily(
            "opsfix_run_duration_seconds", "how long the run took", labels=["playbook"]
        )
        duration.add_metric([book], max(0.0, report.finished - report.started))
        last = GaugeMetricFamily(
            "opsfix_last_run_timestamp_seconds",
            "when the run finished (Unix time)",
            labels=["playbook"],
        )
        last.add_metric([book], report.finished)
        yield from (check_ok, host_ok, host_status, remediations, dry, var_days, duration, last)


def write_textfile(path: Path, report: RunReport, totals: Totals | None = None) -> None:
    """Write the run's metrics to `path` atomically (temporary file + rename, same folder).

    `report` must have its secrets masked already (`opsfix.evidence.history.masked`).
    """
    from prometheus_client import CollectorRegistry, write_to_textfile

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunCollector(report, totals))
    write_to_textfile(str(path), registry)
