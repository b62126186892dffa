"""How a spec's become settings turn into a command line, and how refusals read.

sudo takes its password on stdin (`-S`). su and doas read it only from a terminal, so
with a password the command runs on a pty: the password is sent once, at the prompt,
and never echoed. A pty has no separate stderr, so the command is framed: a mark line
when the password was accepted, then stdout, a mark again, then the stderr it kept in
a private temp file. Without a password, su runs as is (root needs none) and doas with
`-n` (never prompt), like `sudo -n`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from opsfix.shell import cmd
from opsfix.transport.base import CommandResult
from opsfix.transport.spec import ConnectionSpec

# sudo's secure_path on Debian: su and doas commands get it too, so that they find what
# sudo's find (nginx and the like live in sbin, which a login user's PATH lacks)
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_INLINE_SCRIPT = 100 * 1024  # Linux caps one argument at 128 KiB (MAX_ARG_STRLEN)
SUDO_WRONG_PASSWORD = "sudo: incorrect password"
SUDO_NEEDS_PASSWORD = "sudo needs a password"
SU_WRONG_PASSWORD = "su: incorrect password"
SU_NEEDS_PASSWORD = "su needs a password"
DOAS_WRONG_PASSWORD = "doas: incorrect password"
DOAS_NEEDS_PASSWORD = "doas needs a password"
BECOME_FAILURES = frozenset(
    {
        SUDO_WRONG_PASSWORD,
        SUDO_NEEDS_PASSWORD,
        SU_WRONG_PASSWORD,
        SU_NEEDS_PASSWORD,
        DOAS_WRONG_PASSWORD,
        DOAS_NEEDS_PASSWORD,
    }
)

# Runs the script (passed as $0) with stdin closed, under coreutils `timeout` when the host
# has it and a limit is given ($1): closing an SSH channel does not stop the command, and
# sshd refuses "signal" requests for root sessions, so the host enforces the limit itself.
# Stdin is closed so a script can never read the sudo password line, even when sudo had
# cached credentials and did not read it.
_RUNNER = (
    "exec </dev/null; "
    'if [ -n "$1" ] && command -v timeout >/dev/null 2>&1; then '
    'exec timeout -k 2 "$1" /bin/sh -c "$0"; fi; '
    'exec /bin/sh -c "$0"'
)

# On a terminal, as the become user: no echo and no \r added, the mark ($0), the command
# ("$@") with its stderr kept aside, the mark again, then that stderr.
_FRAME = (
    "stty -echo -onlcr 2>/dev/null; "
    "printf '%s\\n' \"$0\"; "
    "e=$(mktemp) || exit 125; "
    '"$@" 2>"$e"; s=$?; '
    "printf '\\n%s\\n' \"$0\"; "
    'cat "$e"; rm -f "$e"; exit $s'
)
_PROMPT = re.compile(rb"(?i)password[^\n]*:\s*$")


@dataclass(frozen=True)
class Invocation:
    """How one script runs: the command line, the password (stdin, or at a terminal's
    prompt), and the mark that frames a terminal's output."""

    command: str
    uses_sudo: bool
    password_line: bytes = field(default=b"", repr=False)
    method: str = "sudo"
    mark: str = ""  # set: run on a terminal, answer the prompt, unframe the output

    @property
    def terminal(self) -> bool:
        return bool(self.mark)


def invocation(
    script: str,
    *,
    login_user: str,
    spec: ConnectionSpec,
    become: bool,
    host_timeout: int | None = None,
) -> Invocation:
    """Run `script` as the login user, or as the become user through the become method."""
    switching = become and login_user != spec.become_user
    argv = ["/bin/sh", "-c", _RUNNER, script, str(host_timeout or "")]
    password = spec.become_password.reveal().encode() + b"\n" if spec.become_password else b""
    if not switching:
        return Invocation(cmd(*argv), False)
    method, user = spec.become_method, spec.become_user
    if method == "sudo":
        how = ("-S", "-p", "") if password else ("-n",)
        return Invocation(cmd("sudo", "-H", *how, "-u", user, "--", *argv), True, password, method)
    argv = ["env", f"PATH={SECURE_PATH}", *argv]  # su keeps the login user's PATH
    mark = f"opsfix-{secrets.token_hex(8)}" if password else ""
    if mark:
        argv = ["/bin/sh", "-c", _FRAME, mark, *argv]
    if method == "su":
        return Invocation(cmd("su", user, "-c", cmd(*argv)), False, password, method, mark)
    never_ask = () if password else ("-n",)
    return Invocation(
        cmd("doas", *never_ask, "-u", user, "--", *argv), False, password, method, mark
    )


