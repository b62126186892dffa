"""What a run found and did, per host: the evidence behind every verdict and action."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HostStatus = Literal[
    "healthy",  # nothing needed doing
    "repaired",
    "failed",  # still unhealthy, a repair refused or rolled back, verify failed, or locked
    "unreachable",
    "deferred",  # unhealthy only where disruptive repairs wait for a maintenance window
    "not_attempted",  # a rolling run stopped before this host's batch
]
RemediationStatus = Literal[
    "applied",  # acted, and the check passed on re-check
    "rolled_back",  # acted, re-check failed, snapshot restored
    "partial",  # acted and kept (it helps), but the check still fails
    "refused",  # could not prove it safe (precondition or validation failed): nothing changed
    "not_needed",  # the check passed before this remediation was tried
    "no_change",  # the plan had nothing to do
    "would_change",  # dry run: would act (diff attached)
    "cannot_tell",  # dry run: depends on an earlier change that a dry run does not make
    "deferred",  # disruptive, and not allowed now (maintenance window, freeze)
    "error",  # the transaction broke (connection lost, timeout); see reason
]


@dataclass
class CheckOutcome:
    check: str
    status: Literal["passed", "failed", "error"]
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "passed"


@dataclass
class RemediationOutcome:
    remediation: str
    status: RemediationStatus
    reason: str = ""
    diff: str = ""
    validate_output: str = ""
    commands: list[str] = field(default_factory=list)
    recheck: CheckOutcome | None = None
    backup_path: str | None = None
    attention: str | None = None  # applied, but a person must finish the repair


@dataclass
class StepReport:
    """One playbook step: a check, what was tried to repair it, and its final verdict."""

    name: str
    before: CheckOutcome
    remediations: list[RemediationOutcome] = field(default_factory=list)
    after: CheckOutcome | None = None
    # seconds: the round trips that judged it (shared with the steps checked alongside)
    # and its own repairs
    duration: float = 0.0


@dataclass
class VerifyOutcome:
    test: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    message: str = ""
    duration: float = 0.0  # seconds: setup, call and teardown


@dataclass
class HostReport:
    host: str
    status: HostStatus
    reason: str = ""
    steps: list[StepReport] = field(default_factory=list)
    verify: list[VerifyOutcome] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. an unfinished transaction restored


@dataclass
class RunReport:
    playbook: str
    mode: Literal["apply", "check", "dry-run", "exec"]  # exec: an ad-hoc command (opsfix exec)
    hosts: list[HostReport] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
