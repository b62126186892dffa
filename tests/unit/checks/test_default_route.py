"""default_route: real `ip -j route show` output from a throwaway network namespace: no
default route, one via a live link, one via a link whose peer is down, an unreachable one,
and an IPv6 one."""

from __future__ import annotations

from opsfix.checks.default_route import DefaultRoute

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_default_route_via_a_live_link_passes():
    verdict = judge(DefaultRoute, "via_lan0")
    assert verdict.status == "passed"
    assert verdict.summary == "default route via 192.0.2.1 dev lan0"
    assert verdict.evidence["connected"] == ["192.0.2.0/24", "198.51.100.0/24"]


def test_another_gateway_or_interface_fails():
    verdict = judge(DefaultRoute, "via_lan0", gateway="192.0.2.254", dev=None)
    assert verdict.status == "failed"
    assert verdict.summary == "no default route via 192.0.2.254"
    assert verdict.evidence["default"] == ["via 192.0.2.1 dev lan0"]
    assert judge(DefaultRoute, "via_lan0", dev="wan0", gateway=None).status == "failed"


def test_no_default_route_fails_and_names_what_can_be_reached():
    verdict = judge(DefaultRoute, "none")
    assert verdict.status == "failed"
    assert verdict.summary == "no default route: only 192.0.2.0/24, 198.51.100.0/24 can be reached"


def test_no_default_route_passes_when_none_is_required_and_says_so():
    verdict = judge(DefaultRoute, "none", required=False)
    assert verdict.status == "passed"
    assert verdict.summary.startswith("no default route, none required")


def test_a_default_route_whose_link_is_down_fails():
    verdict = judge(DefaultRoute, "link_down")
    assert verdict.status == "failed"
    assert verdict.summary.endswith("its link is down")


def test_an_unreachable_default_route_fails():
    verdict = judge(DefaultRoute, "unreachable")
    assert verdict.status == "failed"
    assert verdict.evidence["default"] == ["unreachable"]


def test_ipv6():
    verdict = judge(DefaultRoute, "ipv6")
    assert verdict.status == "passed"
    assert verdict.summary == "default route via 2001:db8::1 dev v6only"


def test_no_ip_is_could_not_tell():
    assert judge(DefaultRoute, "no_ip").status == "error"


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(DefaultRoute, gateway=values[0], dev=values[1])
    assert check.commands() == ["ip -j -4 route show"]
    assert_harmless(check, marker)


def test_real_command_in_dash():
    check = make(DefaultRoute, required=False)
    assert check.evaluate(run_local(check.commands())).status == "passed"
