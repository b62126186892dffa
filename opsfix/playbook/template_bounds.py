"""What one template render may cost: time, characters made, and the size of one value.

Templates come from the playbook, which is trusted, but they run on values from the
inventory and variables, and one typo (`center(400000000)`) must not take seconds and
gigabytes before any host is contacted. Jinja2's sandbox bounds `range()` only; here:

- **time**: a render stops after `MAX_SECONDS`, checked at every loop step, call,
  operator, filter and output chunk (a loop is compiled with a step check in it);
- **size of one value**: an operation that would make a string or list longer than
  `MAX_VALUE_SIZE` is refused before it runs (`*`, `**`, `%`, `str.format` widths, the
  width of `center`/`indent`/`wordwrap`, `batch`/`slice` counts, `replace`, `join`, `~`);
- **characters made**: every string and list an operator, filter, call or output chunk
  makes counts against `MAX_CHARS` per render (output included);
- **recursion** (a macro calling itself) ends as Python's RecursionError, which the
  caller reports as a template error.

Each is a `SecurityError` (a Jinja2 TemplateError) that the caller reports with its place
(exit 4). A render inside a render (a variable that refers to another) shares the budget
of the outermost one.
"""

from __future__ import annotations

import functools
import math
import re
import string
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SECONDS = 2.0
MAX_CHARS = 16 * 2**20  # bytes (about) all values of one render may add up to, output too
MAX_VALUE_SIZE = 1_000_000  # characters or items of one value an operation may make
LOOP_FILTER = "_opsfix_loop_step"
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_WIDTH_ARGS = {"center": 1, "indent": 1, "wordwrap": 1, "batch": 1, "slice": 1, "truncate": 1}

_state = threading.local()


class Budget:
    """The limits of one top-level render."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.chars = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            _refuse(f"the template took longer than {MAX_SECONDS:g} s")

    def made(self, value: Any) -> Any:
        if isinstance(value, str):
            self.chars += len(value) if value.isascii() else 4 * len(value)
        elif isinstance(value, list | tuple | dict):
            self.chars += 8 * len(value)
        if self.chars > MAX_CHARS:
            _refuse(f"the template made more than {MAX_CHARS // 2**20} MiB of values")
        self.tick()
        return value


class _Unbounded(Budget):
    """Outside a render (a filter called by Python code): nothing to count against."""

    def tick(self) -> None:
        return None

    def made(self, value: Any) -> Any:
        return value


_UNBOUNDED = _Unbounded()


def budget() -> Budget:
    current: Budget | None = getattr(_state, "budget", None)
    return current or _UNBOUNDED


class render_budget:
    """Gives the render inside it a budget, unless an outer render already holds one."""

    def __enter__(self) -> Budget:
        self.outer = getattr(_state, "budget", None)
        if self.outer is None:
            _state.budget = Budget()
        return budget()

    def __exit__(self, *exc: object) -> None:
        if self.outer is None:
            _state.budget = None


def _refuse(message: str) -> None:
    from jinja2.exceptions import SecurityError

    raise SecurityError(message)


def _too_big(size: float, what: str) -> None:
    if size > MAX_VALUE_SIZE:
        _refuse(f"{what} would make a value of {size:.0f} characters (at most {MAX_VALUE_SIZE})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(sequence: Any, times: Any) -> None:
    if isinstance(sequence, str | list | tuple) and _is_int(times):
        _too_big(len(sequence) * times, f"repeating {len(sequence)} item(s) {times} times")


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and abs(base) > 1 and exponent > 0:
        _too_big(exponent * math.log10(abs(base)), f"{base} ** {exponent}")


def _check_printf(text: Any, args: Any) -> None:
    """`'%0400000000d' % 1`: widths and precisions, written or taken from the arguments."""
    if not isinstance(text, str):
        return
    values = args if isinstance(args, tuple) else (args,)
    for match in _PRINTF.finditer(text):
        for number in match.groups():
            if number == "*":
                for value in values:
                    if _is_int(value):
                        _too_big(abs(value), f"the format {text[:40]!r}")
            elif number is not None:
                _too_big(int(number), f"the format {text[:40]!r}")


def _check_format(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """`'{:>400000000}'.format(1)`: every number in a field's spec, and the arguments
    when a spec is itself a field (`{:>{}}`)."""
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        for number in _DIGITS.findall(spec):
            _too_big(int(number), f"the format {text[:40]!r}")
        if "{" in spec:
            for value in (*args, *kwargs.values()):
                if _is_int(value):
                    _too_big(abs(value), f"the format {text[:40]!r}")


def _check_call(obj: Any, args: tuple[Any, ...]) -> None:
    """A str method given a huge number (`'x'.ljust(400000000)`, `zfill`, `center`)."""
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, str | list | tuple):
        for value in args:
            if _is_int(value):
                _too_big(abs(value), f"{getattr(obj, '__name__', 'method')}({value})")


def _check_join(items: Any) -> None:
    """`~` and `join`: the total length before anything is joined."""
    if isinstance(items, list | tuple):
        _too_big(sum(len(i) if isinstance(i, str) else 20 for i in items), "joining")


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _WIDTH_ARGS:
        for value in (*args[_WIDTH_ARGS[name] :], *kwargs.values()):
            if _is_int(value):
                _too_big(abs(value), f"{name}({value})")
    elif name == "format" and args:
        _check_printf(args[0], tuple(args[1:]) or dict(kwargs))
    elif name == "replace" and len(args) >= 3:
        text, old, new = (str(a) for a in args[:3])
        count = text.count(old) if old else len(text) + 1
        _too_big(len(text) + count * max(0, len(new) - len(old)), "replace")
    elif name == "join" and args:
        _check_join(list(args[0]) if isinstance(args[0], list | tuple) else None)


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, checked before it runs and counted after."""
    offset = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _check_filter(name, args[offset:], kwargs)
        return budget().made(func(*args, **kwargs))

    return wrapper