def shell_command(
    script: str,
    *,
    login_user: str,
    spec: ConnectionSpec,
    become: bool,
    host_timeout: int | None = None,
) -> str:
    """The command line that runs `script` as the right user; a password goes elsewhere."""
    how = invocation(
        script, login_user=login_user, spec=spec, become=become, host_timeout=host_timeout
    )
    return how.command


def prompt_answerer(how: Invocation) -> Callable[[bytes], bytes | None]:
    """Given all a terminal printed so far: the password, once, when it asks for one."""
    sent = False
    mark = how.mark.encode()

    def answer(seen: bytes) -> bytes | None:
        nonlocal sent
        if sent or not how.password_line or mark in seen or not _PROMPT.search(seen):
            return None
        sent = True
        return how.password_line

    return answer


def terminal_result(
    script: str,
    status: int,
    raw: str,
    *,
    spec: ConnectionSpec,
    how: Invocation,
    truncated: bool = False,
) -> CommandResult:
    """A framed terminal's output as stdout and stderr; the become program's refusal plain."""
    before, found, rest = raw.partition(how.mark + "\n")
    if not found:
        secret = spec.become_password.reveal() if spec.become_password else ""
        shown = before.replace(secret, "********") if secret else before
        refused = _refusal(how.method, status, shown, had_password=True)
        return CommandResult(command=script, exit_status=status or 1, stderr=refused)
    out, found, err = rest.rpartition("\n" + how.mark + "\n")
    if not found:  # the frame did not finish (its temp file could not be made)
        out, err = rest, ""
    return command_result(script, status, out, err, spec=spec, how=how, truncated=truncated)


def _refusal(method: str, status: int, text: str, *, had_password: bool) -> str:
    lowered = text.lower()
    if any(w in lowered for w in ("authentication fail", "incorrect password", "sorry")):
        return f"{method}: incorrect password" if had_password else f"{method} needs a password"
    if any(w in lowered for w in ("password", "terminal is required", "a tty")):
        return f"{method} needs a password"
    return f"{method} failed (exit {status}): {text.strip()[-300:]}"


def script_file_mode(spec: ConnectionSpec, *, login_user: str, become: bool) -> int:
    """A long script's temp file is private, unless a become user other than root must read it."""
    other_reader = become and spec.become_user not in ("root", login_user)
    return 0o644 if other_reader else 0o600


def sudo_failure(exit_status: int, stderr: str) -> str | None:
    """A clear message when sudo itself refused (wrong or missing password), else None."""
    if exit_status != 1:
        return None
    lines = [line.strip() for line in stderr.splitlines()]
    if any(
        line == "Sorry, try again."
        or line.endswith(("incorrect password attempt", "incorrect password attempts"))
        for line in lines
    ):
        return SUDO_WRONG_PASSWORD
    if any(
        line in ("sudo: a password is required", "sudo: no password was provided")
        or line.startswith("sudo: a terminal is required")
        for line in lines
    ):
        return SUDO_NEEDS_PASSWORD
    return None


def _switch_failure(how: Invocation, status: int, stderr: str) -> str | None:
    """su or doas without a password, refused before the command ran."""
    if status != 1 or how.terminal:
        return None
    lines = [line.strip().lower() for line in stderr.splitlines()]
    prefix = f"{how.method}:"
    if any(line.startswith(prefix) and "authentication fail" in line for line in lines):
        return f"{how.method} needs a password"
    if any(line.startswith(prefix) and "authentication required" in line for line in lines):
        return f"{how.method} needs a password"
    return None


def command_result(
    script: str,
    status: int,
    out: str,
    err: str,
    *,
    spec: ConnectionSpec,
    used_sudo: bool = False,
    how: Invocation | None = None,
    truncated: bool = False,
) -> CommandResult:
    """The result callers see: the become program's refusals made plain, no password inside."""
    failure = sudo_failure(status, err) if used_sudo or (how and how.uses_sudo) else None
    failure = failure or (_switch_failure(how, status, err) if how else None)
    if failure:
        return CommandResult(command=script, exit_status=status, stderr=failure)
    secret = spec.become_password.reveal() if spec.become_password else ""
    if secret:  # belt and braces: nothing should echo it, but a result must never carry it
        out, err = out.replace(secret, "********"), err.replace(secret, "********")
    return CommandResult(script, status, out, err, truncated=truncated)


__all__ = [
    "BECOME_FAILURES",
    "MAX_INLINE_SCRIPT",
    "SUDO_NEEDS_PASSWORD",
    "SUDO_WRONG_PASSWORD",
    "Invocation",
    "command_result",
    "invocation",
    "prompt_answerer",
    "script_file_mode",
    "shell_command",
    "sudo_failure",
    "terminal_result",
]
