"""Commands remembered from the last verify run start on each host before its tests ask."""

from __future__ import annotations

import os
from pathlib import Path

from opsfix.transport.spec import ConnectionSpec
from opsfix.verify.lookahead import MEMO_SUITES, CommandMemo, Lookahead, VerifyTarget, suite_key
from opsfix.verify.suite import run_suites

from ..localsh import Recording

SUITE = """
def test_first(host):
    assert host.run("echo one").stdout == "one\\n"

def test_own_word(host, opsfix_vars):
    word = opsfix_vars["word"]
    assert host.run("echo " + word).stdout == word + "\\n"
"""


def target(name: str, word: str) -> VerifyTarget:
    spec = ConnectionSpec(host=name, hostname="127.0.0.1", connection="ssh")
    return VerifyTarget(name, Recording(name), spec, {"word": word})  # type: ignore[arg-type]


def calls(t: VerifyTarget) -> list[tuple[str, str]]:
    return t.connection.calls  # type: ignore[attr-defined,no-any-return]


def test_remembered_commands_run_on_each_host_as_it_is_added(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    memo = CommandMemo(tmp_path / "state" / "memo.json", [suite])
    hosts = [target("web1", "same"), target("web2", "same"), target("web3", "other")]

    first = Lookahead()
    run_suites([suite], hosts, lookahead=first)  # learns the leader's commands
    memo.save(first.noted)
    assert memo.load() == [("echo one", False), ("echo same", False)]
    for host in hosts:
        calls(host).clear()

    ahead = Lookahead(ahead=memo.load())
    for host in hosts:
        ahead.add(host)  # the engine does this as each host's run ends
    results = run_suites([suite], hosts, lookahead=ahead)

    assert all(o.outcome == "passed" for outs in results.values() for o in outs), results
    for host in hosts[:2]:  # the leader too: one batch, sent before any test ran
        [(script, thread)] = calls(host)
        assert thread.startswith("verify-") and "echo one" in script and "echo same" in script
    batch, live = calls(hosts[2])
    assert batch[1].startswith("verify-") and live == ("echo other", "verify")  # its tests
    assert ahead.noted == memo.load()


def test_the_memo_follows_the_suites_content_and_never_holds_a_secret(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    path = tmp_path / "memo.json"
    memo = CommandMemo(path, [suite])
    memo.save([("curl -u admin:hunter2 http://x/", False)], unless=["hunter2"])
    assert not path.exists()
    memo.save([("nginx -t", True)])
    assert memo.load() == [("nginx -t", True)]
    assert path.stat().st_mode & 0o777 == 0o600

    suite.write_text(SUITE + "\n# changed\n")
    assert CommandMemo(path, [suite]).load() == []  # another suite now
    assert suite_key([suite]) != memo.key


def test_a_memo_others_could_write_is_ignored(tmp_path: Path) -> None:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    memo = CommandMemo(tmp_path / "memo.json", [suite])
    memo.save([("nginx -t", True)])
    os.chmod(memo.path, 0o666)
    assert memo.load() == []


def test_the_memo_keeps_only_the_latest_suites(tmp_path: Path) -> None:
    path = tmp_path / "memo.json"
    for n in range(MEMO_SUITES + 3):
        suite = tmp_path / f"test_{n}.py"
        suite.write_text(f"# suite {n}\n")
        CommandMemo(path, [suite]).save([(f"echo {n}", False)])
    assert CommandMemo(path, [tmp_path / "test_0.py"]).load() == []
    assert CommandMemo(path, [suite]).load() == [(f"echo {n}", False)]


def test_each_hosts_tests_run_as_soon_as_it_is_ready(tmp_path: Path) -> None:
    """pytest starts with the first ready host; a host not ready yet holds nobody else up."""
    import time

    from opsfix.verify.suite import HostInfo, SuiteRun

    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    web1, web2, web3 = target("web1", "one"), target("web2", "two"), target("web3", "three")
    hosts = [HostInfo(t.name, t.spec, t.vars) for t in (web1, web2, web3)]
    run = SuiteRun([suite], hosts)

    run.ready(web2)
    deadline = time.monotonic() + 20
    # web2's first test runs (its last waits to learn which test comes next); web1, sorted
    # first, is not ready
    while not calls(web2):
        assert time.monotonic() < deadline, calls(web2)
        time.sleep(0.01)
    assert calls(web1) == []
    run.ready(web1)
    results = run.finish()  # web3 never became ready: not verified, no outcomes

    assert sorted(results) == ["web1", "web2"]
    assert all(o.outcome == "passed" for outs in results.values() for o in outs), results
    assert calls(web3) == []


def test_results_that_rode_with_the_checks_are_not_asked_for_again(tmp_path: Path) -> None:
    from opsfix.transport.base import CommandResult

    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    remembered = [("echo one", False), ("echo same", False)]
    rode, cut = target("web1", "same"), target("web2", "same")

    ahead = Lookahead(ahead=remembered)
    ahead.add(rode, {key: CommandResult(key[0], 0, key[0][5:] + "\n", "") for key in remembered})
    ahead.add(cut, {("echo one", False): CommandResult("echo one", 0, "one\n", ""),
                    ("echo same", False): CommandResult("echo same", -1, "", "")})  # fmt: skip
    results = run_suites([suite], [rode, cut], lookahead=ahead)

    assert all(o.outcome == "passed" for outs in results.values() for o in outs), results
    assert calls(rode) == []  # every answer was there already
    [(script, thread)] = calls(cut)  # what was cut short is sent again, ahead of its test
    assert thread.startswith("verify-") and script == "echo same"
