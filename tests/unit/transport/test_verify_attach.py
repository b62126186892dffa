"""The verify runner's bookkeeping: host ids, vars shown to tests, outcome mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.errors import InputError
from opsfix.secret import Secret
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec
from opsfix.verify.suite import MASK, VerifyTarget, _hostspec, _without_id, public_vars, run_suites


def target(name: str, connection: str = "ssh", **kw: object) -> VerifyTarget:
    spec = ConnectionSpec(host=name, hostname="127.0.0.1", connection=connection, **kw)  # type: ignore[arg-type]
    return VerifyTarget(name, LocalConnection(spec), spec, {})


def test_public_vars_drop_passwords_and_mask_nested_secrets() -> None:
    shown = public_vars(
        {
            "expected_content": "hello",
            "ansible_become_password": "plain-but-still-a-password",
            "ansible_become_pass": "x",
            "api_token": Secret("t"),
            "nested": {"db": {"password": Secret("p"), "port": 5432}, "list": [Secret("q"), 1]},
        }
    )
    assert shown == {
        "expected_content": "hello",
        "nested": {"db": {"password": MASK, "port": 5432}, "list": [MASK, 1]},
    }


def named(t: VerifyTarget) -> tuple[str, ConnectionSpec]:
    return t.name, t.spec


def test_hosts_get_distinct_ids_from_their_inventory_names() -> None:
    taken: set[str] = set()
    ids = []
    for name in ("web1", "web 1", "web-1", "db/2"):
        host_id, spec = _hostspec(*named(target(name)), taken)
        taken.add(host_id)
        ids.append(host_id)
        assert spec.startswith(host_id)
    assert ids == ["paramiko://web1", "paramiko://web-1", "paramiko://web-1-2", "paramiko://db-2"]


def test_hostspec_carries_become() -> None:
    _, spec = _hostspec(*named(target("web1", become=True, become_user="www-data")), set())
    assert spec == "paramiko://web1?sudo=true&sudo_user=www-data"
    assert _hostspec(*named(target("ctl", "local")), set()) == ("local", "local://")


def test_only_one_local_host_per_run() -> None:
    with pytest.raises(InputError, match="only one local host"):
        _hostspec(*named(target("ctl2", "local")), {"local"})


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("t.py::test_a[paramiko://web1]", "t.py::test_a"),
        ("t.py::test_a[paramiko://web1-80]", "t.py::test_a[80]"),
        ("t.py::test_a[x-paramiko://web1]", "t.py::test_a[x]"),
        ("t.py::test_a[x-paramiko://web1-y]", "t.py::test_a[x-y]"),
        ("t.py::test_a[local-1]", "t.py::test_a[1]"),
    ],
)
def test_test_names_lose_the_host_id(nodeid: str, expected: str) -> None:
    host_id = "local" if "local" in nodeid else "paramiko://web1"
    assert _without_id(nodeid, host_id) == expected


def test_missing_suite_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="verify suite not found"):
        run_suites([tmp_path / "nope.py"], [target("ctl", "local")])


def test_a_broken_suite_is_an_error_for_every_host(tmp_path: Path) -> None:
    suite = tmp_path / "test_broken.py"
    suite.write_text("def test_x(host:\n")
    results = run_suites([suite], [target("ctl", "local")])
    [outcome] = results["ctl"]
    assert outcome.outcome == "error" and "SyntaxError" in outcome.message
