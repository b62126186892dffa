"""Jinja2, sandboxed and strict: an undefined variable is an error, never an empty string.

Values are rendered per host. A value that is exactly one expression (`"{{ ports }}"`)
keeps its native type, so a list or a number survives templating the way Ansible users
expect; any other text renders to a string. Variables are resolved lazily, so a var may
refer to another var, and a broken var that nothing uses does no harm.
"""

from __future__ import annotations

import functools
import re
import shlex
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from opsfix.errors import VariableError
from opsfix.playbook.template_bounds import render_budget, sandbox_class
from opsfix.secret import Secret

if TYPE_CHECKING:
    from jinja2 import FileSystemLoader, Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
_MAX_DEPTH = 20


def _render_errors() -> tuple[type[Exception], ...]:
    """What a template's own arithmetic or method calls may raise on bad data: a user error.
    RecursionError: a macro that calls itself without end."""
    from jinja2 import TemplateError

    return (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, RecursionError)


@functools.cache
def _loader_class() -> type[FileSystemLoader]:
    """Jinja2's file loader, refusing a template that is, or sits behind, a link out of its
    folder: a link in templates/ to a controller file (keys, /etc/shadow) must not end up
    rendered, shown in a diff and staged on a host."""
    import os

    from jinja2 import FileSystemLoader, TemplateError, TemplateNotFound
    from jinja2.loaders import split_template_path

    class InsideFolderLoader(FileSystemLoader):
        def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
            pieces = split_template_path(template)
            for folder in self.searchpath:
                filename = os.path.join(folder, *pieces)
                if os.path.isfile(filename):
                    break
            else:
                raise TemplateNotFound(template)
            real, root = os.path.realpath(filename), os.path.realpath(folder)
            if os.path.commonpath([real, root]) != root:
                raise TemplateError(
                    f"{filename} is a link out of its folder {folder} (to {real}): refused"
                )
            return super().get_source(environment, template)

    return InsideFolderLoader


class TemplateEngine:
    """One sandboxed Jinja2 environment per run; templates come only from `search_path`."""

    def __init__(self, search_path: Sequence[Path] = ()) -> None:
        self.search_path = [p for p in search_path if p.is_dir()]
        self._cache: dict[str, Template] = {}
        self._found: set[str] = set()  # templates known to exist (asked once per host)

    @functools.cached_property
    def env(self) -> ImmutableSandboxedEnvironment:
        """A secret (a vault value) renders as itself: output masks it, not the template."""
        return self._environment(finalize=_revealed)

    @functools.cached_property
    def shell_env(self) -> ImmutableSandboxedEnvironment:
        """For shell commands: every expression's output is one quoted word by default."""
        return self._environment(finalize=_shell_word)

    def _environment(self, **options: Any) -> ImmutableSandboxedEnvironment:
        from jinja2 import StrictUndefined

        env = sandbox_class()(
            loader=_loader_class()([str(p) for p in self.search_path]),
            undefined=StrictUndefined,
            # block tags leave no blank lines behind, as in Ansible's template module; the
            # lab and the Vagrant provisioning render the same templates the same way
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            autoescape=False,
            **options,
        )
        env.filters["quote"] = shell_quote
        return env

    def has_template(self, name: str) -> bool:
        """True when the template exists; ValueError when it may not be read (a link out)."""
        from jinja2 import TemplateError, TemplateNotFound

        if name in self._found:
            return True
        try:
            self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
        except TemplateNotFound:
            return False
        except TemplateError as exc:
            raise ValueError(f"template {name!r}: {exc.message}") from None
        self._found.add(name)
        return True

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render every string inside `value` (recursively through lists and dicts)."""
        if isinstance(value, str):
            return self._render_string(value, variables)
        if isinstance(value, list):
            return [self.render_value(v, variables) for v in value]
        if isinstance(value, dict):
            return {k: self.render_value(v, variables) for k, v in value.items()}
        return value

    def render_command(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """A shell command parameter: in text, every `{{ expression }}` renders as one
        shell-quoted word (`| quote` says so explicitly; nothing turns it off); a list of
        arguments renders item by item, and each item is quoted when the list is joined."""
        if not isinstance(value, str):
            return self.render_value(value, variables)
        if "{{" not in value and "{%" not in value:
            return value
        try:
            template = self._compiled(value, self.shell_env)
            with render_budget():
                return self.shell_env.concat(
                    template.root_render_func(template.new_context(_scope(variables), shared=True))
                )
        except VariableError:
            raise
        except _render_errors() as exc:
            raise VariableError(_describe(exc)) from None

    def render_file(self, name: str, variables: Mapping[str, Any]) -> str:
        """Render a template file from the search path."""
        from jinja2 import TemplateNotFound

        try:
            template = self.env.get_template(name)
            with render_budget():
                return self.env.concat(
                    template.root_render_func(template.new_context(_scope(variables), shared=True))
                )
        except TemplateNotFound:
            raise VariableError(f"template {name!r} not found in {self._where()}") from None
        except VariableError:
            raise
        except _render_errors() as exc:
            raise VariableError(f"template {_where_in(exc, name)}: {_describe(exc)}") from None

    def _render_string(self, text: str, variables: Mapping[str, Any]) -> Any:
        if "{{" not in text and "{%" not in text:
            return text
        try:
            single = _SINGLE_EXPR.match(text)
            if single:
                return self._evaluate(single.group("expr"), variables)
            template = self._compiled(text)
            with render_budget():
                return self.env.concat(
                    template.root_render_func(template.new_context(_scope(variables), shared=True))
                )
        except VariableError:
            raise
        except _render_errors() as exc:
            raise VariableError(_describe(exc)) from None

    def _evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """One expression's value, keeping its type (a list stays a list)."""
        from jinja2 import Undefined

        template = self._compiled(f"{{% set result = ({expression}) %}}")
        context = template.new_context(_scope(variables), shared=True)
        with render_budget():
            for _ in template.root_render_func(context):
                pass
        result = context.vars["result"]
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return _revealed(result)

    def _compiled(self, source: str, env: ImmutableSandboxedEnvironment | None = None) -> Template:
        """Each distinct template text is compiled once per run, not once per host."""
        env = env or self.env
        key = source if env is self.env else f"shell\0{source}"
        template = self._cache.get(key)
        if template is None:
            template = self._cache[key] = env.from_string(source)
        return template

    def describe_path(self) -> str:
        return self._where()

    def _where(self) -> str:
        return ", ".join(str(p) for p in self.search_path) or "(no template folders)"


