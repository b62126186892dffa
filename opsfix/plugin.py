"""The plugin API: what a check or a remediation module provides.

A check names the shell commands it needs and judges their output in a pure function,
so it runs batched with every other check and is unit-tested on canned output. A
remediation reads what it needs (`gather`), then *declares* a `Plan`: files to change,
how to validate the staged result, how to make it take effect, how to undo it. The
engine runs the plan as a transaction; plugins never touch SSH.

Each class names itself from its module (`checks/nginx_config.py` -> `nginx_config`) and
takes its parameters model from its base: `class Memory(Check[MemoryParams])` is all it
says. A plugin that replaces one of the same name loaded before it (a built-in, or one
from an installed package) says so with `overrides = True`; otherwise the registry
refuses it. The guide is docs/plugins.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import (
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo

from opsfix.transport.base import CommandResult

Status = Literal["passed", "failed", "error"]


class Params(BaseModel):
    """Base for plugin parameters: unknown keys are errors, values are typed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Params)


def _resolve_controller_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base is None else Path(base) / value


ControllerPath = Annotated[Path, AfterValidator(_resolve_controller_path)]
"""A path on the controller; relative values start at the playbook's folder."""


def _check_template(name: str, info: ValidationInfo) -> str:
    templates = (info.context or {}).get("templates")
    if templates is not None and not templates.has_template(name):
        raise ValueError(f"template {name!r} not found in {templates.describe_path()}")
    used = (info.context or {}).get("templates_used")
    if used is not None:
        used.append(name)
    return name


TemplateName = Annotated[str, AfterValidator(_check_template)]
"""A template under templates/ (the playbook's own folder first, then the built-ins)."""


class _ShellMarker:
    """Marks a parameter whose text runs as a shell command (see `ShellCommand`)."""


SHELL = _ShellMarker()


def _command_text(value: Any) -> Any:
    """A list of arguments becomes one command line, each argument quoted."""
    if isinstance(value, list | tuple):
        if not value or not all(isinstance(v, str | int | float) for v in value):
            raise ValueError("expected a shell command, or a non-empty list of arguments")
        from opsfix.shell import cmd

        return cmd(*value)
    return value


ShellCommand = Annotated[str, BeforeValidator(_command_text), SHELL]
"""A shell command: either text, in which every `{{ value }}` is shell-quoted when it is
rendered (quoting by default), or a list of arguments, each rendered and quoted."""


