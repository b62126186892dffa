from pathlib import Path

import pytest

from opsfix.errors import OptionsError, VariableError
from opsfix.inventory.host import Host
from opsfix.playbook.variables import host_variables, parse_extra_vars


def test_precedence_inventory_then_playbook_then_extra(tmp_path):
    host = Host("web1", ("web",), {"a": "inv", "b": "inv", "c": "inv"})
    merged = host_variables(host, {"b": "play", "c": "play"}, {"c": "extra"}, tmp_path)
    assert (merged["a"], merged["b"], merged["c"]) == ("inv", "play", "extra")
    assert merged["inventory_hostname"] == "web1"
    assert merged["group_names"] == ["web"]
    assert merged["playbook_dir"] == str(tmp_path)


def test_extra_vars_forms(tmp_path: Path):
    f = tmp_path / "vars.yml"
    f.write_text("port: 8080\nnames: [a, b]\n")
    merged = parse_extra_vars(["x=1 y=two", f"@{f}", '{"z": true}'])
    assert merged == {"x": "1", "y": "two", "port": 8080, "names": ["a", "b"], "z": True}


def test_extra_vars_errors(tmp_path: Path):
    with pytest.raises(OptionsError, match="key=value"):
        parse_extra_vars(["novalue"])
    bad = tmp_path / "bad.yml"
    bad.write_text("a: [1,\n")
    with pytest.raises(VariableError, match=r"bad\.yml:2:1"):
        parse_extra_vars([f"@{bad}"])
    with pytest.raises(VariableError, match="must be a mapping"):
        parse_extra_vars(["[1, 2]"])


def test_extra_vars_key_values_split_as_ansible_does() -> None:
    """`-e 'banner="two words" other=1'` is two variables, quotes removed (shlex rules)."""
    assert parse_extra_vars(["banner=\"two words\" other=1 path='/a b/c' e="]) == {
        "banner": "two words",
        "other": "1",
        "path": "/a b/c",
        "e": "",
    }
    with pytest.raises(OptionsError, match="quotes must be closed"):
        parse_extra_vars(['banner="unclosed'])
