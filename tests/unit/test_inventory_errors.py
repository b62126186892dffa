"""Every bad inventory fails with the file, line (and column for YAML) and a clear message."""

from pathlib import Path

import pytest

from opsfix.errors import InventoryError, Location
from opsfix.inventory import load_inventory


def error_of(path: Path, text: str) -> InventoryError:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    return info.value


@pytest.mark.parametrize(
    ("name", "text", "line", "column", "field", "message"),
    [
        (
            "bad.yml",
            "web:\n  hosts:\n    web1: {a: 1\n",
            4,
            1,
            "",
            "invalid YAML: expected ',' or '}', but got '<stream end>'",
        ),
        (
            "hosts.yml",
            "all:\n  children:\n    web:\n      hosts:\n        - web1\n        - web2\n",
            5,
            9,
            "all.children.web.hosts",
            "expected a mapping of host names (each with its vars, or empty), "
            "got a list ['web1', 'web2']",
        ),
        (
            "hostvars.yml",
            "web:\n  hosts:\n    web1: fast\n",
            3,
            11,
            "web.hosts.web1",
            "vars of host 'web1' must be a mapping of variable names, got a string 'fast'",
        ),
        (
            "vars.yml",
            "web:\n  vars:\n    - a\n",
            3,
            5,
            "web.vars",
            "expected a mapping of variable names to values, got a list ['a']",
        ),
        (
            "children.yml",
            "web:\n  children: [a, b]\n",
            2,
            13,
            "web.children",
            "expected a mapping of group names, got a list ['a', 'b']",
        ),
        (
            "range.yml",
            "web:\n  hosts:\n    web[3:1]:\n",
            3,
            5,
            "web.hosts.web[3:1]",
            "host range [3:1] in 'web[3:1]' must have begin <= end",
        ),
        (
            "number.yml",
            "web:\n  hosts:\n    1.5:\n",
            3,
            5,
            "web.hosts.1.5",
            "host name must be a non-empty string, got a number 1.5; put numbers in quotes",
        ),
        (
            "top.yml",
            "- web1\n- web2\n",
            1,
            1,
            "",
            "expected a mapping of group names at the top, got a list ['web1', 'web2']",
        ),
        (
            "cycle.yml",
            "a:\n  children:\n    b:\n      children:\n        c:\n          children:\n"
            "            a:\n",
            3,
            5,
            "a.children.b",
            "group 'b' cannot be a child of 'a': the groups would form a cycle (b > c > a > b); "
            "expected children to nest without loops",
        ),
    ],
)
def test_yaml_errors_name_file_line_column_and_field(
    tmp_path, name, text, line, column, field, message
):
    error = error_of(tmp_path / name, text)
    assert error.location == Location(str(tmp_path / name), line, column, field)
    assert error.message == message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "[web]\nweb1 ansible_port=22 fast\n",
            2,
            "expected key=value after the host name, got 'fast'",
        ),
        (
            "[web servers]\nweb1\n",
            1,
            "invalid section header '[web servers]'; expected [group], [group:vars] or "
            "[group:children] with no spaces",
        ),
        (
            "[web:child]\nweb1\n",
            1,
            "section '[web:child]' has unknown type 'child'; expected :vars or :children",
        ),
        (
            "[web]\nw1\n\n[prod:children]\nweb\ndb\n",
            6,
            "section [prod:children] names group 'db', which is not defined; expected a [db] "
            "or [db:children] section (hosts cannot be children)",
        ),
        (
            "[web]\nw1\n[db:vars]\nx=1\n",
            3,
            "section [db:vars] sets vars of group 'db', which is not defined; expected a [db] "
            "or [db:children] section",
        ),
        (
            "[web:vars]\njust a word\n[web]\n",
            2,
            "expected key=value in [web:vars], got 'just a word'",
        ),
        (
            "[prod:children]\n# comment\nweb east\n",
            3,
            "expected a group name in [prod:children], got 'web east'",
        ),
        (
            "[web]\nweb1 motd='hello\n",
            2,
            'cannot split host line "web1 motd=\'hello": No closing quotation',
        ),
        (
            "[web]\nweb[01:5]\n",
            2,
            "host range [01:5] in 'web[01:5]' must pad begin and end to the same width",
        ),
        (
            "[web]\nweb[a:5]\n",
            2,
            "host range [a:5] in 'web[a:5]' must be numeric (01:10) or single letters (a:f)",
        ),
        ("[web]\nweb[1:3\n", 2, "host range in 'web[1:3' has no closing ']'"),
        (
            "[web]\nweb[1:2:0]\n",
            2,
            "host range [1:2:0] in 'web[1:2:0]' needs a positive whole step",
        ),
        ("[web]\nweb1:\n", 2, "host 'web1:' ends in ':'; expected host or host:port"),
        (
            "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n",
            6,
            "group 'a' cannot be a child of 'c': the groups would form a cycle (a > b > c > a); "
            "expected children to nest without loops",
        ),
        (
            "[a:children]\na\n",
            2,
            "group 'a' cannot be a child of 'a': the groups would form a cycle (a > a); "
            "expected children to nest without loops",
        ),
        (
            "[a]\nh\n[a:vars]\nansible_group_priority=high\n",
            4,
            "ansible_group_priority must be a whole number, got 'high'",
        ),
    ],
)
def test_ini_errors_name_file_and_line(tmp_path, text, line, message):
    error = error_of(tmp_path / "hosts.ini", text)
    assert error.location == Location(str(tmp_path / "hosts.ini"), line)
    assert error.message == message
    assert str(error) == f"{tmp_path / 'hosts.ini'}:{line}: {message}"


def test_group_vars_file_that_is_not_a_mapping(tmp_path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("# web vars\n- a\n- b\n")
    error = error_of(tmp_path / "h.yml", "web:\n  hosts: {w1: }\n")
    assert error.location == Location(str(tmp_path / "group_vars" / "web.yml"), 2, 1)
    assert error.message == "expected a mapping of variable names to values, got a list ['a', 'b']"


def test_host_vars_file_with_invalid_yaml(tmp_path):
    (tmp_path / "host_vars" / "w1").mkdir(parents=True)
    (tmp_path / "host_vars" / "w1" / "x.yml").write_text("a: 1\nb: [1\n")
    error = error_of(tmp_path / "h.yml", "web:\n  hosts: {w1: }\n")
    assert error.location.file == str(tmp_path / "host_vars" / "w1" / "x.yml")
    assert error.message.startswith("invalid YAML:")


def test_missing_source(tmp_path):
    with pytest.raises(InventoryError) as info:
        load_inventory([tmp_path / "nope.ini"])
    assert str(info.value) == (
        f"{tmp_path / 'nope.ini'}: inventory source not found; "
        "expected a YAML or INI file or a folder"
    )


def test_an_error_in_a_folder_source_names_the_file_inside(tmp_path):
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "01.ini").write_text("[web]\nweb1\n")
    error = error_of(tmp_path / "inv" / "02.yml", "web: {hosts: [a]}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory([tmp_path / "inv"])
    assert info.value.location == error.location
    assert info.value.location.file == str(tmp_path / "inv" / "02.yml")
