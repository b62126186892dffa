"""From a run request to a report: load and validate everything, then hand it to the engine.

Everything that can be wrong with the input is found here, before any host is contacted.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from opsfix.engine.fleet import (
    PEER_LIMIT,
    Engine,
    EngineOptions,
    Event,
    FlapGuard,
    Gate,
    Job,
    Mode,
    Record,
)
from opsfix.engine.lock import LockSettings
from opsfix.errors import OpsfixError, OptionsError
from opsfix.evidence.results import RunReport
from opsfix.evidence.state import lazy_store
from opsfix.inventory.host import Host
from opsfix.playbook.binding import BoundStep, Target, bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import LazyVars, TemplateEngine
from opsfix.playbook.variables import parse_extra_vars
from opsfix.registry import load_registry
from opsfix.secret import Secret
from opsfix.transport.base import CommandResult, Connection
from opsfix.transport.keeper.link import KeeperLink
from opsfix.transport.spec import DEFAULT_OUTPUT_LIMIT, ConnectionSpec


@dataclass
class RunRequest:
    playbook: Path
    inventory: list[Path]
    mode: Mode = "apply"
    limit: str | None = None
    forks: int = 50
    extra_vars: list[str] = field(default_factory=list)
    plugin_dirs: list[Path] = field(default_factory=list)
    ssh_config: Path | None = None
    known_hosts: list[str] = field(default_factory=list)
    trust_new_host_keys: bool = False
    become_password: Secret | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    junit_xml: Path | None = None
    serial: list[int | str] | None = None  # overrides the playbook's
    max_fail_percentage: float | None = None  # overrides the playbook's
    show_diff: bool = False
    override_reason: str | None = None
    lock_wait: float = 60.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # window clock
    flap_guard: bool = True  # False: a person decided to repair again anyway
    retry_failed: bool = False  # only the hosts the previous run of this playbook left bad


def builtin_templates() -> Path:
    return Path(str(resources.files("opsfix.templates")))


@dataclass(frozen=True)
class Loaded:
    """What a run loads before it looks at any host: its plugins, the playbook, its
    templates. It depends on the playbook's files alone, so a process running many
    hosts of one playbook (a cluster worker) loads it once."""

    registry: Any
    playbook: Any
    templates: TemplateEngine


def load(request: RunRequest) -> Loaded:
    """Load and validate the plugins and the playbook. Contacts no host."""
    registry = load_registry([request.playbook.parent, *request.plugin_dirs])
    playbook = load_playbook(request.playbook, registry)
    templates = TemplateEngine([playbook.base_dir / "templates", builtin_templates()])
    return Loaded(registry, playbook, templates)


def prepare(
    request: RunRequest, loaded: Loaded | None = None, inventory: Any = None
) -> tuple[Any, list[Job], list[str]]:
    """Load plugins, playbook, inventory and variables; bind every host. Contacts no host.
    `loaded` and `inventory`, when given, stand for what the request names."""
    from opsfix.inventory import load_inventory
    from opsfix.inventory.targeting import target_hosts

    loaded = loaded or load(request)
    playbook, registry, templates = loaded.playbook, loaded.registry, loaded.templates
    if inventory is None:
        inventory = load_inventory(request.inventory)
    hosts, warnings = target_hosts(
        inventory, playbook.hosts, request.limit, playbook.hosts_location
    )
    if request.retry_failed:
        hosts = _previous_failures(playbook.path, hosts, warnings)
    extra = parse_extra_vars(request.extra_vars)
    targets = bind(playbook, hosts, registry, extra, templates, state=lazy_store())
    jobs = []
    from opsfix.transport.settings import prefetch_ssh_config

    prefetch_ssh_config((t.host for t in targets), request.ssh_config)
    for target in targets:
        conn_host = target.host.with_extra_vars(extra)
        spec = connection_spec(conn_host, request, target.vars, templates)
        peers = _peer_specs(inventory, target.host, extra, request, templates)
        jobs.append(Job(target, spec, peers))
    return playbook, jobs, warnings


def _peer_specs(
    inventory: Any,
    host: Host,
    extra: dict[str, Any],
    request: RunRequest,
    templates: TemplateEngine,
) -> Callable[[], tuple[ConnectionSpec, ...]]:
    """How to reach the host's peers, worked out only if a repair asks for them (a peer
    whose connection variables are bad is left out: it is only asked, never repaired)."""

    def specs() -> tuple[ConnectionSpec, ...]:
        found = []
        for peer in peers_of(inventory, host)[:PEER_LIMIT]:
            try:
                found.append(connection_spec(peer.with_extra_vars(extra), request, None, templates))
            except OpsfixError:
                continue
        return tuple(found)

    return specs


def peers_of(inventory: Any, host: Host) -> list[Host]:
    """The other hosts of the groups that list `host` itself (not their parents, nor `all`
    or `ungrouped`), in inventory order: a repair may ask them for a known-good copy."""
    direct = [
        g
        for name, g in inventory.groups.items()
        if name not in ("all", "ungrouped") and host.name in g.hosts
    ]
    names = dict.fromkeys(n for g in direct for n in g.hosts if n != host.name)
    return [inventory.hosts[n] for n in names if n in inventory.hosts]


def connection_spec(
    host: Host,
    options: Any,
    variables: Mapping[str, Any] | None = None,
    templates: TemplateEngine | None = None,
) -> ConnectionSpec:
    """How to reach `host`, given the connection options every connecting command takes
    (ssh_config, known_hosts, trust_new_host_keys, become_password, timeouts).

    Templates in its connection variables render against `variables` (default: the
    host's own); every value is checked before any host is contacted.
    """
    from opsfix.transport.connection_vars import render_connection_vars
    from opsfix.transport.settings import resolve_spec

    engine = templates or TemplateEngine()
    scope = variables if variables is not None else LazyVars(host.vars, engine)
    host = render_connection_vars(host, lambda value: engine.render_value(value, scope))
    return resolve_spec(
        host,
        ssh_config=options.ssh_config,
        known_hosts=options.known_hosts,
        trust_new_host_keys=options.trust_new_host_keys,
        become_password=options.become_password,
        connect_timeout=options.connect_timeout,
        command_timeout=options.command_timeout,
        output_limit=options.output_limit,
    )


WINDOW_VARS = ("opsfix_windows", "opsfix_freezes")  # opsfix.windows.parse's names


def window_gate(playbook: Any, jobs: list[Job], now: Callable[[], datetime]) -> Gate | None:
    """Defers disruptive remediations outside a host's maintenance windows or in a freeze.

    Each host's policy comes from the playbook, overridden by its inventory vars
    (`opsfix_windows`, `opsfix_freezes`); a bad value stops the run before it starts.
    """
    if playbook.policy is None and not any(
        key in job.target.host.vars for job in jobs for key in WINDOW_VARS
    ):
        return None  # nothing declared anywhere: no need to import the cron parser
    from opsfix.windows import policy_for_host

    policies = {
        job.target.host.name: policy_for_host(
            playbook.policy, job.target.host.vars, f"inventory vars of {job.target.host.name}"
        )
        for job in jobs
    }
    if not any(policies.values()):
        return None

    def gate(target: Target, remediation: Any) -> str | None:
        policy = policies.get(target.host.name)
        if policy is None:
            return None
        verdict = policy.allows_disruption(now())
        return None if verdict else str(verdict.reason)

    return gate


def secret_values(playbook: Any, jobs: list[Job], request: RunRequest) -> list[str]:
    """Every value that must never be printed: secret_vars, Secret inventory values, sudo."""
    values = [request.become_password.reveal()] if request.become_password else []
    for job in jobs:
        for key in job.target.vars:
            raw = job.target.host.vars.get(key)
            if isinstance(raw, Secret):
                values.append(raw.reveal())
            elif key in playbook.secret_vars:
                try:
                    values.append(str(job.target.vars[key]))
                except Exception:
                    continue
    return values


def run_playbook(
    request: RunRequest,
    on_event: Event | None = None,
    on_bound: Callable[[], None] | None = None,
    keeper: KeeperLink | None = None,
    on_record: Record | None = None,
    wrap_connect: Callable[[Callable[[ConnectionSpec], Any]], Any] | None = None,
    loaded: Loaded | None = None,
    inventory: Any = None,
) -> tuple[RunReport, list[str], list[str]]:
    """Run a playbook; returns the report, warnings, and the secret values to mask.
    `on_bound` is called once every host is bound, before any is contacted. SSH hosts go
    through `keeper`'s kept connections when given (opsfix.transport.keeper.link). `on_record`
    gets structured progress (engine.Record), first ("secrets", values to mask) before
    any host is contacted; `wrap_connect` may wrap the connector (to log commands).
    `loaded` and `inventory` stand for what the request names, already loaded."""
    from opsfix.transport.keeper.link import connector

    playbook, jobs, warnings = prepare(request, loaded, inventory)
    connect = connector(keeper)  # before on_bound: what it loads is start-up's too
    if wrap_connect is not None:
        connect = wrap_connect(connect)
    if on_bound is not None:
        on_bound()
    gate = window_gate(playbook, jobs, request.now)
    secrets = secret_values(playbook, jobs, request)
    if on_record is not None:
        on_record("secrets", secrets)
    verifier = None
    if playbook.verify and request.mode == "apply":
        verifier = _SuiteVerifier(playbook.verify, request.junit_xml, secrets)
        import_soon("opsfix.verify.suite")  # pytest and testinfra load while hosts are checked
    options = EngineOptions(
        forks=request.forks,
        serial=request.serial or playbook.serial,
        max_fail_percentage=(
            request.max_fail_percentage
            if request.max_fail_percentage is not None
            else playbook.max_fail_percentage
        ),
        show_diff=request.show_diff,
        sensitive_files=playbook.sensitive_files,
        override_reason=request.override_reason,
        gate=gate,
        flap_guard=flap_guard(playbook, request),
        lock=LockSettings(wait=request.lock_wait),
    )
    engine = Engine(
        request.mode,
        connect,
        options=options,
        verifier=verifier,
        on_event=on_event,
        on_record=on_record,
    )
    return engine.run(playbook.name, jobs), warnings, secrets


RETRIED = ("failed", "unreachable", "not_attempted")


def _previous_failures(path: Path, hosts: list[Host], warnings: list[str]) -> list[Host]:
    """--retry-failed: the hosts that failed, were unreachable or were never attempted in
    the last recorded run of this playbook (deferred ones wait for their window)."""
    from opsfix.evidence.state import StateError, open_store

    try:
        previous = open_store().last_run(str(path))
    except StateError as exc:
        raise OptionsError(f"--retry-failed: cannot read run history: {exc}") from None
    if previous is None:
        raise OptionsError(f"--retry-failed: no recorded run of {path}")
    wanted = {host for host, status in previous if status in RETRIED}
    if not wanted:
        warnings.append(f"--retry-failed: the last run of {path} left no failed host")
    return [h for h in hosts if h.name in wanted]


def flap_guard(playbook: Any, request: RunRequest) -> FlapGuard | None:
    """Refuses to repair a step on a host that was repaired max_repairs times within the
    period (from the run history): something keeps breaking it, a person should look."""
    spec = playbook.flap_guard
    if spec is None or not request.flap_guard or request.mode == "check":
        return None
    from opsfix.evidence.state import StateError, lazy_store
    from opsfix.playbook.durations import format_duration, parse_duration

    period = parse_duration(spec.period)
    store = lazy_store()

    def guard(target: Target, step: BoundStep) -> str | None:
        host = target.host.name
        try:
            since = time.time() - period.total_seconds()
            count = store().remediation_count(host, step.label, since)
        except StateError:
            return None  # no history to judge by: the other safeguards still apply
        if count < spec.max_repairs:
            return None
        return (
            f"flap guard: '{step.label}' was repaired {count} time(s) on {host} in the last "
            f"{format_duration(period)}; not repairing again — escalate to a person "
            f"(see `opsfix history --host {host}`; --no-flap-guard to repair anyway)"
        )

    return guard


def import_soon(module: str) -> threading.Thread:
    """Start importing `module` on a daemon thread, so a slow import overlaps with waiting
    for hosts. The real `import` later takes the module from sys.modules, or waits for the
    import still under way (Python's per-module import lock). An import that fails here
    leaves nothing in sys.modules, so the real one runs again and raises as usual."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    thread = threading.Thread(target=load, name=f"import {module}", daemon=True)
    thread.start()
    return thread


class _SuiteVerifier:
    """The playbook's testinfra suites, over the run's own connections (opsfix.verify.suite).

    pytest starts with the first host whose run is done, and each host's tests run as soon
    as that host is done. The commands the tests ran last time (remembered in the state
    folder) start on each host at that moment too, in one round trip; the tests then find
    their results waiting.
    """

    def __init__(self, suites: Sequence[Path], junit: Path | None, secrets: list[str]) -> None:
        from opsfix.evidence.state import state_dir
        from opsfix.verify.lookahead import CommandMemo

        self.suites, self.junit, self.secrets = list(suites), junit, secrets
        self.memo = CommandMemo(state_dir() / "verify-ahead.json", self.suites)
        self.remembered = self.memo.load()
        self._hosts: list[tuple[Target, ConnectionSpec]] = []
        self._run: Any = None  # opsfix.verify.suite.SuiteRun of the current batch, once started
        self._open = False  # between begin() and the call that ends the batch
        self._lock = threading.Lock()

    def begin(self, hosts: list[tuple[Target, ConnectionSpec]]) -> None:
        with self._lock:
            self._hosts, self._run, self._open = list(hosts), None, True

    def riders(self, target: Target, spec: ConnectionSpec) -> list[tuple[str, bool]]:
        """The remembered commands, to ride with the host's check scripts (the first, and
        the last after a repair): its tests then find their results without a round trip
        of their own."""
        from opsfix.verify.lookahead import rides_with

        with self._lock:
            if not self._open:
                return []
        return [key for key in self.remembered if rides_with(key, spec)]

    def ahead(
        self,
        item: tuple[Target, ConnectionSpec, Connection],
        done: dict[tuple[str, bool], CommandResult],
    ) -> None:
        with contextlib.suppress(Exception):  # only an early start: the call runs what it needs
            with self._lock:
                run = self._started() if self._open else None
            if run is not None:
                run.ready(_verify_target(item), done)

    def __call__(
        self, items: list[tuple[Target, ConnectionSpec, Connection]]
    ) -> dict[str, list[Any]]:
        with self._lock:  # the batch ends: a host done after this starts nothing
            run = self._started() if items else self._run
            self._run, self._open = None, False
        if run is None:
            return {}
        try:
            for item in items:
                run.ready(_verify_target(item))  # a host already ready is not run twice
            if not items:
                run.stop()  # nobody to verify (the run was cut short): no test to finish
            results = run.finish()
        except BaseException:  # Ctrl-C: pytest must be done (it holds sys.stdout) first
            run.stop()
            with contextlib.suppress(BaseException):
                run.finish()
            raise
        finally:
            self.memo.save(run.lookahead.noted, unless=self.secrets)
        wanted = {target.host.name for target, _, _ in items}
        return {name: outcomes for name, outcomes in results.items() if name in wanted}

    def _started(self) -> Any:
        """The batch's SuiteRun, made on first use (call with the lock held)."""
        from opsfix.verify.lookahead import Lookahead
        from opsfix.verify.suite import HostInfo, SuiteRun

        if self._run is None:
            hosts = [HostInfo(t.host.name, spec, _plain_vars(t)) for t, spec in self._hosts]
            lookahead = Lookahead(ahead=self.remembered)
            self._run = SuiteRun(self.suites, hosts, self.junit, lookahead)
        return self._run


def _verify_target(item: tuple[Target, ConnectionSpec, Connection]) -> Any:
    from opsfix.verify.lookahead import VerifyTarget

    target, spec, conn = item
    return VerifyTarget(name=target.host.name, connection=conn, spec=spec, vars=_plain_vars(target))


def _plain_vars(target: Target) -> dict[str, Any]:
    """Variables for test suites: rendered where they render, secrets left out."""
    plain = {}
    for key in target.vars:
        try:
            value = target.vars[key]
        except Exception:
            continue
        if not isinstance(value, Secret):
            plain[key] = value
    return plain
