"""Turns a playbook into per-host work: variables rendered, parameters typed, templates found.

All of it happens before any host is contacted, so a wrong type, an undefined variable or
a missing template stops the run with exit 4 and a precise location, and nothing runs.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from opsfix.errors import Location, PlaybookError, VariableError
from opsfix.inventory.host import Host
from opsfix.playbook import yamlpos
from opsfix.playbook.parse import Playbook, PluginUse, Step, error_at
from opsfix.playbook.templating import LazyVars, TemplateEngine
from opsfix.playbook.variables import host_variables
from opsfix.plugin import (
    Check,
    CheckContext,
    Params,
    Remediation,
    RemediationContext,
    is_shell_command,
)
from opsfix.registry import Registry

HOST_FOLDERS = ("opsfix_state_dir", "opsfix_backup_dir")  # where opsfix keeps things on hosts


@dataclass(frozen=True)
class BoundStep:
    label: str
    check: Check[Any]
    remediations: tuple[Remediation[Any], ...]


@dataclass(frozen=True)
class Target:
    """One host of the run with everything it needs, resolved up front."""

    host: Host
    vars: LazyVars
    steps: tuple[BoundStep, ...]


def bind(
    playbook: Playbook,
    hosts: list[Host],
    registry: Registry,
    extra_vars: dict[str, Any],
    templates: TemplateEngine,
    *,
    state: Callable[[], Any] = lambda: None,
    clock: Callable[[], float] = time.time,
) -> list[Target]:
    """Render and validate every step for every host; raise on the first bad value.

    `state` and `clock` reach checks through their CheckContext (see opsfix.plugin).
    """
    return [
        _bind_host(playbook, host, registry, extra_vars, templates, state, clock) for host in hosts
    ]


def _bind_host(
    playbook: Playbook,
    host: Host,
    registry: Registry,
    extra_vars: dict[str, Any],
    templates: TemplateEngine,
    state: Callable[[], Any],
    clock: Callable[[], float],
) -> Target:
    raw = host_variables(host, playbook.vars, extra_vars, playbook.base_dir)
    variables = LazyVars(raw, templates)
    for key in HOST_FOLDERS:
        if key in raw:
            _check_host_folder(key, variables, host, playbook, extra_vars)
    rendered: dict[str, str] = {}

    def render_template(name: str, context: Any) -> str:
        if name not in rendered:
            rendered[name] = templates.render_file(name, context)
        return rendered[name]

    context = RemediationContext(
        host=host.name, vars=variables, base_dir=playbook.base_dir, render_template=render_template
    )
    check_context = CheckContext(host=host.name, state=state, clock=clock)
    steps = []
    try:
        for step in playbook.steps:
            if not _wanted(step, host, variables, templates):
                continue
            check_params, _ = _params(
                registry.checks[step.check.name].Params,
                step.check,
                host,
                variables,
                templates,
                playbook,
            )
            check = registry.checks[step.check.name](check_params, check_context)
            remediations = []
            for use in step.remediations:
                cls = registry.remediations[use.name]
                params, used = _params(cls.Params, use, host, variables, templates, playbook)
                for name in used:  # render now: an undefined variable in a template stops the run
                    try:
                        render_template(name, variables)
                    except VariableError as exc:
                        raise VariableError(
                            f"{exc.message} (host {host.name})", use.location
                        ) from None
                remediations.append(cls(params, context))
            steps.append(BoundStep(step.label, check, tuple(remediations)))
    except VariableError as exc:
        raise _naming_origin(exc, host, playbook, extra_vars) from None
    return Target(host=host, vars=variables, steps=tuple(steps))


def _wanted(step: Step, host: Host, variables: LazyVars, templates: TemplateEngine) -> bool:
    """A step's `when:` on this host (no `when`: always). Like Ansible's, it is a bare
    expression (`expected_content is defined`); an undefined variable is an error."""
    if step.when is None or isinstance(step.when, bool):
        return step.when is not False
    expression = step.when.strip()
    if not (expression.startswith("{{") and expression.endswith("}}")):
        expression = "{{ " + expression + " }}"
    try:
        return bool(templates.render_value(expression, variables))
    except VariableError as exc:
        raise VariableError(f"{exc.message} (host {host.name})", step.when_location) from None


def _params(
    model: type[Params],
    use: PluginUse,
    host: Host,
    variables: LazyVars,
    templates: TemplateEngine,
    playbook: Playbook,
) -> tuple[Params, list[str]]:
    values = {}
    for key, value in use.params.items():
        field = model.model_fields.get(key)
        render = templates.render_value
        if field is not None and is_shell_command(field.annotation):
            render = templates.render_command  # values quoted where the shell reads them
        try:
            values[key] = render(value, variables)
            _refuse_nul(values[key])
        except VariableError as exc:
            line, col = _pos(use, key)
            where = Location(use.location.file, line, col, f"{use.location.field}.{key}")
            raise VariableError(f"{exc.message} (host {host.name})", where) from None
    used: list[str] = []
    context = {"base_dir": playbook.base_dir, "templates": templates, "templates_used": used}
    try:
        return model.model_validate(values, context=context), used
    except ValidationError as exc:
        # an unknown key usually explains a "missing" one (a typo): report it first
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raw = use.raw if use.raw is not None else {}
        error = error_at(err, raw, use.location.file, use.location.field)
        loc = error.location or use.location
        if loc.line is None:
            loc = Location(use.location.file, use.location.line, use.location.column, loc.field)
        templated = any(isinstance(v, str) and "{" in v for v in use.params.values())
        suffix = f" (host {host.name})" if templated else ""
        raise PlaybookError(f"{error.message}{suffix}; {_expected(model, err)}", loc) from None


def _check_host_folder(
    key: str, variables: LazyVars, host: Host, playbook: Playbook, extra_vars: dict[str, Any]
) -> None:
    """A folder opsfix keeps on the host: rendered now, and an absolute path, or exit 4."""
    where = _var_origin(key, host, playbook, extra_vars)
    try:
        value = str(variables[key])
    except VariableError as exc:
        raise VariableError(f"{exc.message} (host {host.name})", where) from None
    if not value.startswith("/") or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise VariableError(
            f"{value!r} is not a folder on the host: expected an absolute path without "
            f"control characters (host {host.name})",
            where,
        )


_IN_VARIABLE = re.compile(r"^in variable '([^']+)'")


def _naming_origin(
    exc: VariableError, host: Host, playbook: Playbook, extra_vars: dict[str, Any]
) -> VariableError:
    """`exc`, also naming where the variable it failed in was set (inventory, playbook, -e)."""
    found = _IN_VARIABLE.match(exc.message)
    known = found and (
        found[1] in extra_vars or found[1] in playbook.vars or found[1] in host.origins
    )
    if not found or not known:
        return exc
    where = _var_origin(found[1], host, playbook, extra_vars)
    place = str(Location(where.file, where.line, where.column))
    return VariableError(f"{exc.message}; {found[1]!r} is set at {place}", exc.location)


def _var_origin(key: str, host: Host, playbook: Playbook, extra_vars: dict[str, Any]) -> Location:
    """Where the value of variable `key` that wins for `host` was set."""
    if key in extra_vars:
        return Location("--extra-vars", field=key)
    if key in playbook.vars:
        line, column = yamlpos.position(playbook.vars, key)
        return Location(str(playbook.path), line, column, f"vars.{key}")
    default = Location(f"inventory vars of host {host.name!r}", field=key)
    return host.origins.get(key, default)


def _refuse_nul(value: Any) -> None:
    """A NUL cannot pass through a command line or a file name: say so here, not on a host."""
    if isinstance(value, str) and "\0" in value:
        raise VariableError(f"{value!r} holds a NUL character, which no command can carry")
    if isinstance(value, list | tuple):
        for item in value:
            _refuse_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)


def _pos(use: PluginUse, key: str) -> tuple[int | None, int | None]:
    return yamlpos.position(use.raw, key) if use.raw is not None else (None, None)


def _expected(model: type[Params], err: Any) -> str:
    fields = model.model_fields
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), list(fields), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{hint}expected one of: {', '.join(fields) or '(no parameters)'}"
    name = err["loc"][0] if err["loc"] else None
    if isinstance(name, str) and name in fields:
        info = fields[name]
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation)
        desc = f" ({info.description})" if info.description else ""
        return f"expected {name}: {annotation}{desc}"
    return "see the plugin's parameters in docs/"
