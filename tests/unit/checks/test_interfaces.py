"""interfaces: real `ip -j addr show` output from throwaway network namespaces (veth pairs:
one with a carrier and an IPv4 address, one whose peer is down, one set down, one with an
IPv6 address only) and from the capture machine itself, whose lab bridges have ports."""

from __future__ import annotations

import pytest

from opsfix.checks.interfaces import Interfaces

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_lab_like_host_passes():
    verdict = judge(Interfaces, "lab_like")
    assert verdict.status == "passed"
    assert verdict.summary == "up with addresses: lo, lan0"
    assert "lan0 up 192.0.2.10/24" in verdict.evidence["interfaces"]


def test_every_interface_set_up_is_judged_by_default():
    verdict = judge(Interfaces, "broken")
    assert verdict.status == "failed"
    assert verdict.summary == "wan0: no carrier; v6only: no IPv4 address"
    assert verdict.evidence["no_carrier"] == ["wan0"]
    assert verdict.evidence["no_address"] == ["v6only"]
    assert "eth9" not in verdict.summary  # set down by an admin: shown, not judged
    assert "eth9 down 203.0.113.9/24" in verdict.evidence["interfaces"]


def test_named_interfaces_must_exist_and_be_up():
    verdict = judge(Interfaces, "named")
    assert verdict.status == "failed"
    assert verdict.evidence["missing"] == ["eth1"] and verdict.evidence["down"] == ["eth9"]


@pytest.mark.parametrize(
    "family, status", [("inet6", "passed"), ("any", "passed"), ("inet", "failed")]
)
def test_family(family, status):
    assert judge(Interfaces, "ipv6", family=family).status == status


def test_link_local_addresses_do_not_count():
    # lan0 has only fe80:: for IPv6
    verdict = judge(Interfaces, "ipv6", names=["lan0"], family="inet6")
    assert verdict.status == "failed"
    assert verdict.summary == "lan0: no IPv6 address"


def test_bridge_ports_are_not_judged_but_a_bridge_without_carrier_is():
    # the capture machine: lab bridges, their veth ports (no addresses), an idle lab bridge
    verdict = judge(Interfaces, "this_machine")
    assert verdict.status == "failed"
    assert all(name.endswith("-br") for name in verdict.evidence["no_carrier"])
    assert "no_address" not in verdict.evidence
    assert judge(Interfaces, "this_machine", names=["lo", "eth0"]).status == "passed"


def test_no_ip_is_could_not_tell():
    verdict = judge(Interfaces, "no_ip")
    assert verdict.status == "error"
    assert "ip: not found" in verdict.evidence["stderr"]


def test_hostile_names_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(Interfaces, names=values)
    assert check.commands() == ["ip -j addr show"]
    assert_harmless(check, marker)


def test_real_command_in_dash():
    check = make(Interfaces, names=["lo"], family="any")
    assert check.evaluate(run_local(check.commands())).status == "passed"
