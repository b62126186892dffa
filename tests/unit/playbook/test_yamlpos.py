"""Positional YAML reads the same through libyaml as through the pure loader: the same
values, positions and error messages, and it is refused safely where libyaml would not be."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from opsfix.errors import InputError
from opsfix.playbook import yamlpos
from opsfix.playbook.yamlpos import PosDict, PosList

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")

# Each is a place where libyaml and PyYAML's scanner disagree, or a guard must hold.
TRICKY = [
    "all:\n  hosts:\n    web1:\n    web2: {ansible_host: 10.0.0.2}\n",
    "a: {x: , y: 1}\n",  # libyaml puts an empty flow value one column later
    "a: {x:}\nb: [k: ]\n",
    "? a\n? b\n",  # explicit keys without values
    "a: !\nb: !!str\n",  # empty tagged values
    "a: {b: c?d}\n",  # PyYAML refuses a plain ? in a flow collection
    "url: http://h/?q=1\n",
    "a: b\tc\n",  # PyYAML refuses this tab
    "\ufeffa: 1\nb: [2]\n",  # libyaml's columns do not count U+FEFF
    "k\ufeffey: 1\n",
    "a: &x [1, 2]\nb: *x\n",
    "a: [1, 2\nb: 3\n",
    "a: 1\na: 2\n",
    "a:\n  - b\n - c\n",
    "x: " + "[" * 150 + "]" * 150 + "\n",
    "é€: [x, 'y', \"z\\n\"]\n",
]


def _shape(value: Any) -> Any:
    """Values and every recorded position, for comparing two loads."""
    if isinstance(value, PosDict):
        items = [(k, _shape(v), value.key_pos[k], value.value_pos[k]) for k, v in value.items()]
        return ("map", value.pos, items)
    if isinstance(value, PosList):
        return ("seq", value.pos, [_shape(v) for v in value], value.item_pos)
    return value


def _outcome(load: Any, text: str) -> Any:
    try:
        return _shape(load(text))
    except InputError as exc:
        return ("error", str(exc))


def _pure(text: str) -> Any:
    return yamlpos.loads(text, "f.yml")


@pytest.mark.parametrize("text", TRICKY)
def test_libyaml_and_the_pure_loader_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    both = _outcome(_pure, text)
    monkeypatch.setattr(yamlpos, "_FAST", None)
    assert both == _outcome(_pure, text)


@needs_libyaml
def test_an_ordinary_document_is_read_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError("the pure loader was used")

    monkeypatch.setattr(yamlpos, "_Loader", refuse)
    data = yamlpos.loads("hosts: web\nchecks:\n  - check: http\n    with: {url: x}\n", "p.yml")
    assert data["checks"][0]["with"].value_pos["url"] == (4, 17)


def test_errors_name_the_line_and_column() -> None:
    with pytest.raises(InputError, match=r"f\.yml:2:1: invalid YAML: .*duplicate key 'a'"):
        yamlpos.loads("a: 1\na: 2\n", "f.yml")
    expected = r"f\.yml:1:9: invalid YAML: expected ',' or '}', but got '\?'"
    with pytest.raises(InputError, match=expected):
        yamlpos.loads("a: {b: c?d}\n", "f.yml")
