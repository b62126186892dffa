"""YAML is loaded safely: no object construction, and bombs are refused in bounded time and
memory, on every path that reads YAML (playbook, inventory, vars files, extra vars) and all
the way through validation, binding and rendering."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opsfix.errors import InputError, InventoryError, PlaybookError, VariableError
from opsfix.inventory import load_inventory
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import LazyVars, TemplateEngine
from opsfix.playbook.variables import parse_extra_vars
from opsfix.playbook.yamlpos import MAX_EXPANDED
from opsfix.registry import load_registry

SECONDS = 2.0
BYTES = 32 * 1024 * 1024


@contextmanager
def bounded(seconds: float = SECONDS, peak: int = BYTES) -> Iterator[None]:
    """The block must end within `seconds` and allocate at most `peak` bytes at once."""
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


def laughs(levels: int = 9, width: int = 9, indent: str = "  ") -> str:
    """The billion laughs: each anchor is a list of `width` aliases of the one before."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines)


def playbook_text(vars_block: str, files: str = "[index.html]") -> str:
    return f"""hosts: all
vars:
{vars_block}
checks:
  - check: file_present
    with: {{root: /var/www/html, files: {files}}}
"""


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_registry([])


def load(tmp_path: Path, registry: Any, text: str) -> Any:
    path = tmp_path / "book.yml"
    path.write_text(text)
    return load_playbook(path, registry)


def test_billion_laughs_in_a_playbook_is_refused_fast(tmp_path: Path, registry: Any) -> None:
    text = playbook_text(laughs(), files="*l8")
    with bounded(), pytest.raises(PlaybookError) as caught:
        load(tmp_path, registry, text)
    assert "aliases stand for more than" in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'book.yml'}:")


def test_billion_laughs_only_in_vars_is_refused_too(tmp_path: Path, registry: Any) -> None:
    with bounded(), pytest.raises(PlaybookError, match="refused"):
        load(tmp_path, registry, playbook_text(laughs()))


@pytest.mark.parametrize(
    ("name", "reader", "error"),
    [
        ("hosts.yml", lambda p: load_inventory([p]), InventoryError),
        ("extra.yml", lambda p: parse_extra_vars([f"@{p}"]), VariableError),
    ],
    ids=["inventory", "extra vars file"],
)
def test_billion_laughs_elsewhere_is_refused_fast(
    tmp_path: Path, name: str, reader: Callable[[Path], Any], error: type[InputError]
) -> None:
    path = tmp_path / name
    inventory = f"all:\n  vars:\n{laughs(indent='    ')}\n"
    path.write_text(inventory if name == "hosts.yml" else laughs(indent=""))
    with bounded(), pytest.raises(error, match="refused"):
        reader(path)


def test_billion_laughs_inline_in_extra_vars_is_refused() -> None:
    inline = "{" + laughs(indent="").replace("\n", ", ") + "}"
    with bounded(), pytest.raises(VariableError, match="refused"):
        parse_extra_vars([inline])


def test_a_document_just_under_the_cap_goes_all_the_way_in_bounded_time(
    tmp_path: Path, registry: Any
) -> None:
    # 5 levels of 9: l4 stands for 9**5 = 59049 leaves; all aliases together for ~75000
    # values, under the cap; l4 is rendered, l0 validated as a parameter
    assert 9**5 < MAX_EXPANDED < 9**6
    text = playbook_text(laughs(levels=5) + '\n  n: "{{ l4 }}"', files="*l0")
    with bounded(seconds=10, peak=256 * 1024 * 1024):
        playbook = load(tmp_path, registry, text)
        [target] = bind(playbook, [Host("h1")], registry, {}, TemplateEngine())
        assert len(target.vars["n"]) == 9
    assert target.steps[0].check.files == ["lol"]  # 9 times, made unique


def test_anchors_used_normally_still_load(tmp_path: Path, registry: Any) -> None:
    text = (
        "hosts: all\nvars:\n  base: &base {a: 1, b: [1, 2, 3]}\n"
        + "".join(f"  v{i}: *base\n" for i in range(150))
        + "checks:\n  - check: file_present\n    with: {root: /srv}\n"
    )
    playbook = load(tmp_path, registry, text)
    assert playbook.vars["v149"] == {"a": 1, "b": [1, 2, 3]}


UNSAFE = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:opsfix.inventory.host.Host {{name: x}}",
]


@pytest.mark.parametrize("tag", UNSAFE, ids=lambda t: t.split()[0])
def test_python_tags_are_refused_everywhere(tmp_path: Path, registry: Any, tag: str) -> None:
    marker = tmp_path / "pwned"
    value = tag.format(marker=marker)
    book = tmp_path / "book.yml"
    book.write_text(playbook_text(f"  x: {value}"))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"all:\n  hosts:\n    h1:\n      x: {value}\n")
    group_vars = tmp_path / "inv" / "group_vars"
    group_vars.mkdir(parents=True)
    (group_vars / "all.yml").write_text(f"x: {value}\n")
    (tmp_path / "inv" / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n")
    attempts: list[tuple[Callable[[], Any], type[InputError]]] = [
        (lambda: load_playbook(book, registry), PlaybookError),
        (lambda: load_inventory([inventory]), InventoryError),
        (lambda: load_inventory([tmp_path / "inv"]), InventoryError),
        (lambda: parse_extra_vars([f"{{x: {value} }}"]), VariableError),
    ]
    for attempt, error in attempts:
        with pytest.raises(error) as caught:
            attempt()
        assert "could not determine a constructor" in str(caught.value) or "tag" in str(
            caught.value
        )
    assert not marker.exists()


def test_deep_nesting_is_an_input_error_not_a_crash(tmp_path: Path, registry: Any) -> None:
    with bounded(), pytest.raises(PlaybookError):
        load(tmp_path, registry, "hosts: all\nvars: {x: " + "[" * 20000 + "]" * 20000 + "}\n")


@pytest.mark.parametrize(
    "expression",
    [
        "{{ 'lol' * 1000000000 }}",
        "{{ ['lol'] * 1000000000 }}",
        "{{ 9 ** (9 ** 9) }}",
        "{{ 10 ** 100000000 }}",
        "{{ range(10**9) | list }}",
        "{{ 'x' * 1000000 * 1000 }}",
        "{{ 1 / 0 }}",
        "{{ 10.0 ** 1000 }}",
        "{{ 'abc'.index('z') }}",
    ],
)
def test_template_bombs_are_refused_in_bounded_time_and_memory(expression: str) -> None:
    variables = LazyVars({"v": expression}, TemplateEngine())
    with bounded(), pytest.raises(VariableError):
        variables["v"]