def loop_step(context: Any, iterable: Any) -> Iterator[Any]:
    """Every loop of a template iterates through this: one time check per step."""
    current = budget()
    for item in iterable:
        current.tick()
        yield item


def bounded_concat(chunks: Any) -> str:
    """Template output (and every macro's and `{% set %}` block's): counted as it grows."""
    current, parts, size = budget(), [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_CHARS:
            _refuse(f"the template's output is over {MAX_CHARS // 2**20} Mi characters")
        current.tick()
        parts.append(chunk)
    return current.made("".join(parts))


def bounded_str_join(items: Any) -> str:
    """The `~` operator."""
    parts = [str(i) for i in items]
    _check_join(parts)
    return str(budget().made("".join(parts)))


@functools.cache
def sandbox_class() -> type[ImmutableSandboxedEnvironment]:
    """Jinja2's immutable sandbox, with the bounds above. Built on first use, so a run
    whose values hold no template never imports Jinja2."""
    from jinja2 import nodes, pass_context
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.runtime import Context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedCodeGenerator(CodeGenerator):
        """Every loop steps through `loop_step`; `~` joins through `bounded_str_join`."""

        def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
            for loop in node.find_all(nodes.For):  # before filters are collected
                loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None)
            super().visit_Template(node, frame)

        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            self.write("environment.bounded_str_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class Sandbox(ImmutableSandboxedEnvironment):
        code_generator_class = BoundedCodeGenerator
        intercepted_binops = frozenset({"*", "**", "%", "+"})
        concat = staticmethod(bounded_concat)
        bounded_str_join = staticmethod(bounded_str_join)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.filters = {n: bounded_filter(n, f) for n, f in self.filters.items()}
            self.filters[LOOP_FILTER] = pass_context(loop_step)

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            budget().tick()
            if operator == "*":
                _check_repeat(left, right)
                _check_repeat(right, left)
            elif operator == "**":
                _check_power(left, right)
            elif operator == "%":
                _check_printf(left, right)
            elif operator == "+" and isinstance(left, str | list | tuple):
                _too_big(len(left) + (len(right) if hasattr(right, "__len__") else 0), "+")
            return budget().made(super().call_binop(context, operator, left, right))

        def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            budget().tick()
            _check_call(__obj, args)
            return budget().made(super().call(__context, __obj, *args, **kwargs))

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            text = value.__self__

            def checked(*args: Any, **kwargs: Any) -> str:
                _check_format(text, args, args[0] if value.__name__ == "format_map" else kwargs)
                return wrapped(*args, **kwargs)

            return checked

    return Sandbox
