"""How a command line is built for become, and how sudo's refusals are recognised."""

from __future__ import annotations

import shlex
import subprocess
import time

import pytest

from opsfix.secret import Secret
from opsfix.transport.become import SECURE_PATH, prompt_answerer, terminal_result
from opsfix.transport.settings import (
    BECOME_FAILURES,
    SUDO_NEEDS_PASSWORD,
    SUDO_WRONG_PASSWORD,
    command_result,
    invocation,
    script_file_mode,
    shell_command,
    sudo_failure,
)
from opsfix.transport.spec import ConnectionSpec

SCRIPT = """printf '%s|' "a b" 'it'"'"'s' "$HOME" >/dev/null; echo "one two"; echo err >&2"""


def spec(**kw: object) -> ConnectionSpec:
    return ConnectionSpec(host="web1", hostname="192.0.2.1", **kw)  # type: ignore[arg-type]


def run_locally(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, capture_output=True, text=True)


def test_without_become_the_script_runs_through_sh() -> None:
    command = shell_command(SCRIPT, login_user="deploy", spec=spec(), become=False)
    assert shlex.split(command)[:2] == ["/bin/sh", "-c"]
    done = run_locally(command)
    assert (done.stdout, done.stderr, done.returncode) == ("one two\n", "err\n", 0)


def test_become_to_the_login_user_needs_no_sudo() -> None:
    s = spec(become=True, become_user="root", become_password=Secret("pw"))
    command = shell_command("id", login_user="root", spec=s, become=True)
    assert "sudo" not in command
    how = invocation("id", login_user="root", spec=s, become=True)
    assert (how.uses_sudo, how.password_line) == (False, b"")


def test_become_with_a_password_reads_it_from_stdin_only() -> None:
    s = spec(become=True, become_user="www-data", become_password=Secret("hunter2"))
    command = shell_command(SCRIPT, login_user="deploy", spec=s, become=True)
    argv = shlex.split(command)
    assert argv[:9] == ["sudo", "-H", "-S", "-p", "", "-u", "www-data", "--", "/bin/sh"]
    assert "hunter2" not in command
    how = invocation(SCRIPT, login_user="deploy", spec=s, become=True)
    assert (how.command, how.uses_sudo, how.password_line) == (command, True, b"hunter2\n")
    assert "hunter2" not in repr(how)


def test_become_without_a_password_never_prompts() -> None:
    s = spec(become=True)
    command = shell_command("id", login_user="deploy", spec=s, become=True)
    assert shlex.split(command)[:6] == ["sudo", "-H", "-n", "-u", "root", "--"]
    how = invocation("id", login_user="deploy", spec=s, become=True)
    assert (how.uses_sudo, how.password_line) == (True, b"")


def test_become_false_overrides_the_spec() -> None:
    s = spec(become=True, become_password=Secret("pw"))
    how = invocation("id", login_user="deploy", spec=s, become=False)
    assert "sudo" not in how.command and not how.uses_sudo and not how.password_line


def test_long_scripts_stay_private_unless_another_user_must_read_them() -> None:
    assert script_file_mode(spec(), login_user="deploy", become=False) == 0o600
    assert script_file_mode(spec(become=True), login_user="deploy", become=True) == 0o600
    www = spec(become=True, become_user="www-data")
    assert script_file_mode(www, login_user="deploy", become=True) == 0o644


def test_the_script_cannot_read_stdin() -> None:
    """Where sudo had cached credentials, the password line would otherwise reach the script."""
    command = shell_command("cat; echo done", login_user="u", spec=spec(), become=False)
    assert run_locally(command, stdin="hunter2\n").stdout == "done\n"


def test_host_timeout_stops_the_command_on_the_host() -> None:
    command = shell_command("sleep 5; echo late", login_user="u", spec=spec(), become=False,
                            host_timeout=1)  # fmt: skip
    started = time.monotonic()
    done = run_locally(command)
    assert done.returncode == 124 and done.stdout == ""
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("status", "stderr", "expected"),
    [
        (1, "Sorry, try again.\nsudo: 1 incorrect password attempt\n", SUDO_WRONG_PASSWORD),
        (1, "Sorry, try again.\nSorry, try again.\nsudo: 3 incorrect password attempts\n",
         SUDO_WRONG_PASSWORD),
        (1, "sudo: a password is required\n", SUDO_NEEDS_PASSWORD),
        (1, "sudo: a terminal is required to read the password; either use the -S option\n",
         SUDO_NEEDS_PASSWORD),
        (1, "sudo: no password was provided\n", SUDO_NEEDS_PASSWORD),
        (1, "deploy is not in the sudoers file.\n", None),  # sudo's own words are clear enough
        (1, "grep: no match\n", None),
        (2, "Sorry, try again.\n", None),  # the script's status, not sudo's
        (0, "", None),
    ],
)  # fmt: skip
def test_sudo_failure(status: int, stderr: str, expected: str | None) -> None:
    assert sudo_failure(status, stderr) == expected


