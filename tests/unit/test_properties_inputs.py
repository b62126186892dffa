"""Any input gives a valid model or an input error with a message: never another exception
and never a hang. Hypothesis feeds the inventory loader (YAML and INI), the playbook
loader with binding, and the extra-vars parser with arbitrary and near-valid input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsfix.errors import InputError, OptionsError
from opsfix.inventory import Inventory, load_inventory
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.playbook.variables import parse_extra_vars
from opsfix.registry import load_registry

FAST = settings(
    max_examples=120,
    deadline=2000,  # ms per example: a hang fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Fragments that real input is made of, so examples get past the parser now and then.
WORDS = st.sampled_from(
    [
        "all", "web", "hosts", "vars", "children", "checks", "check", "with", "remediate",
        "remediation", "name", "verify", "serial", "file_present", "nginx_config",
        "nginx_reload", "port_listening", "http", "root", "port", "url", "files", "x",
        "ansible_host", "ansible_port", "inventory_hostname", "[web]", "[web:vars]",
        "[web:children]", "web[1:3]", "web[a:c]", "h1:22", "{{ x }}", "{{ y | default(1) }}",
        "{% for i in range(3) %}{{ i }}{% endfor %}", "{{", "}}", "&a", "*a", "!!str", "<<",
        "- ", ": ", "=", "#", "\n", "  ", "'", '"', "\t", "---", "...", "~", "null", "0x1f",
        "1e9", "-1", "65536", "\\", "%", "\x00", "é",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    WORDS,
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(WORDS, st.text(max_size=8)), inner, max_size=4),
    ),
    max_leaves=20,
)
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(WORDS, max_size=40).map("".join),
    DATA.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
)


def expect_model_or_input_error(call: Any) -> Any:
    try:
        return call()
    except (InputError, OptionsError) as exc:
        assert str(exc).strip(), "an error without a message"
        return None


# -- inventory -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yml", ".ini", ""])
@FAST
@given(text=TEXT)
def test_inventory_text_loads_or_is_an_inventory_error(
    tmp_path: Path, suffix: str, text: str
) -> None:
    path = tmp_path / f"hosts{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    inventory = expect_model_or_input_error(lambda: load_inventory([path]))
    if inventory is not None:
        assert isinstance(inventory, Inventory)
        expect_model_or_input_error(lambda: inventory.match("all"))


GROUP = st.fixed_dictionaries(
    {},
    optional={
        "hosts": st.dictionaries(WORDS | st.text(max_size=10), DATA | st.none(), max_size=3),
        "vars": st.dictionaries(WORDS, DATA, max_size=3),
        "children": st.dictionaries(WORDS, st.none() | DATA, max_size=2),
    },
)


@FAST
@given(groups=st.dictionaries(WORDS | st.text(max_size=6), GROUP | DATA, max_size=4))
def test_inventory_shaped_yaml_loads_or_is_an_inventory_error(
    tmp_path: Path, groups: dict[Any, Any]
) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(groups, allow_unicode=True))
    expect_model_or_input_error(lambda: load_inventory([path]))


# -- playbook and binding -------------------------------------------------------------------

REGISTRY = load_registry([])
CHECK_NAMES = st.sampled_from([*sorted(REGISTRY.checks), "nope"])
REMEDIATION_NAMES = st.sampled_from([*sorted(REGISTRY.remediations), "nope"])
VALUES = st.one_of(DATA, st.lists(WORDS, max_size=5).map("".join))
PARAMS = st.dictionaries(
    st.sampled_from(["root", "files", "port", "url", "service", "path", "paths", "x"]),
    VALUES,
    max_size=3,
)
STEP = st.fixed_dictionaries(
    {"check": CHECK_NAMES},
    optional={
        "with": PARAMS,
        "name": VALUES,
        "remediate": st.lists(
            REMEDIATION_NAMES
            | st.fixed_dictionaries({"remediation": REMEDIATION_NAMES}, optional={"with": PARAMS}),
            max_size=2,
        ),
    },
)
PLAYBOOK = st.fixed_dictionaries(
    {"checks": st.lists(STEP, max_size=3) | DATA},
    optional={
        "hosts": VALUES,
        "vars": st.dictionaries(WORDS, VALUES, max_size=4) | DATA,
        "secret_vars": st.lists(WORDS, max_size=2) | DATA,
        "serial": VALUES,
        "extra": DATA,
    },
)


@FAST
@given(book=PLAYBOOK | DATA, host_vars=st.dictionaries(WORDS, VALUES, max_size=3))
def test_playbook_loads_and_binds_or_is_an_input_error(
    tmp_path: Path, book: Any, host_vars: dict[str, Any]
) -> None:
    path = tmp_path / "book.yml"
    path.write_text(yaml.safe_dump(book, allow_unicode=True))
    playbook = expect_model_or_input_error(lambda: load_playbook(path, REGISTRY))
    if playbook is None:
        return
    hosts = [Host("h1", ("web",), host_vars)]
    targets = expect_model_or_input_error(
        lambda: bind(playbook, hosts, REGISTRY, {}, TemplateEngine())
    )
    if targets is not None:  # every check can say what it would run
        for step in targets[0].steps:
            assert all(isinstance(c, str) for c in step.check.commands())


@FAST
@given(text=TEXT)
def test_playbook_text_loads_or_is_a_playbook_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "book.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    expect_model_or_input_error(lambda: load_playbook(path, REGISTRY))


# -- extra vars ------------------------------------------------------------------------------


@FAST
@given(items=st.lists(TEXT | st.lists(WORDS, max_size=6).map(" ".join), max_size=3))
def test_extra_vars_parse_or_are_an_error_with_a_message(items: list[str]) -> None:
    merged = expect_model_or_input_error(lambda: parse_extra_vars(items))
    assert merged is None or isinstance(merged, dict)


@FAST
@given(data=DATA)
def test_extra_vars_files_parse_or_are_a_variable_error(tmp_path: Path, data: Any) -> None:
    path = tmp_path / "extra.yml"
    text = yaml.safe_dump(data, allow_unicode=True)
    path.write_text(text)
    merged = expect_model_or_input_error(lambda: parse_extra_vars([f"@{path}"]))
    # what PyYAML itself reads back: YAML folds some characters (NEL, LS, PS) in plain
    # scalars, so the dumped text, not the original data, is the reference
    assert merged is None or merged == yaml.safe_load(text)
