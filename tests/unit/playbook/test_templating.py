from pathlib import Path

import pytest

from opsfix.errors import VariableError
from opsfix.playbook.templating import LazyVars, TemplateEngine


@pytest.fixture
def engine(tmp_path: Path) -> TemplateEngine:
    (tmp_path / "site.j2").write_text("root {{ web_root }};\n")
    (tmp_path / "sneaky.j2").write_text("{% include '../../etc/passwd' %}")
    return TemplateEngine([tmp_path])


def test_single_expression_keeps_native_type(engine):
    v = LazyVars({"ports": [22, 80], "n": 3}, engine)
    assert engine.render_value("{{ ports }}", v) == [22, 80]
    assert engine.render_value("{{ n + 1 }}", v) == 4
    assert engine.render_value("port {{ n }}", v) == "port 3"


def test_vars_refer_to_vars_lazily_and_unused_broken_vars_do_no_harm(engine):
    v = LazyVars({"a": "{{ b }}/x", "b": "/srv", "broken": "{{ nope }}"}, engine)
    assert engine.render_value({"k": ["{{ a }}"]}, v) == {"k": ["/srv/x"]}


def test_undefined_is_an_error_never_empty(engine):
    v = LazyVars({}, engine)
    with pytest.raises(VariableError, match="'nope' is undefined"):
        engine.render_value("x{{ nope }}y", v)
    with pytest.raises(VariableError, match="'nope' is undefined"):
        engine.render_value("{{ nope }}", v)


def test_cycles_are_reported(engine):
    v = LazyVars({"a": "{{ b }}", "b": "{{ a }}"}, engine)
    with pytest.raises(VariableError, match="refers to itself"):
        engine.render_value("{{ a }}", v)


def test_sandbox_blocks_python_internals(engine):
    with pytest.raises(VariableError, match="unsafe"):
        engine.render_value("{{ ''.__class__.__mro__ }}", LazyVars({}, engine))


def test_template_files_render_and_stay_inside_their_folders(engine):
    v = LazyVars({"web_root": "/var/www/html"}, engine)
    assert engine.render_file("site.j2", v) == "root /var/www/html;\n"
    with pytest.raises(VariableError, match="not found"):
        engine.render_file("../etc/passwd", v)
    with pytest.raises(VariableError):
        engine.render_file("sneaky.j2", v)
    assert not engine.has_template("/etc/passwd")
