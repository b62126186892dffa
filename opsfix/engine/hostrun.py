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
from typing import Any

from opsfix.engine import recovery
from opsfix.engine.lock import HostLock
from opsfix.engine.policy import HostPolicy, Job
from opsfix.engine.session import BecomeRefused, HostSession, Pending
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
from opsfix.shell import OUTPUT_CUT, batch, unbatch
from opsfix.transport.base import CommandResult, Connection

__all__ = ["BecomeRefused", "HostRun", "Interrupted", "judge"]

ACTED = ("applied", "rolled_back", "partial")
Key = tuple[str, bool]  # a verify command: (script, become)


@dataclass(frozen=True)
class _EarlyLock:
    """A try at the lock riding with the first checks, and the gather riding with it."""

    pending: Pending
    gather: tuple[str, ...]
    ride: str


class Interrupted(OpsfixError):
    """Ctrl-C reached this host between two steps: it stops there, nothing half-done."""


class HostRun:
    """One host's run. `run()` fills the HostReport it was given."""

    def __init__(self, policy: HostPolicy, conn: Connection, job: Job, report: HostReport) -> None:
        self.policy = policy
        self.job = job
        self.report = report
        self.name = job.target.host.name
        self.steps = job.target.steps
        self.session = HostSession(
            conn, check_limit=policy.check_timeout, command_limit=job.spec.command_timeout
        )
        self.lock = HostLock(self.session, policy.holder, policy.lock)
        self.would_change = False  # dry run: a previous step would already change the host
        self.early: _EarlyLock | None = None  # see ride_lock_try
        self.probes: list[Pending] = []  # the baselines' probes, from the last full check
        self.verify_rides: dict[Key, Pending] = {}  # verify's commands, likewise

    @property
    def may_be_cut(self) -> bool:
        """Safe to drop the connection now (Ctrl-C): no lock held, so no change under way."""
        return not self.lock.held

    def run(self) -> None:
        """Check; restore what a dead run left; repair each failing step as a transaction;
        check again; give the host back."""
        began = time.monotonic()
        before, recovered = self.check_first()
        judged = time.monotonic() - began
        self.report.steps = [
            StepReport(s.label, before=b, duration=judged)
            for s, b in zip(self.steps, before, strict=True)
        ]
        try:
            if recovered and self.policy.mode != "check" and self.repair_all():
                self.check_again()
            self.report.status = self.status(recovered)
        finally:
            self.give_back()

    def check_first(self) -> tuple[list[CheckOutcome], bool]:
        """The first checks, and whether nothing a dead run left stands in the way (an
        apply restores it first, under the lock, then checks again)."""
        checks = self.ride_checks()
        scan = self.session.ride(self.scan_command())
        self.ride_evidence()
        self.early = self.ride_lock_try(checks)
        self.session.send()
        if self.early is not None:
            self.lock.tried(self.early.pending.result, self.early.ride)
        before = self.judged(checks)
        unfinished = recovery.parse_scan(scan.result)
        if unfinished and self.policy.mode == "apply":
            self.take_lock()
            recovered = self.recover()
            return self.check([s.check for s in self.steps]), recovered
        self.report.notes += [
            f"unfinished transaction {u.txid} ({u.state}): the next apply restores it"
            for u in unfinished
        ]
        return before, True

    def repair_all(self) -> bool:
        """Repair each failing step in turn. True if any repair acted."""
        changed = False
        for step, step_report in zip(self.steps, self.report.steps, strict=True):
            began = time.monotonic()
            changed |= self.repair(step, step_report, changed)
            step_report.duration += time.monotonic() - began
        return changed

    def check_again(self) -> None:
        """The checks after a repair: the lock goes back in the same round trip, after the
        commit still held back; nothing changes after, so what rides along (the baselines'
        probes, verify's commands) is the host's final state."""
        began = time.monotonic()
        checks = self.ride_checks()
        self.ride_evidence()
        release = self.session.ride(self.lock.release_script()) if self.lock.held else None
        self.session.send()
        if release is not None:
            self.lock.released(release.result)
        judged = time.monotonic() - began
        for step_report, outcome in zip(self.report.steps, self.judged(checks), strict=True):
            step_report.after = outcome
            step_report.duration += judged

    def ride_checks(self) -> list[list[Pending]]:
        return [[self.session.ride(c) for c in step.check.commands()] for step in self.steps]

    def judged(self, checks: list[list[Pending]]) -> list[CheckOutcome]:
        return [
            judge(step.check, [p.result for p in rides])
            for step, rides in zip(self.steps, checks, strict=True)
        ]

    def ride_evidence(self) -> None:
        """The baselines' probes (a matching baseline needs no recording) and verify's
        commands (verify then needs no round trip of its own), with a full check. Their
        results count only while fresh: no change followed them."""
        if self.policy.mode != "apply":
            return
        self.probes = [self.session.ride(probe) for probe in self.baseline_probes()]
        riders = self.policy.verify_riders
        keys = riders(self.job.target, self.job.spec) if riders is not None else []
        # like the try at the lock, never run again when the check limit cuts them
        self.verify_rides = {key: self.session.ride(key[0], optional=True) for key in keys}

    @property
    def ridden(self) -> dict[Key, CommandResult]:
        """Verify's commands' results, from a script no change followed (else none)."""
        return {key: p.result for key, p in self.verify_rides.items() if p.fresh}

    def give_back(self) -> None:
        """Record a commit still held back (the run ended early: Ctrl-C, another step) and
        release the lock; failing to (a lost connection) must not hide why the run ended."""
        try:
            self.session.close()
        except OpsfixError as exc:
            self.report.notes.append(
                f"could not record a committed transaction ({exc}); the next apply "
                "finds it applied and restores its backup, then repairs again"
            )
        try:
            self.lock.release()
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
        result = self.session.run(self.scan_command())
        all_ok = True
        for item in recovery.parse_scan(result):
            ok, note = recovery.recover(
                self.session.changing, item, state_dir=self.state_dir, backup_dir=self.backup_dir
            )
            self.report.notes.append(note)
            all_ok &= ok
        return all_ok

    def status(self, recovered: bool) -> HostStatus:
        """The host's verdict (its reason too), once every step has its `after`."""
        for step_report in self.report.steps:
            step_report.after = step_report.after or step_report.before
        if not recovered:
            self.report.reason = (
                "an unfinished transaction could not be restored: nothing else was done "
                "here; a person should look (see the notes)"
            )
            return "failed"
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
            if self.policy.cancelled():
                raise Interrupted(f"interrupted before {remediation.name} on {step.label}")
            self.policy.on_event(self.name, f"{step.label}: {remediation.name}")
            deferral = self.deferral(remediation)
            if deferral and not self.policy.override_reason:
                step_report.remediations.append(
                    RemediationOutcome(remediation.name, "deferred", deferral)
                )
                continue
            gather = remediation.gather()
            waited, gathered = False, None
            if self.policy.mode == "apply":  # the first lock's round trip also gathers
                waited, gathered = self.take_lock(gather)
            if waited and not acted and not self.current_fails(step, step_report):
                return acted  # the run we waited for fixed it
            outcome = self.remediate(step.check, remediation, gather, gathered)
            if deferral:
                outcome.reason += f" [{deferral}; overridden: {self.policy.override_reason}]"
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
        current = self.check([step.check])[0]
        if current.status != "failed":
            step_report.after = current
        return current.status == "failed"

    def ride_lock_try(self, checks: list[list[Pending]]) -> _EarlyLock | None:
        """A try at the lock, and the gather of the first step that has remediations, to
        end the first checks with, run only if that step's first command failed (`nginx
        -t`, `pgrep` of a stopped service): a broken host's repair then starts without a
        round trip for the lock. Last, and never run again if the check limit cuts it (a
        cut try may have taken the lease unseen: see HostLock.tried). Not when the run
        changes nothing or the repair is deferred (a maintenance window); the flap guard,
        which reads the run history, is asked only once the step is known to fail (a
        refused repair gives the lock back)."""
        if self.policy.mode != "apply":
            return None
        repairable = [(s, r) for s, r in zip(self.steps, checks, strict=True) if s.remediations]
        if not repairable:
            return None
        step, rides = repairable[0]
        if not rides or self.deferral(step.remediations[0]):
            return None
        gather = tuple(step.remediations[0].gather())
        ride = batch(gather) if gather else ""
        tried = self.session.ride(self.lock.try_script(ride), optional=True, if_failed=rides[0])
        return _EarlyLock(tried, gather, ride)

    def take_lock(self, gather: Sequence[str] = ()) -> tuple[bool, CommandResult | None]:
        """Lock the host before its first change. Returns whether another run had to
        finish first, and the result of `batch(gather)`, run in the same round trip once
        the host is ours (None if it did not run; if the host was locked already, what the
        first checks' try gathered for these commands, while nothing changed since)."""
        if self.lock.held:
            early = self.early
            fresh = early is not None and early.pending.fresh and early.gather == tuple(gather)
            return False, self.lock.ride_result if fresh else None
        waited = self.lock.acquire(batch(gather) if gather else "")
        if waited:  # another run may have changed the host meanwhile
            self.session.host_changed()
        return waited, self.lock.ride_result

    def flapping(self, step: BoundStep) -> str | None:
        """A step repaired too often lately is left for a person (only when it would act)."""
        guard = self.policy.flap_guard
        if guard is None or not step.remediations or self.policy.mode == "check":
            return None
        return guard(self.job.target, step)

    def deferral(self, remediation: Remediation[Any]) -> str | None:
        if self.policy.gate is None or not remediation.disruptive:
            return None
        return self.policy.gate(self.job.target, remediation)

    def remediate(
        self,
        check: Check[Any],
        remediation: Remediation[Any],
        gather: Sequence[str],
        gathered: CommandResult | None = None,
    ) -> RemediationOutcome:
        """`gathered`: the result of `batch(gather)` if it already ran (with the lock)."""
        name = remediation.name
        if gather and gathered is None:
            gathered = self.session.run(batch(gather))
        facts = unbatch(gather, gathered) if gathered is not None else []
        try:
            asked = remediation.peer_gather(facts)
            if asked:
                plan = remediation.plan_from_peers(facts, self.policy.ask_peers(self.job, asked))
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
        dry = self.policy.mode == "dry-run"
        if plan.changes and (dry or self.policy.show_diff):
            current = current_contents(self.session, plan.changes, None)
            outcome.diff = diff(plan, current, hide=self.policy.is_sensitive)
        tx = Transaction(
            self.session if dry else self.session.changing,
            plan,
            new_txid(name),
            state_dir=self.state_dir,
            backup_dir=self.backup_dir,
        )
        if dry:
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
        outcome.backup_path = tx.backup if plan.changes and plan.backup else None
        # one round trip: acts only if validated, and re-checks once the act has succeeded
        prepared, applied, rechecked = tx.prepare_and_apply(
            after=check.commands(), limit=self.session.limit
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
                judge(check, rechecked) if rechecked is not None else self.check([check])[0]
            )
            if outcome.recheck.ok:
                # sent with the next round trip (the last checks, as a rule): a run that
                # dies first leaves it "applied", which the next apply restores, just as
                # when it dies before a commit of its own round trip
                self.session.before_next_change(tx.finish_script("committed"))
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

    def check(self, checks: Sequence[Check[Any]]) -> list[CheckOutcome]:
        """The checks' verdicts, from one round trip."""
        rides = [[self.session.ride(c) for c in check.commands()] for check in checks]
        self.session.send()
        return [judge(c, [p.result for p in r]) for c, r in zip(checks, rides, strict=True)]

    def baseline(self) -> None:
        """Let remediations remember this healthy state (e.g. a known-good config).

        The engine calls it only after the host also passed verify. Nothing to do when the
        run changed nothing and the baselines matched the host when it was checked.
        """
        commands = self._baseline_commands()
        if commands:
            self.session.run(batch(commands, parallel=False))

    @property
    def wants_baseline(self) -> bool:
        """baseline() has something to record (the engine keeps the connection for it)."""
        return bool(self._baseline_commands())

    def _baseline_commands(self) -> list[str]:
        if self.probes and all(p.fresh and p.result.ok for p in self.probes):
            return []
        steps = self.job.target.steps
        return list(dict.fromkeys(c for s in steps for r in s.remediations for c in r.baseline()))

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
