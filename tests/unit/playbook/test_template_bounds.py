"""Templates and YAML input are bounded (opsfix.playbook.template_bounds and .yamlpos): what
would take seconds and gigabytes is refused within 2 s and 32 MiB, exit 4, naming file:line."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opsfix.cli import main
from opsfix.errors import InputError, PlaybookError, VariableError
from opsfix.inventory import load_inventory
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.registry import load_registry

BYTES = 32 * 2**20


@contextmanager
def bounded(seconds: float = 2.0, peak: int = BYTES) -> Iterator[None]:
    tracemalloc.start()
    began = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - began
        _, most = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert took < seconds, f"took {took:.1f}s"
        assert most < peak, f"peaked at {most / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_registry([])


def bind_value(tmp_path: Path, registry: Any, expression: str, **host_vars: Any) -> Any:
    book = tmp_path / "site.yml"
    book.write_text(
        "hosts: all\nvars:\n  x: 1\nchecks:\n  - check: file_present\n"
        f"    with: {{root: {expression!r}}}\n"
    )
    playbook = load_playbook(book, registry)
    return bind(playbook, [Host("h1", vars=host_vars)], registry, {}, TemplateEngine())


TOO_BIG = "would make a value of 400000000 characters (at most 1000000)"
BOMBS = {
    "center": ("{{ 'x'|center(400000000) }}", f"center(400000000) {TOO_BIG}"),
    "printf": ("{{ '%0400000000d' % 1 }}", f"the format '%0400000000d' {TOO_BIG}"),
    "printf star": ("{{ '%*d' % (400000000, 1) }}", f"the format '%*d' {TOO_BIG}"),
    "format filter": ("{{ '%0400000000d'|format(1) }}", f"the format '%0400000000d' {TOO_BIG}"),
    "str.format": ("{{ '{:>400000000}'.format(1) }}", f"the format '{{:>400000000}}' {TOO_BIG}"),
    "nested width": ("{{ '{:>{}}'.format(1, 400000000) }}", f"the format '{{:>{{}}}}' {TOO_BIG}"),
    "ljust": ("{{ 'x'.ljust(400000000) }}", f"ljust(400000000) {TOO_BIG}"),
    "indent": ("{{ 'x'|indent(400000000) }}", f"indent(400000000) {TOO_BIG}"),
    "batch": ("{{ [1]|batch(400000000, 0)|list }}", f"batch(400000000) {TOO_BIG}"),
    "join": (
        "{{ (['x' * 1000000] * 400)|join }}",
        "joining would make a value of 400000000 characters (at most 1000000)",
    ),
    "concat": (
        "{{ 'x' * 1000000 ~ 'y' }}",
        "joining would make a value of 1000001 characters (at most 1000000)",
    ),
    "replace": (
        "{{ ('x' * 1000000)|replace('x', 'xx') }}",
        "replace would make a value of 2000000 characters (at most 1000000)",
    ),
    "recursive macro": (
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
        "recursion too deep (a macro that calls itself without end?)",
    ),
    "made": (
        "{% for i in big %}{{ 'x' * 1000000 }}{% endfor %}",
        "the template made more than 16 MiB of values",
    ),
    "output": (
        "{% for i in big %}{{ a }}{% endfor %}",
        "the template's output is over 16 Mi characters",
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_bomb_is_refused_fast_at_its_place(
    tmp_path: Path, registry: Any, name: str
) -> None:
    expression, message = BOMBS[name]
    with bounded(), pytest.raises(VariableError) as caught:
        bind_value(tmp_path, registry, expression, big=list(range(100)), a="x" * 1_000_000)
    assert str(caught.value) == (
        f"{tmp_path / 'site.yml'}:6:18: checks[0].with.root: template error: {message} (host h1)"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "{% for i in big %}{% for j in big %}{{ '' }}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
    ],
    ids=["nested loops", "exponential macro"],
)
def test_a_template_that_runs_too_long_stops_at_2_seconds(
    tmp_path: Path, registry: Any, expression: str
) -> None:
    with bounded(seconds=4), pytest.raises(VariableError) as caught:
        bind_value(tmp_path, registry, expression, big=list(range(100_000)))
    assert str(caught.value).endswith(
        "checks[0].with.root: template error: the template took longer than 2 s (host h1)"
    )


def test_ordinary_templates_still_render(tmp_path: Path, registry: Any) -> None:
    expression = "/srv/{{ '%03d' % 7 }}{{ '{:>4}'.format(y) }}{% for i in big %}{{ i }}{% endfor %}"
    [target] = bind_value(tmp_path, registry, expression, big=[1, 2], y=5)
    assert target.steps[0].check.params.root == "/srv/007   512"


def test_a_bomb_in_a_template_file_names_the_template_line(tmp_path: Path) -> None:
    (tmp_path / "site.conf").write_text("a\nb\n{{ 'x'|center(400000000) }}\n")
    with bounded(), pytest.raises(VariableError) as caught:
        TemplateEngine([tmp_path]).render_file("site.conf", {})
    assert str(caught.value) == (
        f"template 'site.conf' line 3: template error: center(400000000) {TOO_BIG}"
    )


def test_a_template_bomb_through_the_cli_is_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.yml").write_text(
        "hosts: web\nvars:\n  pad: \"{{ 'x'|center(400000000) }}\"\n"
        "checks:\n  - check: file_present\n    with: {root: '/srv/{{ pad }}'}\n"
    )
    (tmp_path / "inv.yml").write_text("web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n")
    with bounded(seconds=5, peak=64 * 2**20):
        code = main(["check", str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml")])
    assert code == 4
    assert capsys.readouterr().err == (
        f"ERROR: {tmp_path / 'site.yml'}:6:18: checks[0].with.root: in variable 'pad': "
        f"template error: center(400000000) {TOO_BIG} (host web1); 'pad' is set at "
        f"{tmp_path / 'site.yml'}:3:8\nNothing was run.\n"
    )


def test_a_bomb_in_an_inventory_var_names_where_it_was_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.yml").write_text(
        "hosts: web\nchecks:\n  - check: file_present\n    with: {root: '/srv/{{ pad }}'}\n"
    )
    (tmp_path / "inv.yml").write_text(
        "web:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.9\n"
        "      pad: \"{{ '%0400000000d' % 1 }}\"\n"
    )
    assert main(["check", str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml")]) == 4
    assert capsys.readouterr().err == (
        f"ERROR: {tmp_path / 'site.yml'}:4:18: checks[0].with.root: in variable 'pad': "
        f"template error: the format '%0400000000d' {TOO_BIG} (host web1); 'pad' is set at "
        f"{tmp_path / 'inv.yml'}:5:12\nNothing was run.\n"
    )


# -- YAML: size, nesting, characters ------------------------------------------------------


def test_a_huge_playbook_is_refused_before_it_is_parsed(tmp_path: Path, registry: Any) -> None:
    book = tmp_path / "site.yml"
    with book.open("w") as out:
        out.write("hosts: all\nvars:\n")
        for i in range(20_000):
            out.write(f"  v{i}: [a, b, c]\n")
    with bounded(), pytest.raises(PlaybookError) as caught:
        load_playbook(book, registry)
    assert str(caught.value) == f"{book}: file is larger than 256 KiB (refused, nothing was parsed)"


def test_deep_block_nesting_names_its_line(tmp_path: Path, registry: Any) -> None:
    book = tmp_path / "site.yml"
    book.write_text("hosts: all\nvars:\n" + "".join("  " * i + "- \n" for i in range(1, 300)))
    with bounded(), pytest.raises(PlaybookError) as caught:
        load_playbook(book, registry)
    assert str(caught.value) == (
        f"{book}:102:201: invalid YAML: nested more than 100 levels deep (refused)"
    )


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (
            b"web:\n  hosts:\n    web1: {x: a\x00b}\n",
            "3:16",
            "invalid YAML: special characters are not allowed (character '\\x00')",
        ),
        (b"web:\n  hosts:\n    w\xff\xfe:\n", "3:6", "not UTF-8 text: byte 0xff (refused)"),
    ],
    ids=["nul", "bad utf-8"],
)
def test_a_bad_character_in_an_inventory_names_its_line(
    tmp_path: Path, data: bytes, where: str, message: str
) -> None:
    path = tmp_path / "hosts.yml"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{where}: {message}"
