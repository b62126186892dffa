"""Connection variables are rendered and checked before any host is contacted: a bad value
is exit 4 naming the file:line where it was set (opsfix.transport.connection_vars)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.errors import InventoryError, Location
from opsfix.inventory.host import Host
from opsfix.runner import RunRequest, prepare
from opsfix.secret import Secret
from opsfix.transport import connection_vars as cv

PLAYBOOK = "hosts: web\nchecks:\n  - check: memory\n"


def run_check(tmp_path: Path, inventory: str, *extra: str, name: str = "inv.yml") -> int:
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / name).write_text(inventory)
    argv = ["check", str(tmp_path / "site.yml"), "-i", str(tmp_path / name), *extra]
    return main(argv)


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        (
            "web1: {ansible_host: 127.0.0.9, ansible_port: 99999}",
            "3:51: web.hosts.web1.ansible_port",
            "99999 is out of range; expected a port number 1-65535 (host 'web1')",
        ),
        (
            "web1: {ansible_host: 127.0.0.9, ansible_timeout: -5}",
            "3:54: web.hosts.web1.ansible_timeout",
            "-5 is not a timeout; expected a number of seconds above 0 (host 'web1')",
        ),
        (
            "web1: {ansible_host: 127.0.0.9, ansible_user: '{{ nope }}'}",
            "3:51: web.hosts.web1.ansible_user",
            "undefined variable: 'nope' is undefined (host 'web1')",
        ),
        (
            'web1: {ansible_host: 127.0.0.9, ansible_user: "ro\\0ot"}',
            "3:51: web.hosts.web1.ansible_user",
            "'ro\\x00ot' holds a NUL character, which no command can carry (host 'web1')",
        ),
        (
            "web1: {ansible_host: '-oProxyCommand=x'}",
            "3:26: web.hosts.web1.ansible_host",
            "'-oProxyCommand=x' is not a valid name; expected one word without spaces, "
            "control characters or a leading '-' (host 'web1')",
        ),
        (
            "web1: {ansible_host: 127.0.0.9, ansible_become: maybe}",
            "3:53: web.hosts.web1.ansible_become",
            "'maybe' is not a boolean; expected true or false (yes/no, on/off, 1/0) (host 'web1')",
        ),
    ],
)
def test_a_bad_connection_value_is_exit_4_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, where: str, message: str
) -> None:
    code = run_check(tmp_path, f"web:\n  hosts:\n    {line}\n")
    err = capsys.readouterr().err
    assert code == 4
    assert err == f"ERROR: {tmp_path / 'inv.yml'}:{where}: {message}\nNothing was run.\n"


def test_an_ini_value_names_its_line_and_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_check(
        tmp_path,
        "[web]\nweb1 ansible_host=127.0.0.9\n\n[web:vars]\nansible_port=0\n",
        name="inv.ini",
    )
    err = capsys.readouterr().err
    assert code == 4
    expected = "0 is out of range; expected a port number 1-65535 (host 'web1')"
    assert err.startswith(f"ERROR: {tmp_path / 'inv.ini'}:5: ansible_port: {expected}\n")


def test_a_value_from_host_vars_files_names_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "web1.yml").write_text("x: 1\nansible_timeout: nan\n")
    code = run_check(tmp_path, "web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n")
    err = capsys.readouterr().err
    assert code == 4
    where = f"{tmp_path / 'host_vars' / 'web1.yml'}:2:18: ansible_timeout"
    assert err.startswith(f"ERROR: {where}: 'nan' is not a timeout")


def test_an_extra_var_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_check(
        tmp_path, "web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n", "-e", "ansible_port=http"
    )
    err = capsys.readouterr().err
    assert code == 4
    assert err.startswith(
        "ERROR: --extra-vars: ansible_port: 'http' is not a port number; "
        "expected a whole number 1-65535 (host 'web1')"
    )


def test_templates_in_connection_vars_render_with_the_hosts_variables(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.yml").write_text(
        "web:\n  vars: {deploy: ops, base_port: 2200}\n  hosts:\n"
        "    web1: {ansible_host: 127.0.0.9, ansible_user: '{{ deploy }}',"
        " ansible_port: '{{ base_port + 2 }}'}\n"
    )
    request = RunRequest(playbook=tmp_path / "site.yml", inventory=[tmp_path / "inv.yml"])
    _, jobs, _ = prepare(request)
    assert (jobs[0].spec.user, jobs[0].spec.port) == ("ops", 2202)


def test_a_template_left_unrendered_is_refused_where_nothing_renders() -> None:
    where = Location("inv.yml", 4, 9, "web.hosts.web1.ansible_user")
    host = Host("web1", vars={"ansible_user": "{{ x }}"}, origins={"ansible_user": where})
    with pytest.raises(InventoryError) as info:
        cv.check_connection_vars(host)
    assert str(info.value) == (
        "inv.yml:4:9: web.hosts.web1.ansible_user: '{{ x }}' holds a template that was not "
        "rendered (host 'web1')"
    )


def test_a_password_is_never_rendered_nor_shown() -> None:
    host = Host("web1", vars={"ansible_become_password": Secret("{{ x }}\0")})
    assert cv.render_connection_vars(host, lambda v: 1 / 0).vars == host.vars
    with pytest.raises(InventoryError) as info:
        cv.check_connection_vars(host)
    assert str(info.value) == (
        "inventory vars of host 'web1': ansible_become_password: holds a NUL character, "
        "which no command can carry (host 'web1')"
    )


@pytest.mark.parametrize("value", [1, 22, "22", 65535])
def test_good_ports(value: object) -> None:
    assert cv.port(value) == int(str(value))


@pytest.mark.parametrize("value", [0, 65536, -1, True, "22a", 2.5, None, [22]])
def test_bad_ports(value: object) -> None:
    with pytest.raises(cv.BadValue):
        cv.port(value)


@pytest.mark.parametrize("value", [0, -5, "inf", float("nan"), "x", True, None])
def test_bad_timeouts(value: object) -> None:
    with pytest.raises(cv.BadValue):
        cv.seconds(value)


def test_other_ansible_vars_are_left_alone() -> None:
    host = Host("web1", vars={"ansible_python_interpreter": "{{ ansible_playbook_python }}"})
    cv.check_connection_vars(host)
    assert cv.render_connection_vars(host, lambda v: 1 / 0) == host


def test_a_nul_in_a_parameter_is_exit_4_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.yml").write_text(
        'hosts: web\nvars: {svc: "ng\\0inx"}\nchecks:\n'
        "  - check: service_running\n    with: {service: '{{ svc }}'}\n"
    )
    (tmp_path / "inv.yml").write_text("web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n")
    code = main(["check", str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml")])
    err = capsys.readouterr().err
    assert code == 4
    assert err == (
        f"ERROR: {tmp_path / 'site.yml'}:5:21: checks[0].with.service: 'ng\\x00inx' holds a "
        "NUL character, which no command can carry (host web1)\nNothing was run.\n"
    )


def test_plugins_folder_that_does_not_exist_is_an_options_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_check(tmp_path, "web:\n  hosts:\n    web1:\n", "--plugins", str(tmp_path / "nope"))
    assert code == 5
    assert capsys.readouterr().err == f"ERROR: --plugins {tmp_path / 'nope'}: no such folder\n"


@pytest.mark.parametrize(
    ("where", "setting", "message"),
    [
        (
            "inventory",
            "web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9, opsfix_state_dir: tx}\n",
            "{inv}:3:55: web.hosts.web1.opsfix_state_dir: 'tx' is not a folder on the host: "
            "expected an absolute path without control characters (host web1)",
        ),
        (
            "playbook",
            "web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n",
            "{book}:2:27: vars.opsfix_backup_dir: in variable 'opsfix_backup_dir': "
            "undefined variable: 'nope' is undefined (host web1)",
        ),
    ],
)
def test_a_bad_host_folder_is_exit_4_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, setting: str, message: str
) -> None:
    book, inv = tmp_path / "site.yml", tmp_path / "inv.yml"
    folder = "opsfix_backup_dir: '{{ nope }}'" if where == "playbook" else "x: 1"
    book.write_text(f"hosts: web\nvars: {{{folder}}}\nchecks:\n  - check: memory\n")
    inv.write_text(setting)
    assert main(["check", str(book), "-i", str(inv)]) == 4
    expected = message.format(inv=inv, book=book)
    assert capsys.readouterr().err == f"ERROR: {expected}\nNothing was run.\n"


def test_a_host_name_used_as_its_address_holds_no_control_characters() -> None:
    with pytest.raises(InventoryError) as info:
        cv.check_connection_vars(Host("web1\nevil"))
    assert str(info.value) == (
        "inventory: host 'web1\\nevil': its name is its address (no ansible_host), and an "
        "address holds no control characters; set ansible_host"
    )
    cv.check_connection_vars(Host("web1\nevil", vars={"ansible_host": "10.0.0.1"}))
