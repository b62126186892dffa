"""Shell-command parameters (`validate:`, `start_command:`): a value from the inventory or a
variable is one quoted word, never shell; a list of arguments is quoted item by item."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from opsfix.errors import PlaybookError
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.registry import load_registry

PAYLOAD = "/etc/x; touch {pwn} #$(touch {pwn})`touch {pwn}`'\"\n"


def bound_start(tmp_path: Path, with_: str, **host_vars: object) -> tuple[object, ...]:
    (tmp_path / "site.yml").write_text(
        "hosts: all\nchecks:\n  - check: service_running\n    with: {service: demo}\n"
        f"    remediate:\n      - remediation: service_start\n        with: {with_}\n"
    )
    registry = load_registry([])
    playbook = load_playbook(tmp_path / "site.yml", registry)
    [target] = bind(
        playbook, [Host("web1", ("web",), dict(host_vars))], registry, {}, TemplateEngine()
    )
    params = target.steps[0].remediations[0].params
    return params.validate, params.start_command


@pytest.mark.parametrize(
    "with_",
    [
        "{service: demo, validate: 'printf %s {{ conf_path }} > {{ out }}'}",
        "{service: demo, validate: 'printf %s {{ conf_path | quote }} > {{ out | quote }}'}",
        '{service: demo, validate: [sh, -c, \'printf %s "$1" > "$2"\', x,'
        " '{{ conf_path }}', '{{ out }}']}",
    ],
    ids=["quoted by default", "quote filter", "list of arguments"],
)
def test_an_inventory_value_in_validate_runs_nothing_and_arrives_whole(
    tmp_path: Path, with_: str
) -> None:
    pwn, out = tmp_path / "PWN", tmp_path / "out"
    value = PAYLOAD.format(pwn=pwn)
    validate, _ = bound_start(tmp_path, with_, conf_path=value, out=str(out))
    assert isinstance(validate, str)
    subprocess.run(["/bin/sh", "-c", validate], check=True, cwd=tmp_path)
    assert not pwn.exists()
    assert out.read_text() == value  # the intended command ran, with the literal value


def test_the_commands_own_words_stay_shell_syntax(tmp_path: Path) -> None:
    validate, start = bound_start(
        tmp_path,
        "{service: demo, validate: 'nginx -t -c {{ conf }} && echo ok',"
        " start_command: '{{ cmd }}'}",
        conf="/etc/nginx/my conf",
        cmd="nginx -g 'daemon on;'",
    )
    assert validate == "nginx -t -c '/etc/nginx/my conf' && echo ok"
    assert shlex.split(str(start)) == ["nginx -g 'daemon on;'"]  # a whole command: one word


def test_loops_and_numbers_are_quoted_each(tmp_path: Path) -> None:
    validate, _ = bound_start(
        tmp_path,
        "{service: demo, validate: 'ls {% for f in files %}{{ f }} {% endfor %}-n {{ n }}'}",
        files=["a b", "$(x)"],
        n=3,
    )
    assert validate == "ls 'a b' '$(x)' -n 3"


def test_a_list_that_is_not_arguments_names_its_place(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as info:
        bound_start(tmp_path, "{service: demo, validate: []}")
    assert str(info.value) == (
        f"{tmp_path / 'site.yml'}:7:41: checks[0].remediate[0].with.validate: Value error, "
        "expected a shell command, or a non-empty list of arguments (got []); "
        "expected validate: Optional (shell command that must pass first)"
    )


def test_the_quote_filter_in_any_template() -> None:
    engine = TemplateEngine()
    assert engine.render_value("echo {{ x | quote }}", {"x": "a'b"}) == "echo 'a'\"'\"'b'"
    assert engine.render_value("{{ x | quote | quote }}", {"x": "a b"}) == "'a b'"
