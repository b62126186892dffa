"""A command's output is kept up to a limit, the rest read and dropped; a check never
judges a cut text (it could not tell)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from opsfix.engine.hostrun import judge
from opsfix.errors import OptionsError
from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import OUTPUT_CUT, batch, unbatch
from opsfix.transport.base import BoundedOutput, CommandResult
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.settings import output_limit_bytes
from opsfix.transport.spec import DEFAULT_OUTPUT_LIMIT, ConnectionSpec

LIMIT = 64 << 10


def local(limit: int = LIMIT) -> LocalConnection:
    return LocalConnection(
        ConnectionSpec("here", "localhost", connection="local", output_limit=limit)
    )


def test_a_bounded_stream_keeps_the_first_bytes_and_counts_the_rest() -> None:
    out = BoundedOutput(10)
    for chunk in (b"abcd", b"efghijkl", b"mnop"):
        out.add(chunk)
    assert out.text() == "abcdefghij" and out.kept == 10 and out.dropped == 6
    assert out.truncated
    exact = BoundedOutput(4)
    exact.add(b"abcd")
    assert not exact.truncated


def test_a_chatty_local_command_is_cut_and_says_so() -> None:
    result = local().run("head -c 20000000 /dev/zero | tr '\\0' x; echo done >&2")
    assert result.exit_status == 0 and result.truncated
    assert result.stdout == "x" * LIMIT  # the first bytes, exactly the limit
    assert result.stderr == "done\n"  # the other stream keeps its own limit


def test_a_quiet_command_is_not_cut() -> None:
    result = local().run("printf hello")
    assert (result.stdout, result.truncated) == ("hello", False)


def test_a_cut_batch_keeps_whole_reports_and_cuts_the_rest_as_could_not_tell() -> None:
    commands = ["echo before", "head -c 1000000 /dev/zero | tr '\\0' x", "echo after"]
    result = local().run(batch(commands, parallel=False))
    before, chatty, after = unbatch(commands, result)
    assert (before.exit_status, before.stdout, before.truncated) == (0, "before\n", False)
    for cut in (chatty, after):
        assert (cut.exit_status, cut.stderr, cut.truncated) == (-1, OUTPUT_CUT, True)


class _Naive(Check[Params]):
    """Healthy whenever its command succeeded: what a cut text must never reach."""

    name = "naive"

    def commands(self) -> list[str]:
        return ["cat /var/log/big"]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        return CheckResult.passed("fine")


def test_a_check_never_judges_a_cut_result() -> None:
    check = _Naive(Params())
    outcome = judge(check, [CommandResult("cat /var/log/big", 0, "x" * 10, truncated=True)])
    assert outcome.status == "error"
    assert outcome.summary == f"could not tell: {OUTPUT_CUT}"
    assert judge(check, [CommandResult("cat /var/log/big", 0, "x")]).status == "passed"


@pytest.mark.parametrize(
    ("given", "env", "expected"),
    [
        (None, {}, DEFAULT_OUTPUT_LIMIT),
        (None, {"OPSFIX_OUTPUT_LIMIT": "16M"}, 16 << 20),
        ("512k", {"OPSFIX_OUTPUT_LIMIT": "16M"}, 512 << 10),
        ("100MiB", {}, 100 << 20),
        ("65536", {}, 65536),
        ("8 MB", {}, 8 << 20),
    ],
)
def test_the_limit_comes_from_the_option_then_the_environment(
    given: str | None, env: dict[str, str], expected: int
) -> None:
    assert output_limit_bytes(given, env) == expected


@pytest.mark.parametrize(
    ("given", "env", "named"),
    [
        ("lots", {}, "--output-limit 'lots'"),
        ("1k", {}, "--output-limit '1k'"),
        ("1G", {}, "--output-limit '1G'"),
        (None, {"OPSFIX_OUTPUT_LIMIT": "-4M"}, "OPSFIX_OUTPUT_LIMIT '-4M'"),
    ],
)
def test_a_bad_limit_is_an_options_error_naming_it(
    given: str | None, env: dict[str, str], named: str
) -> None:
    with pytest.raises(OptionsError, match=re.escape(named)):
        output_limit_bytes(given, env)


def test_a_verify_command_whose_output_was_cut_errors_its_test() -> None:
    from opsfix.verify.suite import OutputCut, _routed_run

    class Backend:
        def get_command(self, command: str, *args: str) -> str:
            return command

        def result(self, *args: object) -> tuple[object, ...]:
            return args

    class Ahead:
        def __init__(self, result: CommandResult) -> None:
            self.result = result

        def run(self, host: str, script: str, become: bool) -> CommandResult:
            return self.result

    cut = CommandResult("cat big", 0, "x" * 10, truncated=True)
    with pytest.raises(OutputCut, match="web1: a command printed more than the output limit"):
        _routed_run(Backend(), "web1", Ahead(cut))("cat big")  # type: ignore[arg-type]
    whole = CommandResult("cat small", 0, "x")
    assert _routed_run(Backend(), "web1", Ahead(whole))("cat small")[0] == 0  # type: ignore[arg-type]
