"""dns_resolves: real resolver files and `getent -s files` answers from the capture machine,
and from a private mount namespace whose resolv.conf names no nameserver and whose
nsswitch.conf asks no DNS. Lookups read /etc/hosts only: no query leaves the machine."""

from __future__ import annotations

import shlex

from opsfix.checks.dns_resolves import DnsResolves

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_names_from_hosts_and_a_nameserver_pass():
    verdict = judge(DnsResolves, "this_machine")
    assert verdict.status == "passed"
    assert verdict.evidence["resolved"] == {"localhost": "127.0.0.1", "vm": "127.0.0.1"}
    assert verdict.evidence["nameservers"] == ["10.255.255.53"]
    assert verdict.evidence["hosts_sources"] == ["files", "dns"]


def test_a_name_missing_from_hosts_fails():
    verdict = judge(DnsResolves, "unknown_name")
    assert verdict.status == "failed"
    assert verdict.summary == "db.internal is not in /etc/hosts"


def test_no_nameserver_and_no_dns_source_fail():
    verdict = judge(DnsResolves, "no_dns")
    assert verdict.status == "failed"
    assert "/etc/resolv.conf names no nameserver" in verdict.summary
    assert "(files myhostname) asks no DNS" in verdict.summary
    assert judge(DnsResolves, "no_dns", nameserver_required=False).status == "passed"


def test_own_name_can_be_left_out():
    verdict = judge(DnsResolves, "this_machine", own_name=False)
    assert verdict.evidence["resolved"] == {"localhost": "127.0.0.1"}


def test_no_getent_is_could_not_tell():
    verdict = judge(DnsResolves, "no_getent")
    assert verdict.status == "error"
    assert "getent: not found" in verdict.evidence["stderr"]


def test_lookups_read_hosts_files_only():
    for command in make(DnsResolves, names=["example.com"]).commands():
        if "getent" in command:
            assert "getent -s files hosts --" in command


def test_hostile_names_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(DnsResolves, names=values)
    assert_harmless(check, marker, *values)
    assert shlex.split(check.commands()[3])[-1] == values[0]


def test_real_commands_in_dash():
    check = make(DnsResolves, names=["localhost"], nameserver_required=False)
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status == "passed", verdict
