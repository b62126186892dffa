"""The rules file of `opsfix serve`: which alert runs which playbook on which host.

    playbook_dirs: [../playbooks]     # rules may name playbooks under these folders only
    inventory: [../inventory/hosts.yml]
    alertmanager: {url: http://127.0.0.1:9093, silence: true, silence_for: 10m}
    notify: [{url: https://hooks.slack.com/services/..., format: slack}]
    reports: {dir: /var/lib/opsfix/reports, url: "https://ops.example/reports/{run_id}.md"}
    rules:
      - name: web-down
        match: {alertname: HttpDown, labels: {severity: page}, labels_regex: {job: blackbox.*}}
        playbook: nginx_recovery.yml
        host_label: instance          # the label that names the host (default: instance)
        mode: apply                   # apply | check | dry-run
        limits: {concurrency: 4, runs_per_host_per_hour: 3, cooldown: 15m}

Validated like a playbook (docs/alerts.md): every error names the file, line, column
and field, and the server never starts on a bad file. Each playbook is loaded and
checked at start-up too, so a rule cannot fail later for a reason known now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsfix.errors import InputError, Location
from opsfix.playbook import yamlpos
from opsfix.playbook.parse import error_at

__all__ = ["Rule", "Rules", "RulesError", "load_rules", "parse_span"]

Mode = Literal["apply", "check", "dry-run"]


class RulesError(InputError):
    """The rules file is malformed or names something that does not exist."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(value: str) -> str:
    parse_span(value)  # raises ValueError with the accepted forms
    return value


class MatchSpec(_Model):
    alertname: str | None = Field(default=None, description="the alert's name, exactly")
    labels: dict[str, str] = Field(default_factory=dict, description="labels, exactly")
    labels_regex: dict[str, str] = Field(
        default_factory=dict, description="labels matching a regex (anchored, as Alertmanager)"
    )

    @field_validator("labels_regex")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: bad regex {pattern!r}: {exc}") from None
        return value


class LimitsSpec(_Model):
    concurrency: int = Field(default=4, ge=1, le=256, description="hosts repaired at once")
    runs_per_host_per_hour: int = Field(
        default=3, ge=1, description="runs started per host in any hour (flap guard aside)"
    )
    cooldown: str = Field(default="10m", description="no run on a host this long after a failure")

    _cooldown = field_validator("cooldown")(_duration)


class RuleSpec(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="in logs, metrics")
    match: MatchSpec
    playbook: str = Field(min_length=1, description="relative to one of playbook_dirs")
    host_label: str = Field(default="instance", description="the label that names the host")
    limit: str | None = Field(default=None, description="an inventory pattern the host must match")
    mode: Mode = "apply"
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    lock_wait: float = Field(default=30.0, ge=0, description="seconds to wait for a host's lock")


class AlertmanagerSpec(_Model):
    url: str = Field(pattern=r"^https?://", description="Alertmanager's base URL")
    silence: bool = Field(default=True, description="silence the alert while repairing")
    silence_for: str = Field(default="10m", description="when a silence expires by itself")

    _silence_for = field_validator("silence_for")(_duration)


class NotifySpec(_Model):
    url: str = Field(pattern=r"^https?://", description="where the run's summary is posted")
    format: Literal["slack", "json"] = "json"


class ReportsSpec(_Model):
    dir: str = Field(description="each run's incident report is written here, RUN_ID.md")
    url: str | None = Field(
        default=None,
        pattern=r"^https?://.*\{run_id\}",
        description="the report's address in notifications, {run_id} filled in",
    )


class RulesSpec(_Model):
    playbook_dirs: list[str] = Field(min_length=1, description="folders rules may name from")
    inventory: list[str] = Field(default_factory=list, description="default: as `opsfix apply`")
    alertmanager: AlertmanagerSpec | None = None
    notify: list[NotifySpec] = Field(default_factory=list)
    reports: ReportsSpec | None = None
    rules: list[RuleSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Rule:
    """One validated rule, its playbook resolved to a file under a playbook folder."""

    name: str
    playbook: Path
    hosts: str  # the playbook's own host pattern
    mode: Mode
    host_label: str
    limit: str | None
    alertname: str | None
    labels: dict[str, str]
    labels_regex: dict[str, re.Pattern[str]]
    concurrency: int
    runs_per_host_per_hour: int
    cooldown: timedelta
    lock_wait: float
    location: Location

    def matches(self, labels: dict[str, str]) -> bool:
        """Alertmanager's matchers: equality, and regexes anchored at both ends."""
        if self.alertname is not None and labels.get("alertname") != self.alertname:
            return False
        if any(labels.get(k) != v for k, v in self.labels.items()):
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.labels_regex.items())


