"""Templates run sandboxed: no file outside the template folders, no Python internals.

Known escapes are tried by name (include/import/extends of /etc/passwd and `../` paths,
the usual `__class__`/`__globals__` chains); hypothesis then renders arbitrary template
text and checks that it gives a value or a VariableError, never another exception, a
hang, or the content of a controller file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsfix.errors import VariableError
from opsfix.playbook.templating import LazyVars, TemplateEngine

SECRET_LINE = "root:x:0:0"  # what /etc/passwd holds

ESCAPES = [
    "{% include '/etc/passwd' %}",
    "{% include '../../../../../../etc/passwd' %}",
    "{% include 'templates/../../../../../../etc/passwd' %}",
    "{% import '/etc/passwd' as p %}{{ p }}",
    "{% import '../../../../etc/passwd' as p %}{{ p }}",
    "{% extends '/etc/passwd' %}",
    "{% from '../../../../etc/passwd' import x %}{{ x }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{{ x.__class__.__init__.__globals__ }}",
    "{{ (x|attr('__class__')).__mro__ }}",
    "{{ x|attr('__globals__') }}",
    "{{ [].append.__self__ }}",
    "{% set l = [] %}{{ l.append(1) }}",
    "{{ {}.update(a=1) }}",
    "{{ config }}",
    "{{ open('/etc/passwd').read() }}",
    "{{ __import__('os').system('id') }}",
]


@pytest.fixture
def engine(tmp_path: Path) -> TemplateEngine:
    templates = tmp_path / "project" / "templates"
    templates.mkdir(parents=True)
    (templates / "ok.j2").write_text("ok {{ x }}\n")
    (templates / "evil.j2").write_text("{% include '../../../../../../etc/passwd' %}")
    (templates / "evil_abs.j2").write_text("{% include '/etc/passwd' %}")
    (tmp_path / "project" / "secret.txt").write_text("project secret\n")
    (templates / "sibling.j2").write_text("{% include '../secret.txt' %}")
    return TemplateEngine([templates])


@pytest.mark.parametrize("template", ESCAPES)
def test_known_escapes_are_variable_errors(engine: TemplateEngine, template: str) -> None:
    variables = LazyVars({"v": template, "x": "a"}, engine)
    with pytest.raises(VariableError) as caught:
        rendered = variables["v"]
        raise AssertionError(f"rendered: {rendered!r}")
    assert SECRET_LINE not in str(caught.value)


@pytest.mark.parametrize("name", ["evil.j2", "evil_abs.j2", "sibling.j2", "../secret.txt"])
def test_template_files_cannot_reach_outside_their_folders(
    engine: TemplateEngine, name: str
) -> None:
    with pytest.raises(VariableError) as caught:
        engine.render_file(name, {"x": "a"})
    assert SECRET_LINE not in str(caught.value) and "project secret" not in str(caught.value)


def test_a_template_inside_the_folder_still_renders(engine: TemplateEngine) -> None:
    assert engine.render_file("ok.j2", {"x": "a"}) == "ok a\n"


PIECES = st.sampled_from(
    [
        "{{", "}}", "{%", "%}", "{#", "#}", " x ", " y ", "x.", "__class__", "__globals__",
        "__mro__", "__subclasses__()", "|attr('__dict__')", "|e", "|list", "|join", "|int",
        "|default(1)", "range(", "99999999", ")", "(", "[", "]", "'", '"', "*", "**", "/",
        "%", "~", "+", "-", " if ", " else ", " for i in ", " endfor ", " set ", "=",
        " include ", " import ", " extends ", "'/etc/passwd'", "'../x'", "lipsum", "cycler",
        "self", "loop", "caller", "namespace", ",", ":", "\n", "0", "1", "-1", "9", "abc",
    ]
)  # fmt: skip


@settings(
    max_examples=300,
    deadline=1000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(parts=st.lists(PIECES, max_size=25))
def test_any_template_renders_or_is_a_variable_error(
    engine: TemplateEngine, parts: list[str]
) -> None:
    variables = LazyVars({"v": "".join(parts), "x": "a", "y": [1, 2]}, engine)
    try:
        rendered = variables["v"]
    except VariableError as exc:
        assert str(exc)
        return
    assert SECRET_LINE not in str(rendered)
