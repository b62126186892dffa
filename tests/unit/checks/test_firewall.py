"""firewall: real rules read back from throwaway network namespaces by Debian 12's nft
1.0.6 and iptables 1.8.9: a native nftables ruleset (drop policy, sets, ranges, a source
restriction, a jump), rules made by iptables-nft (which nft shows only in part), legacy
iptables rules with a user chain, an empty ruleset, nft as a non-root user, and no tools."""

from __future__ import annotations

from opsfix.checks import _firewall_rules as rules
from opsfix.checks._iptables_rules import from_iptables
from opsfix.checks.firewall import Firewall

from .helpers import judge, load, make
from .throwaway import run_local


def test_nftables_ruleset_judged_port_by_port():
    verdict = judge(Firewall, "nft_rules")
    assert verdict.status == "failed"
    assert verdict.summary == "nftables blocks port 8080, 3306"
    facts = verdict.evidence
    assert facts["allowed"] == [22, 80, 443, 8443]  # 8443 through `jump web`
    assert facts["restricted"] == [9100]  # ip saddr 10.0.0.0/8 only
    assert facts["blocked"] == [8080, 3306]  # a drop rule's range; the drop policy
    assert facts["input_policy"] == {"inet filter input": "drop"}
    assert facts["rules"]["3306"] == "inet filter input policy drop"


def test_web_ports_let_in_passes():
    verdict = judge(Firewall, "nft_rules", allow=[22, 80])
    assert verdict.status == "passed"
    assert verdict.summary == "nftables lets in 22, 80"


def test_no_firewall_is_a_state_of_its_own():
    verdict = judge(Firewall, "nft_none")
    assert verdict.status == "passed"
    assert verdict.summary == "no firewall: nothing filters incoming traffic"
    assert verdict.evidence == {"firewall": "none"}
    assert judge(Firewall, "nft_none", required=True).status == "failed"


def test_rules_nft_cannot_show_in_full_are_could_not_tell():
    # iptables-nft's multiport match is opaque to nft: 80 may or may not get in
    verdict = judge(Firewall, "nft_iptables_made")
    assert verdict.status == "error"
    assert verdict.evidence["allowed"] == [22] and verdict.evidence["unclear"] == [80]


def test_iptables_save_with_a_user_chain():
    verdict = judge(Firewall, "iptables_rules")
    assert verdict.status == "failed"
    assert verdict.summary == "iptables blocks port 8080"  # REJECT counts as blocked
    facts = verdict.evidence
    assert facts["allowed"] == [22, 80, 443] and facts["restricted"] == [3306]
    assert judge(Firewall, "iptables_rules", allow=[22, 80]).status == "passed"


def test_not_root_is_could_not_tell():
    verdict = judge(Firewall, "nft_not_root")
    assert verdict.status == "error"
    assert verdict.summary == "cannot read the nftables rules (become?)"


def test_no_tools_is_could_not_tell():
    verdict = judge(Firewall, "no_tools")
    assert verdict.status == "error"
    assert "neither nft nor iptables-save" in verdict.summary


def test_loopback_and_established_rules_never_let_a_new_connection_in():
    _, results = load("firewall", "iptables_rules")
    chains = from_iptables(results[1].stdout)
    first_two = chains["INPUT"].rules[:2]
    assert [r.covers(22) for r in first_two] == [False, False]


def test_unreadable_rules_make_the_answer_unclear_never_allowed():
    chains = {
        "INPUT": rules.Chain(
            "drop", (rules.Rule("-A INPUT -m recent -j ACCEPT", "accept", conditions="unknown"),)
        ),
    }
    assert rules.judge(22, chains)[0] == "unclear"
    chains["INPUT"] = rules.Chain("accept", (rules.Rule("x", "drop", conditions="unknown"),))
    assert rules.judge(22, chains)[0] == "unclear"


def test_a_jump_loop_is_unclear_not_endless():
    loop = rules.Chain(None, (rules.Rule("-A a -j a", "jump a"),))
    chains = {"a": loop, "INPUT": rules.Chain("drop", (rules.Rule("-A INPUT -j a", "jump a"),))}
    assert rules.judge(22, chains)[0] == "unclear"


def test_commands_take_no_values():
    assert make(Firewall, allow=[22]).commands() == make(Firewall).commands()


def test_real_commands_in_dash():
    check = make(Firewall, allow=[22])
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status in ("passed", "failed", "error")
    assert verdict.summary
