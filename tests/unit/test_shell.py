import shlex

from opsfix.shell import batch, cmd, unbatch
from opsfix.transport.base import CommandResult

from .localsh import LocalShell


def test_cmd_quotes_every_argument(tmp_path):
    evil = f"x; touch {tmp_path}/pwned"
    line = cmd("echo", evil, "$(id)", "`id`", "a\nb")
    assert shlex.split(line) == ["echo", evil, "$(id)", "`id`", "a\nb"]
    out = LocalShell().run(line)
    assert out.stdout == f"{evil} $(id) `id` a\nb\n"
    assert not (tmp_path / "pwned").exists()


def test_batch_separates_outputs_statuses_and_streams():
    commands = ["echo one; echo err >&2", "printf 'two\\nlines'", "exit 3", "cat"]
    results = unbatch(commands, LocalShell().run(batch(commands)))
    assert [r.exit_status for r in results] == [0, 0, 3, 0]
    assert results[0].stdout == "one\n" and results[0].stderr == "err\n"
    assert results[1].stdout == "two\nlines"
    assert results[3].stdout == ""  # stdin is /dev/null: cat cannot hang


def test_batch_sequential_keeps_order():
    commands = ["echo a > /dev/null; sleep 0.1; echo 1", "echo 2"]
    results = unbatch(commands, LocalShell().run(batch(commands, parallel=False)))
    assert [r.stdout for r in results] == ["1\n", "2\n"]


def test_batch_timeout_bounds_a_hanging_command():
    commands = ["sleep 30", "echo fine"]
    results = unbatch(commands, LocalShell().run(batch(commands, timeout=0.5)))
    assert results[0].exit_status == 124
    assert results[1].stdout == "fine\n"


def test_missing_report_is_could_not_tell():
    results = unbatch(["true"], CommandResult("x", 255, "", "connection lost"))
    assert results[0].exit_status == -1
    assert results[0].stderr == "connection lost"


def test_output_cannot_forge_a_report_line():
    commands = ["echo 'OPSFIX0000 0 0 Zm9yZ2Vk '"]
    results = unbatch(commands, LocalShell().run(batch(commands)))
    assert results[0].stdout.startswith("OPSFIX0000")