class ShellQuoted(str):
    """Text already quoted for a POSIX shell: a shell command's template keeps it as is."""

    __slots__ = ()


def shell_quote(value: Any) -> ShellQuoted:
    """The `quote` filter (as in Ansible): `value` as one word for a POSIX shell."""
    if isinstance(value, ShellQuoted):
        return value
    return ShellQuoted(shlex.quote(str(value)))


def _shell_word(value: Any) -> str:
    """How a shell command's template writes an expression's value: quoted, once."""
    return shell_quote(_revealed(value))


def _revealed(value: Any) -> Any:
    """A Secret's value, for the template that uses it (every printout masks it again)."""
    return value.reveal() if isinstance(value, Secret) else value


class LazyVars(Mapping[str, Any]):
    """Variables whose templated values render on first use, with cycle detection."""

    def __init__(self, raw: Mapping[str, Any], engine: TemplateEngine) -> None:
        self._raw = raw
        self._engine = engine
        self._done: dict[str, Any] = {}
        self._busy: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in self._done:
            return self._done[key]
        value = self._raw[key]
        if key in self._busy or len(self._busy) > _MAX_DEPTH:
            chain = " -> ".join([*self._busy, key])
            raise VariableError(f"variable {key!r} refers to itself ({chain})")
        self._busy.append(key)
        try:
            rendered = self._engine.render_value(value, self)
        except VariableError as exc:
            raise VariableError(f"in variable {key!r}: {exc.message}") from None
        finally:
            self._busy.pop()
        self._done[key] = rendered
        return rendered

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw


class _Scope(Mapping[str, Any]):
    """A read-only view Jinja2 resolves names against, without copying (keeps vars lazy)."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._vars = variables

    def __getitem__(self, key: str) -> Any:
        return self._vars[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __contains__(self, key: object) -> bool:
        return key in self._vars


def _scope(variables: Mapping[str, Any]) -> dict[str, Any]:
    # Jinja2 only reads the mapping it is given (shared=True does not copy it), so a lazy
    # view works where its signature asks for a dict.
    return cast(dict[str, Any], _Scope(variables))


def _where_in(exc: BaseException, name: str) -> str:
    """`'name'`, with the template's line where the error happened when it is known."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        template = frame.f_globals.get("__jinja_template__")
        if template is not None and template.name == name:
            line = template.get_corresponding_lineno(lineno)
    return f"{name!r} line {line}" if line else repr(name)


def _describe(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "template error: recursion too deep (a macro that calls itself without end?)"
    from jinja2 import TemplateError

    if not isinstance(exc, TemplateError):
        return f"template error: {type(exc).__name__}: {exc}"
    message = str(exc.message or exc)
    if message.endswith("is undefined"):
        return f"undefined variable: {message}"
    return f"template error: {message}"
