"""Playbook validation: every error names file, line, column and field; nothing runs."""

from pathlib import Path

import pytest

from opsfix.errors import PlaybookError, VariableError
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.registry import load_registry

DATA = Path(__file__).parents[1] / "data"
PLAYBOOKS = DATA / "playbooks"


@pytest.fixture(scope="module")
def registry():
    return load_registry([DATA / "plugins"])


def load(name, registry):
    return load_playbook(PLAYBOOKS / name, registry)


def bind_one(playbook, registry, host_vars=None, extra=None):
    host = Host("web1", ("web",), host_vars or {})
    return bind(playbook, [host], registry, extra or {}, TemplateEngine())


def test_good_playbook_binds_with_rendered_typed_params(registry):
    playbook = load("good.yml", registry)
    assert playbook.hosts == "all" and playbook.name == "good"
    [target] = bind_one(playbook, registry, {"base": "/srv"})
    step = target.steps[0]
    assert step.label == "file has the line"
    assert step.check.params.path == "/srv/file.txt"
    assert step.check.params.count == 1
    assert step.remediations[0].params.line == "hello"


def test_extra_vars_beat_playbook_vars_beat_inventory(registry):
    playbook = load("good.yml", registry)
    [target] = bind_one(playbook, registry, {"base": "/srv", "wanted": "inv"}, {"wanted": "cli"})
    assert target.steps[0].check.params.line == "cli"
    [target] = bind_one(playbook, registry, {"base": "/srv", "wanted": "inv"})
    assert target.steps[0].check.params.line == "hello"


@pytest.mark.parametrize(
    ("name", "line", "col", "needles"),
    [
        ("bad_yaml.yml", 5, 1, ["invalid YAML"]),
        (
            "unknown_check.yml",
            5,
            12,
            ["checks[1].check", "unknown check 'file_contain'", "did you mean 'file_contains'"],
        ),
        ("unknown_field.yml", 2, 1, ["chekcs", "unknown field"]),
        (
            "unknown_remediation.yml",
            6,
            9,
            ["checks[0].remediate[0]", "'write_lines'", "did you mean 'write_line'"],
        ),
        ("missing_verify.yml", 6, 5, ["verify[0]", "does_not_exist.py", "not found"]),
    ],
)
def test_load_errors_point_at_the_spot(registry, name, line, col, needles):
    with pytest.raises(PlaybookError) as info:
        load(name, registry)
    err = info.value
    assert err.location is not None
    assert err.location.file.endswith(name)
    assert (err.location.line, err.location.column) == (line, col), str(err)
    for needle in needles:
        assert needle in str(err)


def test_wrong_type_names_field_value_and_expectation(registry):
    playbook = load("wrong_type.yml", registry)
    with pytest.raises(PlaybookError) as info:
        bind_one(playbook, registry)
    text = str(info.value)
    assert text.startswith(f"{PLAYBOOKS / 'wrong_type.yml'}:7:14: checks[0].with.count:")
    assert "'many'" in text and "expected count: int" in text


def test_unknown_param_suggests_the_close_name(registry):
    playbook = load("unknown_param.yml", registry)
    with pytest.raises(PlaybookError) as info:
        bind_one(playbook, registry)
    text = str(info.value)
    assert ":6:7: checks[0].with.lines: unknown field 'lines'" in text
    assert "did you mean 'line'?" in text


def test_undefined_variable_names_field_and_variable(registry):
    playbook = load("undefined_var.yml", registry)
    with pytest.raises(VariableError) as info:
        bind_one(playbook, registry)
    text = str(info.value)
    assert ":6:13: checks[0].with.line:" in text
    assert "'nowhere_defined' is undefined" in text and "host web1" in text


def test_not_a_mapping(tmp_path, registry):
    path = tmp_path / "list.yml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(PlaybookError, match=r"list.yml:1:1: expected a mapping"):
        load_playbook(path, registry)


def test_empty_checks_is_an_error(tmp_path, registry):
    path = tmp_path / "empty.yml"
    path.write_text("hosts: all\nchecks: []\n")
    with pytest.raises(PlaybookError, match=r"empty.yml:2:9: checks: .*at least 1 item"):
        load_playbook(path, registry)
