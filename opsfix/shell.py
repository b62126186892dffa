"""Shell building blocks: quoting, and batching many commands into one round trip.

Values never get formatted into shell text unquoted: build commands with `cmd()` or
`quote()`. `batch()` turns N commands into one script whose output `unbatch()` splits
back into N results, so a host's checks cost one SSH round trip.
"""

from __future__ import annotations

import base64
import secrets
import shlex
from collections.abc import Sequence

from opsfix.transport.base import CommandResult


def quote(value: object) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(str(value))


def cmd(*args: object) -> str:
    """A command line from separate arguments, each quoted."""
    return " ".join(quote(a) for a in args)


def batch(commands: Sequence[str], *, timeout: float | None = None, parallel: bool = True) -> str:
    """One script that runs every command and reports each one's stdout, stderr and status.

    Each command runs in its own subshell with stdin from /dev/null, so one command cannot
    eat another's input or change its directory. With `parallel`, commands run at once
    (checks are read-only and independent). `timeout` bounds each command with coreutils'
    `timeout` when the host has it.
    """
    tag = "OPSFIX" + secrets.token_hex(6)
    lines = [
        'd=$(mktemp -d "${TMPDIR:-/tmp}/opsfix.XXXXXX") || exit 97',
        "trap 'rm -rf \"$d\"' EXIT",
        "t=''",
    ]
    if timeout:
        lines.append(f"command -v timeout >/dev/null 2>&1 && t='timeout -k 2 {timeout:g}'")
    for i, command in enumerate(commands):
        runner = f"$t sh -c {quote(command)}" if timeout else f"( {command}\n)"
        line = f'{{ {runner} >"$d/{i}.o" 2>"$d/{i}.e" </dev/null; echo $? >"$d/{i}.r"; }}'
        lines.append(line + (" &" if parallel else ""))
    if parallel:
        lines.append("wait")
    for i in range(len(commands)):
        lines.append(
            f'printf \'%s {i} %s \' {tag} "$(cat "$d/{i}.r")"; '
            f'base64 <"$d/{i}.o" | tr -d "\\n"; printf " "; '
            f'base64 <"$d/{i}.e" | tr -d "\\n"; echo'
        )
    return "\n".join(lines) + "\n"


def unbatch(commands: Sequence[str], result: CommandResult) -> list[CommandResult]:
    """Split a `batch()` script's output back into one result per command.

    A command whose report is missing (the script died) gets exit status -1 and the
    script's stderr, so callers treat it as "could not tell", never as success.
    """
    found: dict[int, CommandResult] = {}
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) != 5 or not parts[0].startswith("OPSFIX"):
            continue
        _, index, status, out, err = parts
        i = int(index)
        if i >= len(commands):
            continue
        found[i] = CommandResult(
            command=commands[i],
            exit_status=int(status) if status.lstrip("-").isdigit() else -1,
            stdout=_decode(out),
            stderr=_decode(err),
        )
    missing = result.stderr or f"batch script exited {result.exit_status} without a report"
    return [
        found.get(i, CommandResult(command=c, exit_status=-1, stderr=missing))
        for i, c in enumerate(commands)
    ]


def _decode(text: str) -> str:
    return base64.b64decode(text).decode("utf-8", "replace") if text else ""
