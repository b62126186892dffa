"""listening_ports: real `ss -l{t,u}npH` on a lab host: sshd on its address, nginx on 0.0.0.0
and ::, and (stray) python http.servers on 0.0.0.0:8080 and 127.0.0.1:8081."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from opsfix.checks.listening_ports import ListeningPorts, _is_loopback

from .helpers import judge, make
from .throwaway import run_local


def test_only_ssh_and_http_listen_on_a_lab_host():
    verdict = judge(ListeningPorts, "lab")
    assert verdict.ok and verdict.summary == "only allowed ports listen (22, 80)"
    assert [s.split()[0] for s in verdict.evidence["listening"]] == [
        "0.0.0.0:80/tcp",
        "10.246.0.11:22/tcp",
        "[::]:80/tcp",
    ]


def test_a_stray_server_is_named_with_its_process_and_loopback_is_ignored():
    verdict = judge(ListeningPorts, "stray")
    assert verdict.status == "failed"
    assert verdict.summary == "unexpected ports open: 8080/tcp (allowed: 22, 80)"
    [stray] = verdict.evidence["unexpected"]
    assert stray.startswith("0.0.0.0:8080/tcp python3(pid=")
    assert not any(":8081" in s for s in verdict.evidence["listening"])


def test_the_allow_list_is_the_users():
    assert judge(ListeningPorts, "stray", allowed=[22, 80, 8080]).ok
    verdict = judge(ListeningPorts, "lab", allowed=[22])
    assert verdict.status == "failed" and verdict.summary.startswith(
        "unexpected ports open: 80/tcp"
    )


def test_udp_is_judged_when_asked():
    verdict = judge(ListeningPorts, "lab_udp")
    assert verdict.ok and len(verdict.evidence["listening"]) == 3


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("*", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback(address, loopback):
    assert _is_loopback(address) is loopback


@pytest.mark.parametrize(
    "params", [{"allowed": [0]}, {"allowed": [70000]}, {"protocols": []}, {"protocols": ["sctp"]}]
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        make(ListeningPorts, **params)


def test_real_commands_here():
    verdict = make(ListeningPorts).evaluate(run_local(make(ListeningPorts).commands()))
    assert verdict.status in ("passed", "failed")
