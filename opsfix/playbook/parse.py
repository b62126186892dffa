"""Playbook files: parsed, shape-checked and tied to known plugins before anything connects.

The format (see docs/playbooks.md):

    name: Recover nginx web hosts
    hosts: web                      # an inventory pattern
    vars: {web_root: /var/www/html}
    checks:                         # in order; each may name remediations to try in order
      - check: nginx_config
        remediate:
          - nginx_restore_config
          - remediation: nginx_reload
            with: {binary: nginx}
    verify: [../tests/host/test_nginx.py]

Every error names the file, line, column and field path, quotes the bad value and says
what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsfix.engine import rollout
from opsfix.errors import Location, PlaybookError
from opsfix.playbook import yamlpos
from opsfix.registry import Registry

MAX_PLAYBOOK_BYTES = 256 * 1024  # a playbook is a page or two; this is far past any real one


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RemediationSpec(_Model):
    remediation: str = Field(description="name of a remediation plugin")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class CheckSpec(_Model):
    name: str | None = Field(default=None, description="a label for reports")
    check: str = Field(description="name of a check plugin")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    remediate: list[RemediationSpec] = Field(default_factory=list)
    when: str | bool | None = Field(
        default=None, description="a Jinja2 expression: the step runs on hosts where it is true"
    )

    @field_validator("remediate", mode="before")
    @classmethod
    def _short_form(cls, items: Any) -> Any:
        if isinstance(items, list):
            return [{"remediation": i} if isinstance(i, str) else i for i in items]
        return items


class FlapGuardSpec(_Model):
    max_repairs: int = Field(default=3, ge=1, description="repairs allowed per period")
    period: str = Field(default="1h", description="e.g. 30m, 1h, 1d")

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        from opsfix.playbook.durations import parse_duration

        parse_duration(value)  # raises ValueError with what was expected
        return value


class PlaybookSpec(_Model):
    name: str | None = None
    hosts: str = Field(default="all", description="inventory pattern")
    vars: dict[str, Any] = Field(default_factory=dict)
    secret_vars: list[str] = Field(default_factory=list, description="never printed")
    checks: list[CheckSpec] = Field(min_length=1)
    verify: list[str] = Field(default_factory=list)
    serial: int | str | list[int | str] | None = Field(
        default=None, description="hosts per batch: a number, a percentage, or a list"
    )
    max_fail_percentage: float | None = Field(default=None, ge=0, le=100)
    sensitive_files: list[str] = Field(
        default_factory=list, description="globs of host paths whose diffs are never shown"
    )
    flap_guard: FlapGuardSpec | None = Field(
        default_factory=lambda: FlapGuardSpec(),
        description="at most max_repairs repairs of one step on one host per period",
    )
    windows: list[Any] | None = Field(default=None, description="maintenance windows")
    freezes: list[Any] | None = Field(default=None, description="freeze periods")

    @field_validator("flap_guard", mode="before")
    @classmethod
    def _flap_guard_off(cls, value: Any) -> Any:
        return None if value is False else value

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: Any) -> Any:
        return rollout.validate_serial(value)


@dataclass(frozen=True)
class PluginUse:
    """A check or remediation named in the playbook, with its unrendered parameters."""

    name: str
    params: dict[str, Any]
    location: Location  # of the `with:` mapping (or the item) in the file
    raw: Any = field(default=None, compare=False, repr=False)  # the PosDict, for positions


@dataclass(frozen=True)
class Step:
    label: str
    check: PluginUse
    remediations: tuple[PluginUse, ...]
    when: str | bool | None = None  # unrendered; see opsfix.playbook.binding
    when_location: Location | None = None


@dataclass(frozen=True)
class Playbook:
    path: Path
    name: str
    hosts: str
    vars: dict[str, Any]
    secret_vars: tuple[str, ...]
    steps: tuple[Step, ...]
    verify: tuple[Path, ...]
    hosts_location: Location
    serial: list[int | str] | None = None
    max_fail_percentage: float | None = None
    sensitive_files: tuple[str, ...] = ()
    policy: Any = None  # opsfix.windows.Policy: when disruptive steps may run
    flap_guard: FlapGuardSpec | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_playbook(path: Path, registry: Registry) -> Playbook:
    """Parse and validate a playbook file; raise PlaybookError naming the exact spot."""
    source = str(path)
    data = yamlpos.load(path, error=PlaybookError, limit=MAX_PLAYBOOK_BYTES)
    if not isinstance(data, dict):
        raise PlaybookError("expected a mapping with 'hosts' and 'checks'", Location(source, 1, 1))
    try:
        spec = PlaybookSpec.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, data, source) from None
    steps = tuple(_step(i, item, data, registry, source) for i, item in enumerate(spec.checks))
    verify = tuple(_verify_path(path, i, name, data) for i, name in enumerate(spec.verify))
    line, col = yamlpos.position(data, "hosts")
    return Playbook(
        path=path,
        name=spec.name or path.stem,
        hosts=spec.hosts,
        vars=data.get("vars") or {},
        secret_vars=tuple(spec.secret_vars),
        steps=steps,
        verify=verify,
        hosts_location=Location(source, line, col, "hosts"),
        serial=spec.serial
        if isinstance(spec.serial, list) or spec.serial is None
        else [spec.serial],
        max_fail_percentage=spec.max_fail_percentage,
        sensitive_files=tuple(spec.sensitive_files),
        policy=_policy(data, source),
        flap_guard=spec.flap_guard,
    )


def _policy(data: Any, source: str) -> Any:
    """The playbook's windows and freezes (None when it declares neither)."""
    if "windows" not in data and "freezes" not in data:
        return None
    from opsfix.windows import parse_policy

    return parse_policy(data, source)