def is_shell_command(annotation: Any) -> bool:
    """True when a field's annotation is a `ShellCommand` (optional or not)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return any(m is SHELL for m in get_args(annotation)[1:])
    if origin in (Union, UnionType):
        return any(is_shell_command(arg) for arg in get_args(annotation))
    return False


@dataclass(frozen=True)
class CheckResult:
    """A verdict: passed, failed (with evidence), or error (could not tell)."""

    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, summary: str, **evidence: Any) -> CheckResult:
        return cls("passed", summary, evidence)

    @classmethod
    def failed(cls, summary: str, **evidence: Any) -> CheckResult:
        return cls("failed", summary, evidence)

    @classmethod
    def error(cls, summary: str, **evidence: Any) -> CheckResult:
        return cls("error", summary, evidence)

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class CheckContext:
    """What a check may know beyond its parameters: which host, and controller-side state.

    Most checks ignore it. A check that judges change over time (growth rates) keeps
    samples in `state` (opsfix's local database, opened on first use) and reads the time
    from `clock`, so tests can inject both.
    """

    host: str
    state: Callable[[], Any] = lambda: None  # returns the store, opening it when first asked
    clock: Callable[[], float] = time.time


def _name_from_module(cls: type) -> str:
    return cls.__module__.rsplit(".", 1)[-1]


def _params_from_base(cls: type) -> type[Params] | None:
    """The model named in `Check[X]` / `Remediation[X]`, if the class subscribes its base."""
    for base in getattr(cls, "__orig_bases__", ()):
        for arg in get_args(base):
            if isinstance(arg, type) and issubclass(arg, Params):
                return arg
    return None


def _declare(cls: Any) -> None:
    """Name the class from its module and take its params model from `Check[X]`.

    A class that also sets `Params` (the older form) must name the same model: two
    different ones would leave parsing and typing disagreeing about the parameters."""
    if not cls.__dict__.get("name"):
        cls.name = _name_from_module(cls)
    subscribed = _params_from_base(cls)
    given = cls.__dict__.get("Params")
    if subscribed is None:
        return
    if given is not None and given is not subscribed:
        raise TypeError(
            f"{cls.__name__} subscribes {subscribed.__name__} but sets Params = "
            f"{given.__name__}; declare the model once, in the base: "
            f"{cls.__name__}({cls.__mro__[1].__name__}[{subscribed.__name__}])"
        )
    cls.Params = subscribed


class Check(Generic[P]):
    """Judges one aspect of a host's state: subclass `Check[YourParams]`, implement two methods."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    overrides: ClassVar[bool] = False  # replaces a check of the same name loaded before it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls)

    def __init__(self, params: P, context: CheckContext | None = None) -> None:
        self.params = params
        self.context = context or CheckContext(host="")

    def commands(self) -> list[str]:
        """Read-only shell commands whose results `evaluate` receives, in this order."""
        raise NotImplementedError

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        """Pure: turn command results into a verdict."""
        raise NotImplementedError


# Every change names the folder it must stay in, its `root`: on the host, no folder
# between the root and the path may be a symlink (the transaction refuses, naming it).
# The root itself, as the playbook names it, is trusted. "/" (the default) trusts no link.


@dataclass(frozen=True)
class WriteFile:
    """Make `path` hold `content` (mode kept from the old file, else `mode`)."""

    path: str
    content: bytes
    mode: int = 0o644
    root: str = "/"


@dataclass(frozen=True)
class Symlink:
    """Make `path` a symlink to `target`."""

    path: str
    target: str
    root: str = "/"


@dataclass(frozen=True)
class Remove:
    """Remove the file or symlink at `path` (it is kept in the backup)."""

    path: str
    root: str = "/"


Change = WriteFile | Symlink | Remove


@dataclass(frozen=True)
class Plan:
    """What a remediation will do, declared so the engine can show it, check it and undo it.

    - `changes` are staged, never written in place: each lands by an atomic rename within
      its own directory, after a backup.
    - `stage_root`: a tree (e.g. /etc/nginx) that `validate` must see *with the changes
      applied*. The engine copies it, applies the changes to the copy and runs `validate`
      with OPSFIX_STAGE set to the copy and OPSFIX_STAGE_ROOT to the original path.
    - `validate` runs before anything changes; any non-zero exit refuses the plan.
    - `act` makes the change take effect (reload, start); runs only after `validate`.
    - `rollback` runs after the engine has restored the backed-up files.
    - `refuse`: the remediation cannot prove it is safe; nothing runs, this is the reason.
    - `backup=False` only for changes whose whole point is to discard data (deleting
      expired logs to free space): copying them aside would defeat the purpose.
    - `partial_ok`: the change helps even when the check still fails (some space freed):
      keep it instead of rolling back, and report the host still failing. Implied by
      `backup=False`, since there is nothing to roll back to.
    - `attention`: the change brings the host back but leaves something only a person can
      put right (a broken site disabled so nginx could start): it is kept when the check
      passes, and the host is reported failed with this reason.
    """

    summary: str
    changes: tuple[Change, ...] = ()
    stage_root: str | None = None
    validate: tuple[str, ...] = ()
    act: tuple[str, ...] = ()
    rollback: tuple[str, ...] = ()
    refuse: str | None = None
    backup: bool = True
    partial_ok: bool = False
    attention: str | None = None

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.act and self.refuse is None


@dataclass(frozen=True)
class RemediationContext:
    """What a remediation may know about the controller side: variables and files."""

    host: str
    vars: Mapping[str, Any]
    base_dir: Path  # the playbook's folder: relative controller paths start here
    render_template: Callable[[str, Mapping[str, Any]], str]

    def path(self, value: str | Path) -> Path:
        """A controller path, relative to the playbook's folder unless absolute."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


class Remediation(Generic[P]):
    """Restores one aspect of a host's state as a transaction the engine runs."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    disruptive: ClassVar[bool] = True  # reloads, restarts or deletes something
    overrides: ClassVar[bool] = False  # replaces a remediation of the same name loaded before

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls)

    def __init__(self, params: P, context: RemediationContext) -> None:
        self.params = params
        self.context = context

    def gather(self) -> list[str]:
        """Read-only commands whose results `plan` receives (one round trip)."""
        return []

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        raise NotImplementedError

    def peer_gather(self, facts: Sequence[CommandResult]) -> list[str]:
        """Read-only commands to run on this host's peers (the other hosts of its inventory
        groups) when its own facts cannot say what to restore; [] (the default) asks none.

        Fleets are built alike: a host that never had a known-good copy may borrow a
        healthy peer's. The engine runs them on each peer with that peer's own connection
        settings and hands the results to `plan_from_peers`.
        """
        return []

    def plan_from_peers(
        self, facts: Sequence[CommandResult], peers: Mapping[str, Sequence[CommandResult]]
    ) -> Plan:
        """The plan, given what `peer_gather`'s commands said on each peer (by name; a
        peer that could not be reached has no entry)."""
        return self.plan(facts)

    def baseline(self) -> list[str]:
        """Commands run after a real run when the host is healthy (e.g. keep a known-good copy)."""
        return []

    def baseline_current(self) -> list[str]:
        """Read-only commands that all succeed when `baseline()` would change nothing.

        They run with the first checks; a host that nothing changed then skips the round
        trip of `baseline()`. None (the default): the baseline always runs.
        """
        return []