@dataclass(frozen=True)
class Rules:
    path: Path
    rules: tuple[Rule, ...]
    inventory: tuple[Path, ...] = ()
    alertmanager: AlertmanagerSpec | None = None
    notify: tuple[NotifySpec, ...] = ()
    playbook_dirs: tuple[Path, ...] = field(default=())
    reports_dir: Path | None = None
    report_url: str | None = None

    def rule_for(self, labels: dict[str, str]) -> Rule | None:
        """The first rule that matches, as Alertmanager's routes (no `continue`)."""
        return next((rule for rule in self.rules if rule.matches(labels)), None)


def load_rules(path: Path, plugin_dirs: list[Path] | None = None) -> Rules:
    """Parse and validate the rules file and every playbook it names; RulesError if bad."""
    source = str(path)
    data = yamlpos.load(path, error=RulesError)
    if not isinstance(data, dict):
        raise RulesError("expected a mapping with 'playbook_dirs' and 'rules'", Location(source))
    try:
        spec = RulesSpec.model_validate(data)
    except ValidationError as exc:
        bad = error_at(exc.errors()[0], data, source, "")
        raise RulesError(bad.message, bad.location) from None
    base = path.parent
    dirs = tuple(_folder(base, d, data, i, source) for i, d in enumerate(spec.playbook_dirs))
    rules = tuple(
        _rule(spec.rules[i], data["rules"][i], i, dirs, source, plugin_dirs or [])
        for i in range(len(spec.rules))
    )
    _unique(rules, data, source)
    return Rules(
        path=path,
        rules=rules,
        inventory=tuple((base / p) for p in spec.inventory),
        alertmanager=spec.alertmanager,
        notify=tuple(spec.notify),
        playbook_dirs=dirs,
        reports_dir=(base / spec.reports.dir) if spec.reports else None,
        report_url=spec.reports.url if spec.reports else None,
    )


def _folder(base: Path, name: str, data: Any, index: int, source: str) -> Path:
    folder = (base / name).resolve()
    if not folder.is_dir():
        line, col = yamlpos.position(data["playbook_dirs"], index)
        where = Location(source, line, col, f"playbook_dirs[{index}]")
        raise RulesError(f"no such folder {name!r} (looked for {folder})", where)
    return folder


def _rule(
    spec: RuleSpec, raw: Any, index: int, dirs: tuple[Path, ...], source: str, plugins: list[Path]
) -> Rule:
    line, col = yamlpos.position(raw, "playbook")
    where = Location(source, line, col, f"rules[{index}].playbook")
    playbook, hosts = _playbook(spec.playbook, dirs, where, plugins)
    return Rule(
        name=spec.name,
        playbook=playbook,
        hosts=hosts,
        mode=spec.mode,
        host_label=spec.host_label,
        limit=spec.limit,
        alertname=spec.match.alertname,
        labels=dict(spec.match.labels),
        labels_regex={k: re.compile(v) for k, v in spec.match.labels_regex.items()},
        concurrency=spec.limits.concurrency,
        runs_per_host_per_hour=spec.limits.runs_per_host_per_hour,
        cooldown=parse_span(spec.limits.cooldown),
        lock_wait=spec.lock_wait,
        location=Location(source, *yamlpos.position(raw, None), f"rules[{index}]"),
    )


def parse_span(text: str) -> timedelta:
    """opsfix's durations (`90m`, `1h30m`, `1d`), and plain seconds (`30s`) for cool-downs
    and silences shorter than a minute."""
    from opsfix.playbook.durations import parse_duration

    seconds = re.fullmatch(r"\s*(\d+)\s*s\s*", str(text))
    return timedelta(seconds=int(seconds[1])) if seconds else parse_duration(text)


def _playbook(
    name: str, dirs: tuple[Path, ...], where: Location, plugins: list[Path]
) -> tuple[Path, str]:
    """The playbook file `name` under one of `dirs` (never outside: no `..`, no link out),
    loaded and validated now; and its host pattern."""
    from opsfix.registry import load_registry

    for folder in dirs:
        candidate = (folder / name).resolve()
        if not candidate.is_relative_to(folder) or not candidate.is_file():
            continue
        try:
            from opsfix.playbook.parse import load_playbook

            playbook = load_playbook(candidate, load_registry([candidate.parent, *plugins]))
        except InputError as exc:
            raise RulesError(f"playbook {name!r} is invalid: {exc}", where) from None
        return candidate, playbook.hosts
    shown = ", ".join(str(d) for d in dirs)
    raise RulesError(f"no playbook {name!r} under the playbook_dirs ({shown})", where)


def _unique(rules: tuple[Rule, ...], data: Any, source: str) -> None:
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            line, col = yamlpos.position(data["rules"][i], "name")
            where = Location(source, line, col, f"rules[{i}].name")
            raise RulesError(f"rule name {rule.name!r} is used twice", where)
        seen.add(rule.name)