def _step(index: int, item: CheckSpec, data: Any, registry: Registry, source: str) -> Step:
    raw = data["checks"][index]
    where = f"checks[{index}]"
    check = _use(item.check, item.with_, raw, where, "check", registry.checks, source)
    remediations = []
    for j, rem in enumerate(item.remediate):
        raw_item = raw["remediate"][j]
        raw_rem = raw_item if isinstance(raw_item, dict) else {"remediation": raw_item}
        rem_where = f"{where}.remediate[{j}]"
        if not isinstance(raw_item, dict):
            line, col = yamlpos.position(raw["remediate"], j)
            _known(
                rem.remediation,
                registry.remediations,
                "remediation",
                source,
                line,
                col,
                f"{rem_where}",
            )
            remediations.append(
                PluginUse(rem.remediation, {}, Location(source, line, col, rem_where), raw_rem)
            )
            continue
        use = _use(
            rem.remediation,
            rem.with_,
            raw_rem,
            rem_where,
            "remediation",
            registry.remediations,
            source,
        )
        remediations.append(use)
    when_location = None
    if item.when is not None:
        line, col = yamlpos.position(raw, "when")
        when_location = Location(source, line, col, f"{where}.when")
    return Step(
        label=item.name or item.check,
        check=check,
        remediations=tuple(remediations),
        when=item.when,
        when_location=when_location,
    )


def _use(
    name: str,
    params: dict[str, Any],
    raw: Any,
    where: str,
    kind: str,
    table: Mapping[str, Any],
    source: str,
) -> PluginUse:
    line, col = yamlpos.position(raw, kind)
    _known(name, table, kind, source, line, col, f"{where}.{kind}")
    if "with" in raw:
        wline, wcol = yamlpos.position(raw, "with")
        location = Location(source, wline, wcol, f"{where}.with")
    else:
        location = Location(source, line, col, f"{where}.with")
    return PluginUse(name, dict(params), location, raw.get("with"))


def _known(
    name: str,
    table: Mapping[str, Any],
    kind: str,
    source: str,
    line: int | None,
    col: int | None,
    field_path: str,
) -> None:
    if name in table:
        return
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sorted(table)) or "none"
    raise PlaybookError(
        f"unknown {kind} {name!r}{hint}; known: {known}", Location(source, line, col, field_path)
    )


def _verify_path(playbook: Path, index: int, name: str, data: Any) -> Path:
    path = (playbook.parent / name).resolve()
    if not path.exists():
        line, col = yamlpos.position(data["verify"], index)
        raise PlaybookError(
            f"verify suite {name!r} not found (looked for {path})",
            Location(str(playbook), line, col, f"verify[{index}]"),
        )
    return path


def _pydantic_error(exc: ValidationError, data: Any, source: str) -> PlaybookError:
    """The first pydantic error, placed at the YAML position of the offending field."""
    return error_at(exc.errors()[0], data, source, "")


def error_at(err: Any, data: Any, source: str, prefix: str) -> PlaybookError:
    """Turn one pydantic error dict into a PlaybookError at its YAML position under `data`."""
    loc = [
        part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))
    ]
    node, line, col = data, *yamlpos.position(data, None)
    path = prefix
    for part in loc:
        if isinstance(node, (dict, list)) and _has(node, part):
            line, col = (
                yamlpos.key_position(node, part)
                if err["type"] == "extra_forbidden" and part == loc[-1]
                else yamlpos.position(node, part)
            )
            node = node[part]
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return PlaybookError(_explain(err), Location(source, line, col, path))


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _explain(err: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}"
    if kind == "missing":
        return "required field is missing"
    return (
        f"{err['msg']} (got {value!r})"
        if value is not None and kind != "model_type"
        else err["msg"]
    )
