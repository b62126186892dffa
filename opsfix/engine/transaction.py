"""Runs a remediation's Plan on one host as a transaction, in as few round trips as possible.

1. prepare: record a journal, back up every path the plan touches, stage the new
   content, copy the stage tree, apply the changes to the copy and validate it. Nothing
   live changes here, so a failed validation leaves the host exactly as it was.
2. apply, in the same script only once prepare has succeeded: swap each change in by an
   atomic rename inside its own directory, then act (reload/start).
3. the step's re-check, in the same script once the act has succeeded; on failure
   `restore` puts every backed-up file back (atomically) and runs the rollback commands.
   Backups are kept under /var/backups/opsfix/<tx>.

Every script checks each change's path against its root (`opsfix.hostfiles.confined`)
just before it reads, stages, swaps or restores it: a symlinked folder below the root
refuses the change, and the report names it. Paths whose bytes are not UTF-8 go into the
scripts as `printf` escapes (`opsfix.shell.quote`).

The journal (/var/lib/opsfix/tx/<tx>/state) says how far a transaction got, so a run that
dies mid-way leaves evidence of what to restore. While one of its scripts runs, it holds
a lock on the host (`flock` on <tx>/.busy): the scripts go on after the controller dies,
so a recovery waits for them to end before it restores anything.
"""

from __future__ import annotations

import base64
import difflib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from posixpath import dirname

from opsfix import hostfiles
from opsfix.engine.session import Runner
from opsfix.plugin import Change, Plan, Remove, Symlink, WriteFile
from opsfix.shell import batch, quote, unbatch
from opsfix.transport.base import CommandResult

STATE_DIR = "/var/lib/opsfix/tx"
BACKUP_DIR = "/var/backups/opsfix"
_TAG = "OPSFIX-TX"
_APPLYING = f"{_TAG} APPLYING"  # between prepare's report and apply's in one script
_CHECKING = f"{_TAG} CHECKING"  # between apply's report and the re-check's
BUSY_WAIT = 60  # seconds a script waits for another script of its transaction to end


