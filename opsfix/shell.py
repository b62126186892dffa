"""Shell building blocks: quoting, and batching many commands into one round trip.

Values never get formatted into shell text unquoted: build commands with `cmd()` or
`quote()`. `batch()` turns N commands into one script whose output `unbatch()` splits
back into N results, so a host's checks cost one SSH round trip.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence

from opsfix.transport.base import CommandResult

# Words a shell runs itself (builtins, keywords): such a command must go through a shell.
_BUILTINS_AND_KEYWORDS = (
    ". : [ [[ ]] alias bg bind break builtin caller case cd chdir command compgen complete "
    "continue declare dirs disown do done echo elif else enable esac eval exec exit export "
    "false fc fg fi for function getopts hash help history if in jobs kill let local logout "
    "mapfile popd printf pushd pwd read readarray readonly return select set shift shopt "
    "source suspend test then time times trap true type typeset ulimit umask unalias unset "
    "until wait while"
)
_SHELL_WORDS = frozenset(_BUILTINS_AND_KEYWORDS.split())
_FIRST_MARK = re.compile(r"^(OPSFIX[0-9a-f]{12}) (?:0|end)\n", re.MULTILINE)
# any script's marker line; _frames keeps those of its own tag (one pattern compiled once:
# a pattern per tag was a regex compiled twice for every round trip of every host)
_MARK = re.compile(r"^(OPSFIX[0-9a-f]{12}) (\d+)(?: (-?\d+))?\n", re.MULTILINE)
# A word as shlex.quote writes it: only safe characters, or single-quoted ('' for an empty
# one) with each single quote inside written '"'"'.
_WORD = re.compile(r"""[\w@%+=:,./-]+|'[^']*'(?:"'"'[^']*')*""", re.ASCII)
_QUOTED_QUOTE = "'\"'\"'"


def quote(value: object) -> str:
    """Quote one value for a POSIX shell.

    A file name read from a host may hold bytes that are not UTF-8; opsfix keeps them as
    surrogates (Python's `surrogateescape`, as `os.fsdecode` does). A script is sent as
    UTF-8 text, so those bytes go as `printf` octal escapes, inside the same word.
    """
    text = str(value)
    if text.isascii() or not _UNDECODABLE.search(text):
        return shlex.quote(text)
    words = _UNDECODABLE.split(text)
    return "".join(
        _printf_bytes(word) if i % 2 else shlex.quote(word) for i, word in enumerate(words) if word
    )


_UNDECODABLE = re.compile("([\udc80-\udcff]+)")


def _printf_bytes(surrogates: str) -> str:
    """A shell word that expands to the bytes these surrogates stand for (never newlines,
    which `$( )` would strip: they are all 0x80-0xff)."""
    octal = "".join(f"\\{ord(c) - 0xDC00:03o}" for c in surrogates)
    return f"\"$(printf '{octal}')\""


def cmd(*args: object) -> str:
    """A command line from separate arguments, each quoted."""
    return " ".join(quote(a) for a in args)


def batch(commands: Sequence[str], *, timeout: float | None = None, parallel: bool = True) -> str:
    """One script that runs every command and reports each one's stdout, stderr and status.

    Each command runs in its own process (a subshell, or the program itself when the
    command is one plain program call) with stdin from /dev/null, so one command cannot
    eat another's input or change its directory. With `parallel`, commands run at once
    (checks are read-only and independent). `timeout` bounds each command with coreutils'
    `timeout` when the host has it.

    The host pays for every process the script starts, so it starts few. One after
    another, commands write straight to the script's stdout and stderr between marker
    lines that carry a tag drawn for this script; at once, they write to files that are
    copied out between the same markers afterwards. One after another, a later command
    can read an earlier one's exit status from the variable `status_var(i)`.
    """
    tag = "OPSFIX" + secrets.token_hex(6)
    lines = []
    if parallel and commands:
        lines += [
            'd=$(mktemp -d "${TMPDIR:-/tmp}/opsfix.XXXXXX") || exit 97',
            "trap 'rm -rf \"$d\"' EXIT",
        ]
    if timeout:
        lines += ["t=''", f"command -v timeout >/dev/null 2>&1 && t='timeout -k 2 {timeout:g}'"]
    for i, command in enumerate(commands):
        run = f"{_runner(command, timeout)} </dev/null"
        if parallel:
            lines.append(f'{run} >"$d/{i}.o" 2>"$d/{i}.e" & p{i}=$!')
        else:
            lines += [_open(tag, i), f"{run}; r=$?; {status_var(i)}=$r", _close(tag, i)]
    if parallel:
        for i in range(len(commands)):
            lines += [
                f"wait $p{i}; r=$?",
                _open(tag, i),
                f'[ -s "$d/{i}.o" ] && cat "$d/{i}.o"; [ -s "$d/{i}.e" ] && cat "$d/{i}.e" >&2',
                _close(tag, i),
            ]
    lines.append(f'echo "{tag} end"')
    return "\n".join(lines) + "\n"


