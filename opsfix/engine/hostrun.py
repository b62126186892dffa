"""The work on one host, over its one connection: check, repair as transactions, re-check.

Before the first change the host is locked (see opsfix.engine.lock), so two runs never act
on one host at once; a disruptive remediation may be deferred by the run's gate (for
example outside a maintenance window). A dry run stops at the plan, but still validates
staged changes in a scratch folder, which changes nothing on the host.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsfix.engine import recovery
from opsfix.engine.lock import HostLock
from opsfix.engine.transaction import (
    BACKUP_DIR,
    STATE_DIR,
    Transaction,
    current_contents,
    diff,
    new_txid,
)
from opsfix.errors import CommandTimeout, ConnectionFailed, OpsfixError
from opsfix.evidence.results import (
    CheckOutcome,
    HostReport,
    HostStatus,
    RemediationOutcome,
    StepReport,
)
from opsfix.playbook.binding import BoundStep
from opsfix.plugin import Check, CheckResult, Plan, Remediation
from opsfix.shell import OUTPUT_CUT, batch, status_var, unbatch
from opsfix.transport.base import CommandResult, Connection
from opsfix.transport.settings import BECOME_FAILURES

if TYPE_CHECKING:
    from opsfix.engine.fleet import Engine, Job

ACTED = ("applied", "rolled_back", "partial")


@dataclass(frozen=True)
class _EarlyLock:
    """A try at the lock (and a gather) riding at the end of the first check script."""

    script: str
    lock: HostLock
    gather: tuple[str, ...]
    ride: str


class Interrupted(OpsfixError):
    """Ctrl-C reached this host between two steps: it stops there, nothing half-done."""


class BecomeRefused(OpsfixError):
    """sudo refused the become password (wrong or missing): nothing can run on this host."""


class HostRun:
    """One host's run. `run()` fills the HostReport it was given."""

    def __init__(self, engine: Engine, conn: Connection, job: Job, report: HostReport) -> None:
        self.engine = engine
        self.conn = conn
        self.job = job
        self.report = report
        self.name = job.target.host.name
        self.lock: HostLock | None = None
        self.would_change = False  # dry run: a previous step would already change the host
        self.baseline_is_current = False  # see run() and baseline()
        self.ridden: dict[tuple[str, bool], CommandResult] = {}  # see riders()
        self.commit: str | None = None  # the last transaction's commit, not yet sent
        self.touched = False  # a transaction or a recovery ran here (even one refused)
        self.stray_lock: HostLock | None = None  # see took_early
        # the first repairable step's gather, run with the lock in the first checks
        self.early_gathered: tuple[tuple[str, ...], CommandResult | None] | None = None

    @property
    def check_limit(self) -> float | None:
        """The limit on check commands, or None when no command can get longer anyway
        (the host's command limit is no longer than a check's)."""
        check_limit = self.engine.check_timeout
        return check_limit if check_limit < self.job.spec.command_timeout else None

    @property
    def may_be_cut(self) -> bool:
        """Safe to drop the connection now (Ctrl-C): no lock held, so no change under way."""
        return self.lock is None or not self.lock.held

    def run(self) -> None:
        steps = self.job.target.steps
        probes = self.baseline_probes() if self.engine.mode == "apply" else []
        riders = self.riders()
        early = self.early_lock()
        began = time.monotonic()
        before, (scan, *extra) = self.check_all(
            [s.check for s in steps],
            extra=[self.scan_command(), *probes],
            # last, and like verify's riders never run again if the check limit cuts it
            riders=[*(script for script, _ in riders), *([early.script] if early else [])],
        )
        current, first_ridden = extra[: len(probes)], extra[len(probes) :]
        if early is not None:
            self.took_early(early, first_ridden.pop())
        # the known-good baselines already match this host: unless this run changes it,
        # recording them again (a round trip) can be skipped
        self.baseline_is_current = bool(probes) and all(r.ok for r in current)
        unfinished = recovery.parse_scan(scan)
        recovered = True
        if unfinished and self.engine.mode == "apply":
            self.early_gathered = None  # gathered before the recovery changed the host
            self.touched = True
            self.take_lock()
            recovered = self.recover()
            self.baseline_is_current = False
            before = self.check_all([s.check for s in steps])[0]
        elif unfinished:
            self.report.notes += [
                f"unfinished transaction {u.txid} ({u.state}): the next apply restores it"
                for u in unfinished
            ]
        judged = time.monotonic() - began
        self.report.steps = [
            StepReport(s.label, before=b, duration=judged)
            for s, b in zip(steps, before, strict=True)
        ]
        try:
            if self.engine.mode != "check" and recovered:
                changed = False
                for step, step_report in zip(steps, self.report.steps, strict=True):
                    began = time.monotonic()
                    changed |= self.repair(step, step_report, changed)
                    step_report.duration += time.monotonic() - began
                if changed:
                    # the host is given back in the same round trip: nothing changes after
                    lock = self.lock if self.lock is not None and self.lock.held else None
                    release = [lock.release_script()] if lock else []
                    # the last transaction's commit too: nothing acts after these checks
                    commit = [self.commit] if self.commit else []
                    # and the baselines' probes: if the repair brought back the known-good
                    # state (a restored config), there is nothing new to remember
                    began = time.monotonic()
                    after, rest = self.check_all(
                        [s.check for s in steps],
                        extra=[*probes, *commit, *release],
                        riders=[script for script, _ in riders],
                    )
                    self.commit = None  # sent (if the script never ran, `finally` tries)
                    current, rest = rest[: len(probes)], rest[len(probes) :]
                    self.baseline_is_current = bool(probes) and all(r.ok for r in current)
                    released = rest[len(commit) : len(commit) + len(release)]
                    ridden = rest[len(commit) + len(release) :]
                    if lock is not None:
                        lock.released(released[0])
                    # nothing changes after this script: what rode along is the final state
                    self.ridden = dict(zip(riders, ridden, strict=True))
                    judged = time.monotonic() - began
                    for step_report, outcome in zip(self.report.steps, after, strict=True):
                        step_report.after = outcome
                        step_report.duration += judged
            for step_report in self.report.steps:
                step_report.after = step_report.after or step_report.before
            self.report.status = self.status()
            if not recovered:
                self.report.status = "failed"
                self.report.reason = (
                    "an unfinished transaction could not be restored: nothing else was done "
                    "here; a person should look (see the notes)"
                )
        finally:
            self.send_commit()
            self.release_lock()
        if not self.touched:  # what rode along with the first checks still holds
            self.ridden = dict(zip(riders, first_ridden, strict=True))

    def riders(self) -> list[tuple[str, bool]]:
        """Commands verify will run here, sent with the first checks and again with the
        checks after a repair (the last script of a run that changes the host): verify
        then needs no round trip of its own. The results count only from a script that
        no change followed."""
        verifier = self.engine.verifier
        if self.engine.mode != "apply" or verifier is None:
            return []
        return verifier.riders(self.job.target, self.job.spec)

    def send_commit(self) -> None:
        """Record a commit still held back (the run ended early: Ctrl-C, another step)."""
        commit, self.commit = self.commit, None
        if commit:
            try:
                self.conn.run(commit)
            except OpsfixError as exc:
                self.report.notes.append(
                    f"could not record a committed transaction ({exc}); the next apply "
                    "finds it applied and restores its backup, then repairs again"
                )

    def release_lock(self) -> None:
        """Give the host back; failing to (a lost connection) must not hide why the run ended.

        A try at the lock that the check limit cut short may have taken it: that lease is
        given back too (the release script removes a lease only if it is this run's)."""
        lock = self.lock
        if lock is None and self.stray_lock is not None:
            lock = self.stray_lock
            lock.held = True
        if lock is None:
            return
        try:
            lock.release()
        except OpsfixError as exc:
            self.report.notes.append(
                f"could not release the host lock ({exc}); the next run takes it over "
                "once this one has ended"
            )

    @property
    def state_dir(self) -> str:
        return str(self.job.target.vars.get("opsfix_state_dir", STATE_DIR))

    @property
    def backup_dir(self) -> str:
        return str(self.job.target.vars.get("opsfix_backup_dir", BACKUP_DIR))

    def scan_command(self) -> str:
        return recovery.scan_command(self.state_dir)

    def recover(self) -> bool:
        """Under the lock, restore every transaction a dead run left unfinished.

        False when one could not be restored: then this host is left to a person.
        """
        result = self.conn.run(self.scan_command())
        all_ok = True
        for item in recovery.parse_scan(result):
            ok, note = recovery.recover(
                self.conn, item, state_dir=self.state_dir, backup_dir=self.backup_dir
            )
            self.report.notes.append(note)
            all_ok &= ok
        return all_ok

    def status(self) -> HostStatus:
        attention = [
            r.attention
            for s in self.report.steps
            for r in s.remediations
            if r.status == "applied" and r.attention
        ]
        if attention:  # brought back, but only part of the way: a person finishes it
            self.report.reason = "; ".join(attention)
            return "failed"
        failing = [s for s in self.report.steps if s.after is None or not s.after.ok]
        if failing:
            deferred = [s for s in failing if any(r.status == "deferred" for r in s.remediations)]
            names = ", ".join(s.name for s in failing)
            if len(deferred) == len(failing):
                self.report.reason = f"repairs deferred: {names}"
                return "deferred"
            self.report.reason = f"still failing: {names}"
            return "failed"
        applied = any(r.status == "applied" for s in self.report.steps for r in s.remediations)
        return "repaired" if applied else "healthy"

    def repair(self, step: BoundStep, step_report: StepReport, changed: bool) -> bool:
        """Try the step's remediations in order until its check passes. True if any acted.

        Only a check that *failed* is repaired: an error means the check could not tell,
        which is never read as broken (nor as healthy)."""
        if step_report.before.status == "error" and step.remediations:
            self.report.notes.append(
                f"{step.label}: the check could not tell, so it was not repaired"
            )
        if step_report.before.status != "failed":
            return False
        if changed and not self.current_fails(step, step_report):
            return False
        flapping = self.flapping(step)
        if flapping:
            step_report.remediations.append(
                RemediationOutcome(step.remediations[0].name, "refused", flapping)
            )
            return False
        acted = False
        for remediation in step.remediations:
            if self.engine.cancelled:
                raise Interrupted(f"interrupted before {remediation.name} on {step.label}")
            self.engine.on_event(self.name, f"{step.label}: {remediation.name}")
            deferral = self.deferral(remediation)
            if deferral and not self.engine.override_reason:
                step_report.remediations.append(
                    RemediationOutcome(remediation.name, "deferred", deferral)
                )
                continue
            gather = remediation.gather()
            waited, gathered = False, None
            if self.engine.mode == "apply":  # the first lock's round trip also gathers
                waited, gathered = self.take_lock(gather)
            if waited and not acted and not self.current_fails(step, step_report):
                return acted  # the run we waited for fixed it
            outcome = self.remediate(step.check, remediation, gather, gathered)
            if deferral:
                outcome.reason += f" [{deferral}; overridden: {self.engine.override_reason}]"
            step_report.remediations.append(outcome)
            acted |= outcome.status in ACTED
            if outcome.status == "applied":
                step_report.after = outcome.recheck
                break
            if outcome.status in ("would_change", "cannot_tell"):
                self.would_change = True
                break
        return acted

    def current_fails(self, step: BoundStep, step_report: StepReport) -> bool:
        """Re-run one check; if it passes now, record that and say so."""
        current = self.check_all([step.check])[0][0]
        if current.status != "failed":
            step_report.after = current
        return current.status == "failed"

    def early_lock(self) -> _EarlyLock | None:
        """The lock, and the gather of the first step that has remediations, to end the
        first check script with, taken there only if that step's first command failed
        (`nginx -t`, `pgrep` of a stopped service): a broken host's repair then starts
        without a round trip for the lock. Not when the run changes nothing or the repair
        is deferred (a maintenance window); the flap guard, which reads the run history,
        is asked only once the step is known to fail (a refused repair gives the lock back)."""
        if self.engine.mode != "apply":
            return None
        index = 0
        for step in self.job.target.steps:
            commands = step.check.commands()
            if step.remediations:
                remediation = step.remediations[0]
                if not commands or self.deferral(remediation):
                    return None
                gather = tuple(remediation.gather())
                ride = batch(gather) if gather else ""
                lock = HostLock(self.conn, self.engine.holder, self.engine.lock_settings)
                failed = f'[ "${{{status_var(index)}:-0}}" = 0 ] && exit 0\n'
                return _EarlyLock(failed + lock.try_script(ride), lock, gather, ride)
            index += len(commands)
        return None

    def took_early(self, early: _EarlyLock, result: CommandResult) -> None:
        """Whether the first checks' script took the lock (see early_lock)."""
        if result.exit_status == -1:  # cut short: it may have taken the lease unseen
            self.stray_lock = early.lock
        elif result.stdout and early.lock.tried(result, early.ride):
            self.lock = early.lock
            self.early_gathered = (early.gather, early.lock.ride_result)

    def take_lock(self, gather: Sequence[str] = ()) -> tuple[bool, CommandResult | None]:
        """Lock the host before its first change. Returns whether another run had to
        finish first, and the result of `batch(gather)`, run in the same round trip once
        the host is ours (None if the host was locked already, or it did not run; or,
        when the first checks took the lock, what they gathered for these commands)."""
        if self.lock is not None:
            early, self.early_gathered = self.early_gathered, None
            if early is not None and early[0] == tuple(gather):
                return False, early[1]
            return False, None
        self.lock = HostLock(self.conn, self.engine.holder, self.engine.lock_settings)
        waited = self.lock.acquire(batch(gather) if gather else "")
        if waited:  # another run may have changed the host meanwhile
            self.baseline_is_current = False
        return waited, self.lock.ride_result

    def flapping(self, step: BoundStep) -> str | None:
        """A step repaired too often lately is left for a person (only when it would act)."""
        guard = self.engine.options.flap_guard
        if guard is None or not step.remediations or self.engine.mode == "check":
            return None
        return guard(self.job.target, step)

    def deferral(self, remediation: Remediation[Any]) -> str | None:
        if self.engine.gate is None or not remediation.disruptive:
            return None
        return self.engine.gate(self.job.target, remediation)

    def remediate(
        self,
        check: Check[Any],
        remediation: Remediation[Any],
        gather: Sequence[str],
        gathered: CommandResult | None = None,
    ) -> RemediationOutcome:
        """`gathered`: the result of `batch(gather)` if it already ran (with the lock)."""
        name = remediation.name
        self.send_commit()  # an earlier transaction's: journals are written in order
        if gather and gathered is None:
            gathered = self.conn.run(batch(gather))
        facts = unbatch(gather, gathered) if gathered is not None else []
        try:
            asked = remediation.peer_gather(facts)
            if asked:
                plan = remediation.plan_from_peers(facts, self.engine.ask_peers(self.job, asked))
            else:
                plan = remediation.plan(facts)
        except Exception as exc:
            return RemediationOutcome(name, "error", f"plan failed: {type(exc).__name__}: {exc}")
        if plan.refuse:
            return RemediationOutcome(name, "refused", plan.refuse)
        if plan.is_noop:
            return RemediationOutcome(name, "no_change", plan.summary)
        outcome = RemediationOutcome(name, "applied", plan.summary, attention=plan.attention)
        outcome.commands = [*plan.validate, *plan.act]
        if plan.changes and (self.engine.mode == "dry-run" or self.engine.show_diff):
            current = current_contents(self.conn, plan.changes, None)
            outcome.diff = diff(plan, current, hide=self.engine.is_sensitive)
        tx = Transaction(
            self.conn,
            plan,
            new_txid(name),
            state_dir=self.state_dir,
            backup_dir=self.backup_dir,
        )
        if self.engine.mode == "dry-run":
            return self.dry_run(tx, plan, outcome)
        try:
            return self.transact(tx, plan, check, outcome)
        except (ConnectionFailed, CommandTimeout) as exc:
            self.report.notes.append(
                f"{name}: transaction {tx.txid} was under way when {_cause(exc)}; its journal "
                "on the host says how far it got, and the next apply restores it"
            )
            raise

    def dry_run(
        self, tx: Transaction, plan: Plan, outcome: RemediationOutcome
    ) -> RemediationOutcome:
        """Say what would happen: validated in a scratch copy, nothing on the host changes."""
        if self.would_change:
            outcome.status = "cannot_tell"
            outcome.reason = (
                f"{plan.summary} (cannot tell without acting: an earlier step would change "
                "this host first)"
            )
            return outcome
        if plan.validate:
            checked = tx.validate_only()
            outcome.validate_output = checked.text()
            if not checked.ok:
                outcome.status = "refused"
                outcome.reason = f"{plan.summary}: would be refused, validation fails"
                return outcome
        outcome.status = "would_change"
        return outcome

    def transact(
        self, tx: Transaction, plan: Plan, check: Check[Any], outcome: RemediationOutcome
    ) -> RemediationOutcome:
        """Prepare (backup, stage, validate), apply, re-check; roll back when it did not help."""
        self.touched = True
        outcome.backup_path = tx.backup if plan.changes and plan.backup else None
        # one round trip: acts only if validated, and re-checks once the act has succeeded
        prepared, applied, rechecked = tx.prepare_and_apply(
            after=check.commands(), limit=self.check_limit
        )
        outcome.validate_output = prepared.text()
        if not prepared.ok or applied is None:
            phase = prepared.failed_phase
            outcome.status = "refused"
            outcome.reason = (
                "validation failed: nothing was changed"
                if phase == "validate"
                else f"could not prepare ({phase}): nothing was changed"
            )
            tx.finish("refused")
            return outcome
        if applied.ok:
            outcome.recheck = (
                judge(check, rechecked) if rechecked is not None else self.check_all([check])[0][0]
            )
            if outcome.recheck.ok:
                # sent with the next round trip (the last checks, as a rule): a run that
                # dies first leaves it "applied", which the next apply restores, just as
                # when it dies before a commit of its own round trip
                self.commit = tx.finish_script("committed")
                return outcome
            why = f"re-check still fails: {outcome.recheck.summary}"
            if plan.partial_ok or not plan.backup:
                tx.finish("committed-partial")
                outcome.status, outcome.reason = "partial", f"{plan.summary}; {why}"
                return outcome
        else:
            why = f"{applied.failed_phase} failed: {applied.text()[-500:]}"
        restored = tx.restore()
        outcome.status = "rolled_back"
        outcome.reason = f"{why}; " + (
            "snapshot restored" if restored.ok else f"RESTORE FAILED ({restored.failed_phase})"
        )
        tx.finish("rolled-back" if restored.ok else "restore-failed")
        return outcome

    def check_all(
        self,
        checks: Sequence[Check[Any]],
        extra: Sequence[str] = (),
        riders: Sequence[str] = (),
    ) -> tuple[list[CheckOutcome], list[CommandResult]]:
        """Run the checks' commands (and `extra` ones, then `riders`) in one round trip and
        judge each; the results of `extra` and `riders` are returned as they are. A rider
        the check limit cuts short is not run again (exit status -1); one that repeats a
        command of the script shares that command's result."""
        commands: list[str] = []
        spans = []
        for check in checks:
            mine = check.commands()
            spans.append((len(commands), len(mine)))
            commands.extend(mine)
        # one after another: a check's own probe (say `nginx -t`) must not show up in
        # another check's view of the host (say `pgrep nginx`)
        commands.extend(extra)
        needed = len(commands)
        # a rider that repeats a command of this script (`nginx -t`) shares its result:
        # the same read-only command, a moment later in the same script, tells nothing new
        where: dict[str, int] = {}
        for i, command in enumerate(commands):
            where.setdefault(command, i)
        for rider in riders:
            if rider not in where:
                where[rider] = len(commands)
                commands.append(rider)
        results = self._run_checks(commands, optional=len(commands) - needed) if commands else []
        outcomes = [
            judge(check, results[start : start + count])
            for check, (start, count) in zip(checks, spans, strict=True)
        ]
        ridden = [results[where[rider]] for rider in riders] if results else []
        return outcomes, results[needed - len(extra) : needed] + ridden

    def _run_checks(self, commands: list[str], optional: int = 0) -> list[CommandResult]:
        """The check script, first without a `timeout` process per command.

        The host pays for every process: a `timeout` per command was a third of a typical
        check script's CPU. So the whole script first gets one check's limit; in the rare
        case it runs out (a probe hangs), the commands that had not finished run again,
        each bounded on its own, so a hung probe fails alone and the others still judge.
        The last `optional` commands (verify's riders) are never run again.
        """
        command_limit = self.job.spec.command_timeout
        check_limit = self.engine.check_timeout
        script = batch(commands, parallel=False)
        whole = self.check_limit is None
        try:
            done = self.conn.run(script, timeout=self.check_limit)
            return self._unbatched(commands, done)
        except CommandTimeout as cut:
            cut_short = CommandResult(script, -1, cut.stdout, cut.stderr)
            results = unbatch(commands, cut_short)
            needed = len(commands) - optional
            rest = [i for i, r in enumerate(results[:needed]) if r.exit_status == -1]
            if not rest:  # only optional commands were cut short
                return results
            if whole:
                raise
        again = [commands[i] for i in rest]
        # a `timeout` inside the script runs in a process group of its own, which the
        # host's limit on the whole script does not reach: keep it within that limit
        limit = min(check_limit, command_limit + 1)
        redone = self._unbatched(again, self.conn.run(batch(again, parallel=False, timeout=limit)))
        for i, result in zip(rest, redone, strict=True):
            results[i] = result
        return results

    @staticmethod
    def _unbatched(commands: list[str], result: CommandResult) -> list[CommandResult]:
        if result.exit_status == 1 and result.stderr in BECOME_FAILURES:
            raise BecomeRefused(result.stderr)
        return unbatch(commands, result)

    def baseline(self) -> None:
        """Let remediations remember this healthy state (e.g. a known-good config).

        The engine calls it only after the host also passed verify. Nothing to do when the
        run changed nothing and the baselines matched the host when it was checked.
        """
        if self.baseline_is_current:
            return
        steps = self.job.target.steps
        commands = list(
            dict.fromkeys(c for s in steps for r in s.remediations for c in r.baseline())
        )
        if commands:
            self.conn.run(batch(commands, parallel=False))

    def baseline_probes(self) -> list[str]:
        """Each remediation's check that its baseline is current; [] if one has none."""
        remediations = [r for s in self.job.target.steps for r in s.remediations]
        probes = [r.baseline_current() for r in remediations if r.baseline()]
        if not probes or not all(probes):
            return []
        return list(dict.fromkeys(c for commands in probes for c in commands))


def judge(check: Check[Any], results: Sequence[CommandResult]) -> CheckOutcome:
    """The check's verdict on its commands' results; a check that raises could not tell."""
    cut = [r for r in results if r.truncated]
    if cut:  # a cut text could read as healthy: never judge one
        return CheckOutcome(check.name, "error", f"could not tell: {OUTPUT_CUT}", {})
    try:
        verdict = check.evaluate(results)
    except Exception as exc:
        verdict = CheckResult.error(f"check failed to judge: {type(exc).__name__}: {exc}")
    return CheckOutcome(check.name, verdict.status, verdict.summary, verdict.evidence)


def _cause(exc: ConnectionFailed | CommandTimeout) -> str:
    return exc.reason if isinstance(exc, ConnectionFailed) else "a command timed out"