def test_command_result_replaces_sudo_noise_and_never_carries_the_password() -> None:
    s = spec(become=True, become_password=Secret("hunter2"))
    refused = command_result("id", 1, "", "Sorry, try again.\n", spec=s, used_sudo=True)
    assert (refused.exit_status, refused.stderr, refused.stdout) == (1, SUDO_WRONG_PASSWORD, "")
    echoed = command_result("x", 0, "got hunter2\n", "hunter2", spec=s, used_sudo=True)
    assert "hunter2" not in repr(echoed)
    plain = command_result("x", 1, "", "Sorry, try again.\n", spec=s, used_sudo=False)
    assert plain.stderr == "Sorry, try again.\n"  # no sudo involved: the script said it


# --- su and doas ------------------------------------------------------------------------------


def run_on_a_terminal(command: str) -> tuple[int, str]:
    """`command` with a pty as its stdin, stdout and stderr, as sshd runs it with a pty."""
    import os
    import pty

    main, side = pty.openpty()
    proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=side, stdout=side, stderr=side)
    os.close(side)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return proc.wait(), b"".join(chunks).decode()


@pytest.mark.parametrize("method", ["su", "doas"])
def test_su_and_doas_with_a_password_run_on_a_terminal_framed(method: str) -> None:
    s = spec(become=True, become_method=method, become_password=Secret("hunter2"))
    how = invocation(SCRIPT, login_user="deploy", spec=s, become=True, host_timeout=30)
    argv = shlex.split(how.command)
    assert argv[0] == method and how.terminal and how.password_line == b"hunter2\n"
    assert f"PATH={SECURE_PATH}" in how.command  # what sudo's secure_path gives
    assert "hunter2" not in how.command and "hunter2" not in repr(how)
    inner = shlex.split(argv[3]) if method == "su" else argv[argv.index("--") + 1 :]
    assert (
        argv[:3] == ["su", "root", "-c"]
        if method == "su"
        else argv[:4]
        == [
            "doas",
            "-u",
            "root",
            "--",
        ]
    )
    # the frame itself, on a real terminal: stdout and stderr come apart again
    status, raw = run_on_a_terminal(shlex.join(inner))
    result = terminal_result(SCRIPT, status, "su prompt noise\r\n" + raw, spec=s, how=how)
    assert (result.exit_status, result.stdout, result.stderr) == (0, "one two\n", "err\n")


def test_a_frame_keeps_the_exit_status_and_output_without_a_final_newline() -> None:
    s = spec(become=True, become_method="su", become_password=Secret("pw"))
    script = "printf partial; printf oops >&2; exit 7"
    how = invocation(script, login_user="deploy", spec=s, become=True)
    status, raw = run_on_a_terminal(shlex.split(how.command)[3])
    result = terminal_result(script, status, raw, spec=s, how=how)
    assert (result.exit_status, result.stdout, result.stderr) == (7, "partial", "oops")


def test_the_password_goes_once_and_only_to_a_prompt() -> None:
    s = spec(become=True, become_method="su", become_password=Secret("pw"))
    how = invocation("id", login_user="deploy", spec=s, become=True)
    answer = prompt_answerer(how)
    assert answer(b"") is None
    assert answer(b"Password: ") == b"pw\n"
    assert answer(b"Password: \r\nPassword: ") is None  # never twice: a wrong one is reported
    fresh = prompt_answerer(how)
    assert fresh(how.mark.encode() + b"\nPassword: ") is None  # the command's own output
    doas = prompt_answerer(invocation("id", login_user="d", spec=s, become=True))
    assert doas(b"doas (deploy@web1) password: ") == b"pw\n"


@pytest.mark.parametrize(
    ("method", "said", "expected"),
    [
        ("su", "Password: \r\nsu: Authentication failure\r\n", "su: incorrect password"),
        (
            "doas",
            "doas (d@h) password: \r\ndoas: Authentication failed\r\n",
            "doas: incorrect password",
        ),
    ],
)
def test_a_wrong_password_is_reported_plainly(method: str, said: str, expected: str) -> None:
    s = spec(become=True, become_method=method, become_password=Secret("pw"))
    how = invocation("id", login_user="deploy", spec=s, become=True)
    result = terminal_result("id", 1, said, spec=s, how=how)
    assert (result.exit_status, result.stdout, result.stderr) == (1, "", expected)
    assert expected in BECOME_FAILURES


def test_without_a_password_su_runs_plainly_and_doas_never_asks() -> None:
    su = spec(become=True, become_method="su", become_user="www-data")
    how = invocation("id", login_user="root", spec=su, become=True)
    assert shlex.split(how.command)[:3] == ["su", "www-data", "-c"] and not how.terminal
    doas = spec(become=True, become_method="doas")
    how = invocation("id", login_user="deploy", spec=doas, become=True)
    assert shlex.split(how.command)[:5] == ["doas", "-n", "-u", "root", "--"]
    refused = command_result("id", 1, "", "doas: Authentication required\n", spec=doas, how=how)
    assert (refused.stderr, refused.stdout) == ("doas needs a password", "")
    how = invocation("id", login_user="deploy", spec=su, become=True)
    refused = command_result("id", 1, "", "su: Authentication failure\n", spec=su, how=how)
    assert refused.stderr == "su needs a password"
    other = command_result("id", 1, "", "id: oops\n", spec=su, how=how)  # the command's own
    assert other.stderr == "id: oops\n"
