"""port_listening: real `ss -ltnpH` output with a throwaway nginx on 127.0.0.1:18080 and
[::1]:18080, a Python http.server on 127.0.0.1:18081, and the machine's own 0.0.0.0:2024."""

from __future__ import annotations

import pytest

from opsfix.checks.port_listening import PortListening, _covers

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import free_port, run_local


def test_nginx_on_its_port_passes():
    verdict = judge(PortListening, "root")
    assert verdict.status == "passed"
    assert verdict.evidence["addresses"] == ["127.0.0.1", "::1"]
    assert [o.split("(")[0] for o in verdict.evidence["owners"]] == ["nginx", "nginx"]


def test_foreign_owner_is_named():
    verdict = judge(PortListening, "root", port=18081)
    assert verdict.status == "failed"
    assert verdict.summary == "port 18081 is held by python, not nginx"
    assert verdict.evidence["owners"][0].startswith("python(pid=")


def test_nothing_listening_fails():
    verdict = judge(PortListening, "root", port=18089)
    assert verdict.status == "failed"
    assert verdict.evidence == {"port": 18089, "addresses": []}


def test_any_owner_will_do_without_process():
    assert judge(PortListening, "root", port=18081, process=None).status == "passed"


@pytest.mark.parametrize(
    "address, status",
    [("127.0.0.1", "passed"), ("::1", "passed"), ("[::1]", "passed"), ("0.0.0.0", "failed")],
)
def test_address(address, status):
    verdict = judge(PortListening, "root", address=address)
    assert verdict.status == status
    if status == "failed":
        assert verdict.summary == "nothing listens on port 18080 on 0.0.0.0"


def test_owner_hidden_from_a_non_root_user_is_could_not_tell():
    # as nobody, ss shows nginx's workers (they run as nobody) but not python's socket
    assert judge(PortListening, "not_root").status == "passed"
    verdict = judge(PortListening, "not_root", port=18081)
    assert verdict.status == "error"
    assert "become" in verdict.summary


def test_a_socket_ss_shows_no_owner_for_even_as_root():
    assert judge(PortListening, "root", port=2024, process="process_api").status == "error"
    assert judge(PortListening, "root", port=2024, address="0.0.0.0", process=None).ok


def test_no_ss_is_could_not_tell():
    verdict = judge(PortListening, "no_ss")
    assert verdict.status == "error"
    assert "ss: not found" in verdict.evidence["stderr"]


@pytest.mark.parametrize(
    "listening, wanted, covered",
    [
        ("0.0.0.0", "127.0.0.1", True),
        ("0.0.0.0", "::1", False),
        ("::", "::1", True),
        ("*", "10.0.0.5", True),
        ("*", "0.0.0.0", True),
        ("0.0.0.0", "*", False),
        ("127.0.0.1", "0.0.0.0", False),
        ("127.0.0.1", "localhost", False),
    ],
)
def test_a_wildcard_socket_covers_its_family(listening, wanted, covered):
    assert _covers(listening, wanted) is covered


def test_port_range_and_protocol_are_checked():
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        make(PortListening, port=70000)
    with pytest.raises(ValueError, match="'tcp'"):
        make(PortListening, port=53, protocol="udp")


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(PortListening, port=80, process=values[0], address=values[1])
    assert check.commands() == ["ss -ltnpH"]
    assert_harmless(check, marker)


def test_real_commands_in_dash(live_nginx):
    check = make(PortListening, port=live_nginx.port, process="nginx", address="127.0.0.1")
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status == "passed"
    assert f"nginx(pid={live_nginx.master_pid()})" in verdict.evidence["owners"]
    idle = make(PortListening, port=free_port())
    assert idle.evaluate(run_local(idle.commands())).status == "failed"
