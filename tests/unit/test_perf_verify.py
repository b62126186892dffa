"""Verify runs the first host's commands on the other hosts ahead of time, in order, and
every host still gets the results of its own commands."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from opsfix.transport.base import CommandResult
from opsfix.transport.spec import ConnectionSpec
from opsfix.verify.lookahead import Lookahead
from opsfix.verify.suite import VerifyTarget, run_suites

from .localsh import Recording

SUITE = """
def test_first(host):
    assert host.run("echo one").stdout == "one\\n"

def test_own_word(host, opsfix_vars):
    word = opsfix_vars["word"]
    assert host.run("echo " + word).stdout == word + "\\n"

def test_last(host):
    assert host.run("echo two").stdout == "two\\n"
"""


def targets(*names: str, same_word: bool = False) -> list[VerifyTarget]:
    found = []
    for name in names:
        conn = Recording(name)
        spec = ConnectionSpec(host=name, hostname="127.0.0.1", connection="ssh")
        word = {"word": "same" if same_word else name}
        found.append(VerifyTarget(name, conn, spec, word))  # type: ignore[arg-type]
    return found


def scripts(target: VerifyTarget) -> list[str]:
    return [s for s, _ in target.connection.calls]  # type: ignore[attr-defined]


def test_every_host_passes_and_runs_each_command_once(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    hosts = targets("web1", "web2", "web3", same_word=True)
    results = run_suites([suite], hosts)
    for name, outcomes in results.items():
        assert [o.outcome for o in outcomes] == ["passed"] * 3, (name, outcomes)
    leader = scripts(hosts[0])
    assert len(leader) == len(set(leader)) and "echo same" in leader
    for follower in hosts[1:]:
        [(script, thread)] = follower.connection.calls  # type: ignore[attr-defined]
        assert thread.startswith("verify-")  # one round trip, ahead of its tests
        assert all(command in script for command in leader)


def test_a_host_whose_commands_differ_runs_its_own_live(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    hosts = targets("web1", "web2")
    results = run_suites([suite], hosts)
    assert all(o.outcome == "passed" for o in results["web2"]), results["web2"]
    ahead, live = scripts(hosts[1])
    assert live == "echo web2"  # its own command, run when its test asked
    assert "echo two" in ahead and "echo web1" in ahead  # web1's word ran, unused


def test_errors_come_back_and_a_failed_batch_runs_again_live() -> None:
    class Fake:
        def __init__(self, name: str) -> None:
            self.host = name
            self.seen: list[str] = []

        def run(self, script: str, become: bool = False, timeout: float = 0) -> CommandResult:
            self.seen.append(script)
            if "boom" in script:
                raise TimeoutError(f"{self.host}: boom")
            return CommandResult(script, 0, f"{self.host}:{script}")

    a, b = Fake("a"), Fake("b")
    spec = ConnectionSpec(host="x", hostname="x")
    lookahead = Lookahead([VerifyTarget("a", a, spec), VerifyTarget("b", b, spec)])  # type: ignore[arg-type]
    try:
        assert lookahead.run("a", "one", False).stdout == "a:one"
        with contextlib.suppress(TimeoutError):
            lookahead.run("a", "boom", False)
        assert lookahead.run("b", "one", False).stdout == "b:one"  # its batch failed: live
        with pytest.raises(TimeoutError, match="b: boom"):
            lookahead.run("b", "boom", False)
    finally:
        lookahead.close()
    assert b.seen[1:] == ["one", "boom"]
    assert "one" in b.seen[0] and "boom" in b.seen[0]  # the batch