@dataclass
class StepLog:
    """What one phase printed: each command's exit status and combined output."""

    ok: bool
    failed_phase: str = ""
    outputs: list[tuple[str, int, str]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # symlinked folders that refused a change

    def text(self) -> str:
        return "\n".join(
            f"$ {_headline(c)}\n{out.rstrip()}\n[exit {rc}]" for c, rc, out in self.outputs
        )


def _headline(command: str, width: int = 100) -> str:
    """A long command shown by its first line, cut to `width`: the output is what matters."""
    lines = command.strip().splitlines() or [""]
    head = lines[0] + (" ..." if len(lines) > 1 else "")
    return head if len(head) <= width else head[: width - 4] + " ..."


def new_txid(name: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{name}-{secrets.token_hex(3)}"


class Transaction:
    """One plan on one host; methods map to round trips."""

    def __init__(
        self,
        conn: Runner,
        plan: Plan,
        txid: str,
        *,
        timeout: float | None = None,
        state_dir: str = STATE_DIR,
        backup_dir: str = BACKUP_DIR,
    ) -> None:
        self.conn = conn
        self.plan = plan
        self.txid = txid
        self.timeout = timeout
        self.work = f"{state_dir}/{txid}"
        self.backup = f"{backup_dir}/{txid}"

    def validate_only(self) -> StepLog:
        """Stage and validate in a scratch folder that is removed again: a dry run's check."""
        return self._run(self._prepare_script(scratch=True))

    def prepare_and_apply(
        self, after: Sequence[str] = (), limit: float | None = None
    ) -> tuple[StepLog, StepLog | None, list[CommandResult] | None]:
        """`prepare`, then `apply`, in one round trip. Every failure before the apply part
        (a failed validation above all) ends the script there, so nothing acts on a plan
        that did not validate, just as when the controller checks in between. The apply
        log is None when the script never got to it.

        `after`: read-only commands (the step's re-check) that run in the same script once
        the apply has succeeded, each bounded by `limit` seconds; their results, or None
        when the script did not get that far. The transaction's lock is let go first.
        """
        script = (
            self._prepare_script()
            + f"printf '%s\\n' {quote(_APPLYING)}\n"
            + "unset OPSFIX_STAGE OPSFIX_STAGE_ROOT\n"  # staging is over, as in its own script
            + "\n".join(self._apply_lines())
            + "\n"
        )
        if after:
            script += f"exec 8>&-\nprintf '%s\\n' {quote(_CHECKING)}\n"
            script += batch(after, parallel=False, timeout=limit)
        result = self.conn.run(script, timeout=self.timeout)
        before, applying, rest = result.stdout.partition(_APPLYING + "\n")
        prepared = parse_log(CommandResult(script, result.exit_status, before), self.plan)
        if not applying:
            if not prepared.failed_phase:
                prepared.failed_phase = (
                    f"script (exit {result.exit_status}): " + (result.stderr.strip()[:500])
                )
            return prepared, None, None
        applied_out, checking, checked = rest.partition(_CHECKING + "\n")
        applied = CommandResult(script, result.exit_status, applied_out, result.stderr)
        if not checking:
            return prepared, parse_log(applied, self.plan), None
        results = unbatch(after, CommandResult(script, result.exit_status, checked, result.stderr))
        return prepared, parse_log(applied, self.plan), results

    def restore(self) -> StepLog:
        """Put every backed-up path back and run the rollback commands."""
        return self._run(self._restore_script())

    def finish(self, state: str) -> None:
        """Record the outcome in the journal; staged copies go, backups stay."""
        self.conn.run(self.finish_script(state), timeout=self.timeout)

    def finish_script(self, state: str) -> str:
        """What `finish` runs, for a caller that sends it along with other commands."""
        return (
            f"rm -rf {quote(self.work + '/new')}; "
            f"printf '%s\\n' {quote(state)} > {quote(self.work + '/state')}"
        )

    # -- scripts -------------------------------------------------------------------------

    def _header(self) -> list[str]:
        return [
            "umask 077",
            f"W={quote(self.work)}; B={quote(self.backup)}",
            # GNU base64 writes one line itself (-w0); others go through tr
            f'report() {{ printf "%s %s %s %s\\n" {_TAG} "$1" "$2" '
            '"$(base64 -w0 < "$3" 2>/dev/null || base64 < "$3" | tr -d "\\n")"; }',
            f'fail() {{ printf "%s FAIL %s\\n" {_TAG} "$1"; exit 1; }}',
            hostfiles.CONFINED,
            hostfiles.ENTER,
            f'outside() {{ printf "%s LINK %s\\n" {_TAG} '
            '"$(printf %s "$link" | base64 | tr -d "\\n")"; }',
            'o="$W/out"',
        ]

    def _held(self) -> list[str]:
        """The header, then the transaction's lock: a dead run's script may still run."""
        return [
            *self._header(),
            'mkdir -p "$W" || fail mkdir',
            'exec 8>>"$W/.busy"',
            f"if command -v flock >/dev/null 2>&1; then flock -w {BUSY_WAIT} 8 || fail busy; fi",
        ]

    def _prepare_script(self, scratch: bool = False) -> str:
        plan = self.plan
        lines = self._header() if scratch else self._held()
        if scratch:  # nothing persists: no journal, no backup, content in a temp folder
            lines += [
                'W=$(mktemp -d "${TMPDIR:-/tmp}/opsfix-dry.XXXXXX") || fail mkdir',
                'o="$W/out"; trap \'rm -rf "$W"\' EXIT',
                'mkdir -p "$W/new" || fail mkdir',
            ]
        else:
            journal = json.dumps(
                {
                    "txid": self.txid,
                    "backup": self.backup,
                    "paths": [c.path for c in plan.changes],
                    "roots": [c.root for c in plan.changes],
                    "rollback": list(plan.rollback),
                }
            )
            lines += [
                'mkdir -p "$W/new" "$B" || fail mkdir',
                f"printf '%s\\n' {quote(journal)} > \"$W/journal.json\" || fail journal",
                'echo prepared > "$W/state"',
            ]
        lines += [f"{_confine(change)} || {{ outside; fail link; }}" for change in plan.changes]
        for change in plan.changes if plan.backup and not scratch else ():
            lines += _backup_lines(change)
        for i, change in enumerate(plan.changes):
            if isinstance(change, WriteFile):
                data = base64.b64encode(change.content).decode()
                write = f"printf '%s' {quote(data)} | base64 -d > \"$W/new/{i}\""
                lines.append(f"{write} || fail stage")
        if plan.stage_root:
            lines += self._stage_lines(plan.stage_root)
        for i, command in enumerate(plan.validate):
            lines.append(_reported("validate", i, command))
            lines.append('[ $rc -eq 0 ] || { [ -n "${s:-}" ] && rm -rf "$s"; fail validate; }')
        lines.append('[ -n "${s:-}" ] && rm -rf "$s"')
        lines.append(f"printf '%s OK\\n' {_TAG}")
        return "\n".join(lines) + "\n"

    def _stage_lines(self, root: str) -> list[str]:
        r = quote(root)
        lines = [
            's=$(mktemp -d "${TMPDIR:-/tmp}/opsfix-stage.XXXXXX") || fail stage',
            'S="$s/root"',
            f'mkdir -p "$S" && cp -a {r}/. "$S"/ || fail stage',
            'export OPSFIX_STAGE="$S"',
            f"export OPSFIX_STAGE_ROOT={r}",
        ]
        prefix = root.rstrip("/") + "/"
        for i, change in enumerate(self.plan.changes):
            if not change.path.startswith(prefix):
                continue
            target = '"$S"' + quote(change.path[len(prefix) - 1 :])
            parent = '"$S"' + quote(dirname(change.path[len(prefix) - 1 :]))
            lines.append(f'confined "$S" {target} || {{ outside; fail link; }}')
            if isinstance(change, WriteFile):
                step = f'mkdir -p {parent} && rm -f {target} && cp "$W/new/{i}" {target}'
            elif isinstance(change, Symlink):
                step = (
                    f"mkdir -p {parent} && rm -f {target} && ln -s {quote(change.target)} {target}"
                )
            else:
                step = f"rm -f {target}"
            lines.append(f"{step} || fail stage")
        return lines

    def _apply_lines(self) -> list[str]:
        """The apply phase, to run where the transaction is held (see `_held`)."""
        lines = ['echo swapping > "$W/state"']
        for i, change in enumerate(self.plan.changes):
            lines.append(f"{_confine(change)} || {{ outside; fail link; }}")
            if isinstance(change, WriteFile):
                keep = (
                    'if [ -f "../$n" ] && [ ! -L "../$n" ]; then chown --reference="../$n" ./f && '
                    f'chmod --reference="../$n" ./f; else chmod {change.mode:o} ./f; fi'
                )
                put = f'cp "$W/new/{i}" ./f && {{ {keep}; }}'
                lines.append(_put(change, f".opsfix-{self.txid}-{i}", put) + " || fail swap")
            elif isinstance(change, Symlink):
                put = f"ln -s {quote(change.target)} ./f"
                lines.append(_put(change, f".opsfix-{self.txid}-{i}", put) + " || fail swap")
            else:
                assert isinstance(change, Remove)
                gone = 'if [ -d "$n" ] && [ ! -L "$n" ]; then exit 1; fi; rm -f "$n"'
                lines.append(_in_folder(change, gone) + " || fail swap")
        lines.append('echo acting > "$W/state"')
        for i, command in enumerate(self.plan.act):
            lines.append(_reported("act", i, command))
            lines.append("[ $rc -eq 0 ] || fail act")
        lines.append('echo applied > "$W/state"')
        lines.append(f"printf '%s OK\\n' {_TAG}")
        return lines

    def _restore_script(self) -> str:
        lines = [*self._held(), 'echo restoring > "$W/state"', "bad=0"]
        for i, change in reversed(list(enumerate(self.plan.changes))):
            p = quote(change.path)
            put = _put(change, f".opsfix-{self.txid}-r{i}", f'cp -a "$B"{p} ./f', fresh=True)
            gone = _in_folder(change, 'rm -f "$n"')
            # "$B/.absent" (one path a line) is where older versions noted absent paths
            lines.append(
                f'if [ -e "$B"{p} ] || [ -L "$B"{p} ]; then {put} || bad=1; '
                f'elif [ -e "$W/absent"{p} ] || grep -qxF {p} "$B/.absent" 2>/dev/null; '
                f"then {gone} || bad=1; fi"
            )
        lines.append("[ $bad -eq 0 ] || fail restore")
        for i, command in enumerate(self.plan.rollback):
            lines.append(
                f'( {command}\n) 8>&- >"$o" 2>&1 </dev/null; rc=$?; report rollback:{i} $rc "$o"'
            )
        lines.append('echo rolled-back > "$W/state"')
        lines.append(f"printf '%s OK\\n' {_TAG}")
        return "\n".join(lines) + "\n"

    def _run(self, script: str) -> StepLog:
        result = self.conn.run(script, timeout=self.timeout)
        return parse_log(result, self.plan)


def _confine(change: Change) -> str:
    """The host-side test that the change's path stays in its root (see opsfix.hostfiles)."""
    return hostfiles.confined(change.root, change.path)


def _backup_lines(change: Change) -> list[str]:
    """Copy the path into the backup (from inside its folder), or note that it is absent."""
    p, folder = quote(change.path), quote(dirname(change.path))
    copy = f'[ -e "$n" ] || [ -L "$n" ] || exit 2; mkdir -p "$B"{folder} && cp -a "$n" "$B"{p}'
    return [
        f"( {_enter(change)}{copy} )",
        f'case $? in 0) ;; 1) fail link ;; 2) mkdir -p "$W/absent"{folder} && '
        f': > "$W/absent"{p} || fail backup ;; *) fail backup ;; esac',
    ]


def _enter(change: Change, create: bool = False) -> str:
    """A subshell's first lines: `n` is the change's name, the working folder its folder,
    entered without following a link below the root (see `hostfiles.ENTER`). A folder out
    of place exits 1, naming it; a missing one exits 2."""
    root, folder = hostfiles.root_arg(change.root), dirname(change.path)
    how = " create" if create else ""
    return (
        f"n=./{quote(change.path.rsplit('/', 1)[1])}; enter {quote(root)} {quote(folder)}{how}; "
        "case $? in 0) ;; 1) outside; exit 1 ;; *) exit 2 ;; esac; "
    )


def _in_folder(change: Change, body: str) -> str:
    """`body` run from inside the change's folder; a missing folder leaves nothing to do."""
    return f"( {_enter(change)}{body} ); case $? in 0 | 2) ;; *) false ;; esac"


def _put(change: Change, private: str, make: str, *, fresh: bool = False) -> str:
    """Make `./f` (by `make`) in a folder of our own beside the change's path, then rename
    it over the path: nothing is written through a name that others can swap. `fresh`:
    first remove what an earlier try of the same step left (a restore may run again)."""
    t = quote(private)
    clear = f"rm -rf -- {t}; " if fresh else ""
    return (
        f"( {_enter(change, create=True)}{clear}"
        f'mkdir -m 700 -- {t} && cd -P -- {t} && [ "$PWD" = "$_w"/{t} ] || exit 1; '
        f'{make} && mv -Tf ./f "../$n"; s=$?; cd -P .. && rm -rf -- {t}; exit $s )'
    )


def _reported(phase: str, index: int, command: str) -> str:
    """Run one plan command in a subshell and report its status and output.

    The command does not inherit the transaction's lock (fd 8): a daemon it starts must
    not hold it for ever. The script itself holds it until the command has ended.
    """
    return f'( {command}\n) 8>&- >"$o" 2>&1 </dev/null; rc=$?; report {phase}:{index} $rc "$o"'


def parse_log(result: CommandResult, plan: Plan) -> StepLog:
    """Read the report lines a transaction script printed."""
    log = StepLog(ok=False)
    commands = {"validate": plan.validate, "act": plan.act, "rollback": plan.rollback}
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if not parts or parts[0] != _TAG:
            continue
        if parts[1] == "OK":
            log.ok = True
        elif parts[1] == "FAIL":
            log.failed_phase = parts[2] if len(parts) > 2 else "unknown"
        elif parts[1] == "LINK" and len(parts) > 2:
            log.links.append(hostfiles.shown(hostfiles.decode(base64.b64decode(parts[2]))))
        elif len(parts) >= 3:
            phase, _, index = parts[1].partition(":")
            out = base64.b64decode(parts[3]).decode("utf-8", "replace") if len(parts) > 3 else ""
            command = commands.get(phase, ())[int(index)] if index.isdigit() else phase
            log.outputs.append((command, int(parts[2]), out))
    if not log.ok and not log.failed_phase:
        log.failed_phase = f"script (exit {result.exit_status}): {result.stderr.strip()[:500]}"
    if log.links:
        where = "a symlink below its change's root, or outside it: not followed"
        log.failed_phase = f"{log.links[0]} is {where}" + (
            f" ({log.failed_phase})" if log.failed_phase not in ("link", "") else ""
        )
    return log


DIFF_LIMIT = 64 * 1024  # bigger or binary files are summarised, never transferred whole


def current_contents(
    conn: Runner, paths: list[str] | Sequence[Change], timeout: float | None
) -> dict[str, str | None]:
    """What each path holds now, for diffs: file text, `-> target` for links, None if absent.

    A file over DIFF_LIMIT or with NUL bytes reads as a one-line summary, so a dry run
    of a log cleanup never pulls gigabytes of logs over SSH. A change's path that leads
    out of its root through a symlinked folder is not read (the summary names the link).
    """
    changes = [Remove(c) if isinstance(c, str) else c for c in paths]
    commands = [
        f"{hostfiles.CONFINED}\nif ! {_confine(c)}; then printf 'X%s' \"$link\"; "
        + _read_current(c.path)
        for c in changes
    ]
    results = unbatch(commands, conn.run(batch(commands), timeout=timeout))
    contents: dict[str, str | None] = {}
    for change, res in zip(changes, results, strict=True):
        kind, body = res.stdout[:1], res.stdout[1:]
        if kind == "X":
            contents[change.path] = f"(not read: {body} is a symlink below {change.root})\n"
        elif kind == "L":
            contents[change.path] = f"-> {body}\n"
        elif kind == "B":
            contents[change.path] = f"({body.strip()} bytes, binary or too large to show)\n"
        else:
            contents[change.path] = body if kind == "F" else None
    return contents


def _read_current(p: str) -> str:
    """The shell that prints what `current_contents` reads of one path (after an `if`)."""
    return (
        f"elif [ -L {quote(p)} ]; then printf 'L%s' \"$(readlink {quote(p)})\"; "
        f"elif [ -f {quote(p)} ]; then n=$(wc -c < {quote(p)}); "
        f"if [ \"$n\" -gt {DIFF_LIMIT} ] || head -c {DIFF_LIMIT} {quote(p)} | tr -d '\\n' "
        f"| grep -qaP '\\x00' 2>/dev/null; then printf 'B%s' \"$n\"; "
        f"else printf F; cat {quote(p)}; fi; else printf N; fi"
    )


def diff(
    plan: Plan, current: dict[str, str | None], hide: Callable[[str], bool] = lambda path: False
) -> str:
    """A unified diff of every file the plan would change (hidden ones only named)."""
    chunks: list[str] = []
    for change in plan.changes:
        if hide(change.path):
            chunks.append(f"--- {change.path}: sensitive file, diff not shown\n")
            continue
        before = current.get(change.path)
        after: str | None
        if isinstance(change, WriteFile):
            after = change.content.decode("utf-8", "replace")
        elif isinstance(change, Symlink):
            after = f"-> {change.target}\n"
        else:
            after = None
        header = [
            f"--- {'/dev/null' if before is None else 'a' + change.path}\n",
            f"+++ {'/dev/null' if after is None else 'b' + change.path}\n",
        ]
        body = list(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                (after or "").splitlines(keepends=True),
                n=3,
            )
        )[2:]  # difflib's own header cannot say "empty file" apart from "no file"
        if body or (before is None) != (after is None):
            chunks += header + body
    return "".join(
        c if c.endswith("\n") else c + "\n\\ No newline at end of file\n" for c in chunks
    )