def status_var(i: int) -> str:
    """The shell variable that holds the exit status of a sequential batch's command i."""
    return f"rc{i}"


def _open(tag: str, i: int) -> str:
    return f'echo "{tag} {i}"; echo "{tag} {i}" >&2'


def _close(tag: str, i: int) -> str:
    """An empty line first: output without a final newline still ends before the marker."""
    return f'echo; echo "{tag} {i} $r"; echo >&2; echo "{tag} {i} $r" >&2'


def _runner(command: str, timeout: float | None) -> str:
    """How one command starts: a plain program call needs no shell of its own."""
    if is_program_call(command):
        return f"$t {command}" if timeout else command
    return f"$t sh -c {quote(command)}" if timeout else f"( {command}\n)"


def is_program_call(command: str) -> bool:
    """True when `command` is only quoted words naming a program (no shell syntax at all).

    Such a command means the same run directly, or by `timeout`, as through `sh -c`.
    "Quoted words" means exactly what `cmd()` writes, read back with one regex: every
    host's script asks this about every command, and shlex, reading a check's script a
    character at a time in Python, took ~2 ms of the controller's CPU per host.
    """
    words: list[str] = []
    pos, end = 0, len(command)
    while True:
        word = _WORD.match(command, pos)
        if word is None:
            return False
        text = word.group()
        words.append(text[1:-1].replace(_QUOTED_QUOTE, "'") if text[0] == "'" else text)
        pos = word.end()
        if pos == end:
            break
        if command[pos] != " ":
            return False
        pos += 1
    if cmd(*words) != command:  # quoted though it needed no quotes: not cmd()'s way
        return False
    return words[0] not in _SHELL_WORDS and "=" not in words[0]


OUTPUT_CUT = "a command printed more than the output limit (--output-limit); the rest was dropped"


def unbatch(commands: Sequence[str], result: CommandResult) -> list[CommandResult]:
    """Split a `batch()` script's output back into one result per command.

    A command whose report is missing, cut short or doubled (the script died, or output
    imitated a marker) gets exit status -1 and the script's own stderr, so callers treat
    it as "could not tell", never as success. When the script's output went over the
    output limit, such a command's result says `truncated` (its report was cut off).
    """
    found = _FIRST_MARK.search(result.stdout)
    tag = found.group(1) if found else ""
    out, _ = _frames(result.stdout, tag)
    err, err_rest = _frames(result.stderr, tag)
    missing = (
        err_rest.strip()
        or result.stderr.strip()
        or f"batch script exited {result.exit_status} without a report"
    )
    if result.truncated:
        missing = OUTPUT_CUT
    results = []
    for i, command in enumerate(commands):
        if i in out and i in err and out[i][0] == err[i][0]:
            results.append(CommandResult(command, out[i][0], out[i][1], err[i][1]))
        else:
            results.append(CommandResult(command, -1, stderr=missing, truncated=result.truncated))
    return results


def _frames(text: str, tag: str) -> tuple[dict[int, tuple[int, str]], str]:
    """`{index: (status, output)}` of each well-formed frame, and the text outside frames.

    A frame is the line `TAG i`, the output, an empty line and `TAG i STATUS`, with no
    other marker between. An index seen in more than one frame, or in a broken one, is
    left out.
    """
    if not tag:
        return {}, text
    marks = [m for m in _MARK.finditer(text) if m.group(1) == tag]
    frames: dict[int, tuple[int, str]] = {}
    bad: set[int] = set()
    outside, position, k = [], 0, 0
    while k < len(marks):
        start, index = marks[k], int(marks[k].group(2))
        end = marks[k + 1] if k + 1 < len(marks) else None
        if end is None or not _pair(start, end) or index in frames:
            bad.add(index)
            k += 1
            continue
        outside.append(text[position : start.start()])
        body = text[start.end() : end.start()]
        frames[index] = (int(end.group(3)), body[:-1] if body.endswith("\n") else body)
        position = end.end()
        k += 2
    outside.append(text[position:].replace(f"{tag} end\n", "", 1))
    return {i: f for i, f in frames.items() if i not in bad}, "".join(outside)


def _pair(start: re.Match[str], end: re.Match[str]) -> bool:
    """An opening marker, then the closing marker (with a status) of the same command."""
    opens = start.group(3) is None
    closes = end.group(3) is not None and end.group(2) == start.group(2)
    return opens and closes
