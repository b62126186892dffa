"""batch() starts few processes on the host, and unbatch() still never mistakes a broken or
imitated report for a result. No timing here: speed is measured by bench/run.py."""

import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsfix.shell import batch, cmd, is_program_call, quote, unbatch
from opsfix.transport.base import CommandResult

from .localsh import LocalShell


def run(script: str, path: str | None = None) -> CommandResult:
    env = {**os.environ, "PATH": path} if path else None
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env)
    return CommandResult(script, done.returncode, done.stdout, done.stderr)


def only(tmp_path, *tools: str) -> str:
    """A PATH that holds just these programs."""
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (tmp_path / tool).symlink_to(found)
    return str(tmp_path)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("nginx -t", True),
        (cmd("df", "-P", "--", "/var/log dir"), True),
        ("/usr/sbin/nginx -t", True),
        ("echo hi", False),  # a builtin behaves differently from /bin/echo
        ("exit 3", False),
        ("cd /", False),
        ("if", False),
        ("FOO=1 env", False),
        ("a | b", False),
        ("ls *", False),
        ("ls $HOME", False),
        ("ls ~", False),
        ("ls  -l", False),  # two spaces: not how cmd() writes it
        ("ls 'unclosed", False),
        ("", False),
    ],
)
def test_program_calls_are_recognised(command, expected):
    assert is_program_call(command) is expected


def test_one_after_another_needs_no_helper_programs(tmp_path):
    """No mktemp, cat, base64, tr or rm: the host starts only the commands themselves."""
    path = only(tmp_path, "sh", "timeout", "printf")
    commands = ["printf 'a\\nb'", "echo err >&2; exit 4", "printf x", cmd("printf", "%s", "q r")]
    for timeout in (None, 5):
        results = unbatch(commands, run(batch(commands, parallel=False, timeout=timeout), path))
        assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
            (0, "a\nb", ""),
            (4, "", "err\n"),
            (0, "x", ""),
            (0, "q r", ""),
        ]


def test_outputs_keep_their_exact_bytes_and_final_newlines():
    commands = ["printf ''", "printf '\\n'", "printf 'a\\n\\n'", "printf 'a'", "seq 1 20000"]
    for parallel in (True, False):
        results = unbatch(commands, LocalShell().run(batch(commands, parallel=parallel)))
        assert [r.stdout for r in results[:4]] == ["", "\n", "a\n\n", "a"]
        assert results[4].stdout == "".join(f"{i}\n" for i in range(1, 20001))


def test_a_program_call_under_timeout_reports_a_missing_program():
    results = unbatch(["no-such-program-x -t"], run(batch(["no-such-program-x -t"], timeout=5)))
    assert results[0].exit_status == 127
    assert "no-such-program-x" in results[0].stderr


def test_a_cut_off_report_is_could_not_tell():
    commands = ["echo a", "exit 10"]
    whole = LocalShell().run(batch(commands, parallel=False))
    assert [r.exit_status for r in unbatch(commands, whole)] == [0, 10]
    cut_at_status = whole.stdout.index(" 1 10\n") + len(" 1 1")  # "10" arrives as "1"
    for stdout in (whole.stdout[:cut_at_status], whole.stdout[: len(whole.stdout) // 3]):
        cut = CommandResult("x", -1, stdout, "connection lost")
        results = unbatch(commands, cut)
        assert results[1].exit_status == -1
        assert results[1].stderr == "connection lost"


def test_output_that_imitates_this_scripts_markers_is_could_not_tell():
    """Even knowing the tag, output cannot forge a status: the command becomes -1."""
    script = batch(["echo a", "echo b"], parallel=False)
    tag = script.split('"')[1].split(" ")[0]
    script = script.replace("echo a\n", f"printf 'x\\n\\n{tag} 0 0\\n'\n", 1)
    results = unbatch(["a", "b"], LocalShell().run(script))
    assert results[0].exit_status == -1
    assert results[1].stdout == "b\n"


def test_the_scripts_own_errors_are_the_reason_when_nothing_reported():
    result = CommandResult("x", 1, "", "sudo: a password is required\n")
    assert unbatch(["true"], result)[0].stderr == "sudo: a password is required"


def test_no_commands():
    assert unbatch([], LocalShell().run(batch([]))) == []
    assert unbatch([], LocalShell().run(batch([], parallel=False))) == []


def _program_call_by_shlex(command: str) -> bool:
    """The plain definition: shlex reads the words, and cmd() writes them back the same."""
    import shlex

    from opsfix.shell import _SHELL_WORDS

    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words or cmd(*words) != command:
        return False
    return words[0] not in _SHELL_WORDS and "=" not in words[0]


def _joined(pieces: list[str], most: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=most).map("".join)


_PIECES = ["a", "-t", "/x", "", " ", "  ", "'", '"', "\\", "$", "|", ";", "\n", "=", "é", "*"]


@settings(max_examples=600, deadline=None)
@given(st.lists(_joined(_PIECES, 4), min_size=1, max_size=4))
def test_program_call_agrees_with_shlex_on_commands_cmd_writes(words):
    command = cmd(*words)
    assert is_program_call(command) is _program_call_by_shlex(command)


_TOKENS = st.one_of(
    st.sampled_from(["nginx", "-t", "/x", "echo", "FOO=1", "'a'", "''", "'-t'", "a'b", '"a"']),
    _joined(_PIECES, 4).map(quote),
    _joined(_PIECES, 4),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=4), st.sampled_from([" ", "  ", "\t", ""]))
def test_program_call_agrees_with_shlex_on_any_text(tokens, separator):
    command = separator.join(tokens)
    assert is_program_call(command) is _program_call_by_shlex(command)
