"""Run testinfra suites against a run's hosts, over the connections opsfix already opened.

testinfra alone never checks host keys and logs in a second time; here every testinfra
host gets our verified client (`backend.client`) and runs its commands through our
Connection, so there is one login per host, one set of timeouts and sudo with a password
on stdin. pytest runs in-process once for all hosts, its output captured: opsfix prints
its own report, and each failure's text travels in its VerifyOutcome.

pytest runs one host's tests after another, one command at a time; the commands run on
every host ahead of the tests that ask for them (`opsfix.verify.lookahead`), so hosts do not
wait for each other.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import queue
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testinfra.backend.base import BaseBackend

from opsfix.errors import InputError
from opsfix.evidence.results import VerifyOutcome
from opsfix.secret import Secret
from opsfix.shell import OUTPUT_CUT, cmd
from opsfix.transport.base import CommandResult
from opsfix.transport.registry import ROUTED, transport_for
from opsfix.transport.spec import ConnectionSpec
from opsfix.verify.lookahead import Lookahead, VerifyTarget

SECRET_VARS = frozenset(
    {
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
    }
)
MASK = "********"
_BECOME = ": opsfix-become; "  # marks a command for our become; a no-op if it leaks into a shell
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def run_suites(
    suites: Sequence[Path],
    targets: Sequence[VerifyTarget],
    junit_xml: Path | None = None,
    lookahead: Lookahead | None = None,
) -> dict[str, list[VerifyOutcome]]:
    """Each target's test outcomes, in the order pytest ran them.

    `lookahead` may already be running commands on some of the targets; it is closed here.
    """
    hosts = [HostInfo(t.name, t.spec, t.vars) for t in targets]
    run = SuiteRun(suites, hosts, junit_xml, lookahead)
    for target in targets:
        run.ready(target)
    return run.finish()


@dataclass(frozen=True)
class HostInfo:
    """A host to verify, before it is connected: what its test ids and vars come from."""

    name: str
    spec: ConnectionSpec
    vars: dict[str, Any]


class SuiteRun:
    """One pytest run over a batch of hosts, started when the first host is `ready`.

    Each host's tests run as soon as that host's own run is done, while the others are
    still being checked or repaired: pytest's work overlaps with waiting for hosts instead
    of following it. `finish` says no more hosts will come and returns the outcomes of
    those that came. pytest runs on a thread of its own, its output captured.
    """

    def __init__(
        self,
        suites: Sequence[Path],
        hosts: Sequence[HostInfo],
        junit_xml: Path | None = None,
        lookahead: Lookahead | None = None,
    ) -> None:
        self.suites = list(suites)
        self.lookahead = lookahead or Lookahead()
        missing = [str(s) for s in self.suites if not Path(s).exists()]
        if missing:
            self.lookahead.close()
            raise InputError(f"verify suite not found: {', '.join(missing)}")
        self.plugin = _OpsfixVerifyPlugin(hosts, self.lookahead)
        self.junit_xml = junit_xml
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._exit_code = 0
        self._output = ""
        self._error: BaseException | None = None

    def ready(
        self, target: VerifyTarget, done: Mapping[tuple[str, bool], CommandResult] | None = None
    ) -> None:
        """`target`'s run is done: its tests may run (over its connection) from now on.
        `done`: remembered commands that already ran there (see Lookahead.add)."""
        if target.name not in self.lookahead.targets:
            self.lookahead.add(target, done)
        self.plugin.ready.put(target)
        self._start()

    def stop(self) -> None:
        """Run no further test (the one under way finishes)."""
        self.plugin.stop = True

    def finish(self) -> dict[str, list[VerifyOutcome]]:
        """Wait for the tests of every host that was ready; their outcomes."""
        self.plugin.ready.put(None)
        self._start()
        # not Thread.join: on Python < 3.13 a join cut by Ctrl-C marks a running thread as
        # stopped (bpo-45274), and a second join returns at once
        try:
            self._done.wait()
        except KeyboardInterrupt:  # stop after the test under way; pytest puts stdout back
            self.stop()
            self._done.wait(10)
            raise
        if self._error is not None:
            raise self._error
        return self.plugin.results(self._exit_code, self._output)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="verify", daemon=True)
                self._thread.start()

    def _main(self) -> None:
        output = io.StringIO()
        try:
            if not self.plugin.names or not self.suites:
                return
            args = _pytest_args(self.suites, self.plugin.hostspecs, self.junit_xml)
            with (
                _fresh_imports(self.suites),
                _fresh_testinfra_hosts(),
                _routed_backend(),
                contextlib.redirect_stdout(output),
                contextlib.redirect_stderr(output),
                _no_plugin_autoload(),
            ):
                plugins = [self.plugin, _fixtures(self.plugin.vars_by_id)]
                self._exit_code = int(pytest.main(args, plugins))
        except BaseException as exc:  # surfaces in finish(), on the caller's thread
            self._error = exc
        finally:
            self._output = output.getvalue()
            self.lookahead.close()
            self._done.set()


def public_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """A host's vars as a test sees them: password variables left out, other secrets masked."""
    return {
        k: _masked(v)
        for k, v in variables.items()
        if k not in SECRET_VARS and not isinstance(v, Secret)
    }


def _masked(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _pytest_args(suites: Sequence[Path], hostspecs: list[str], junit_xml: Path | None) -> list[str]:
    """Ignore any ini file near the suites: its addopts (xdist, coverage) would change the run."""
    paths = [str(Path(s).resolve()) for s in suites]
    args = [
        *paths,
        f"--hosts={','.join(hostspecs)}",
        f"--rootdir={_common_dir(paths)}",
        "-c", os.devnull,
        "-p", "no:cacheprovider",
        # Only testinfra: a plugin that happens to be installed (xdist, cov, hypothesis's
        # import of ~0.3 s of CPU at the end) must not change or slow the run.
        "-p", "testinfra.plugin",
        # Less work per test: plugins a verify run has no use for (unraisableexception
        # runs gc.collect() at the end, ~40 ms each; logging and warnings wrap every phase
        # of every test), and capture without dup2 per phase.
        *("-p", "no:doctest", "-p", "no:pastebin", "-p", "no:stepwise"),
        *("-p", "no:unraisableexception", "-p", "no:threadexception", "--capture=sys"),
        *("-p", "no:logging", "-p", "no:warnings", "-p", "no:recwarn", "-p", "no:debugging"),
        *("-p", "no:faulthandler", "-p", "no:setuponly", "-p", "no:setupplan"),
        *("-p", "no:python_path", *(() if junit_xml else ("-p", "no:junitxml"))),
        "--import-mode=importlib",
        # no terminal report: opsfix prints its own (a fifth of pytest's work per test);
        # what pytest itself says on a usage or internal error still reaches its stderr
        "-p", "no:terminal",
    ]  # fmt: skip
    if junit_xml:
        args.append(f"--junitxml={junit_xml}")
    return args


def _common_dir(paths: list[str]) -> str:
    dirs = [p if os.path.isdir(p) else os.path.dirname(p) for p in paths]
    return os.path.commonpath(dirs)


@contextlib.contextmanager
def _fresh_imports(suites: Sequence[Path]) -> Iterator[None]:
    """Forget the suites' modules afterwards: in-process pytest would reuse stale ones."""
    roots = [Path(s).resolve() for s in suites]
    roots = [r if r.is_dir() else r.parent for r in roots]
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(r) for r in roots):
                del sys.modules[name]


@contextlib.contextmanager
def _no_plugin_autoload() -> Iterator[None]:
    """pytest loads no plugin by its entry point; `_pytest_args` names the ones we need."""
    name = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    before = os.environ.get(name)
    os.environ[name] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _fresh_testinfra_hosts() -> Iterator[None]:
    """testinfra caches hosts per --hosts value; a cached one would hold an old client."""
    import testinfra.host

    caches = (testinfra.host.Host._host_cache, testinfra.host.Host._hosts_cache)
    before = [set(c) for c in caches]
    try:
        yield
    finally:
        for cache, keys in zip(caches, before, strict=True):
            for key in set(cache) - keys:
                del cache[key]


class RoutedBackend(BaseBackend):
    """testinfra's backend for a transport testinfra has none of its own for: it runs
    nothing itself; `_attach` routes every command over the run's connection."""

    NAME = ROUTED

    def run(self, command: str, *args: str, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.hostname}: not attached to its opsfix connection")


@contextlib.contextmanager
def _routed_backend() -> Iterator[None]:
    """`opsfix://NAME` hosts while pytest runs (testinfra finds backends in its table)."""
    import testinfra.backend

    testinfra.backend.BACKENDS[ROUTED] = f"{__name__}.RoutedBackend"
    try:
        yield
    finally:
        testinfra.backend.BACKENDS.pop(ROUTED, None)


def _fixtures(vars_by_id: dict[str, dict[str, Any]]) -> object:
    """`opsfix_vars`, as a plugin module of its own.

    A fixture method on a plugin object is deprecated, and pytest reads fixtures off an
    object's class, not the object; off a module it reads the module's own attributes.
    """

    @pytest.fixture(scope="module")
    def opsfix_vars(host: Any) -> dict[str, Any]:
        """The current host's inventory vars, passwords left out (module scope, like `host`)."""
        return public_vars(vars_by_id[host.backend.get_pytest_id()])

    fixtures = types.ModuleType("opsfix_verify_fixtures")
    fixtures.opsfix_vars = opsfix_vars  # type: ignore[attr-defined]
    return fixtures


class _OpsfixVerifyPlugin:
    """Hooks opsfix into pytest: our clients in, per-host outcomes out, `opsfix_vars` fixture,
    and a test loop that takes the hosts as they become ready."""

    def __init__(self, hosts: Sequence[HostInfo], lookahead: Lookahead) -> None:
        self.lookahead = lookahead
        self.ready: queue.Queue[VerifyTarget | None] = queue.Queue()
        self.vars_by_id: dict[str, dict[str, Any]] = {}
        self.id_by_name: dict[str, str] = {}
        self.hostspecs: list[str] = []
        for host in hosts:
            host_id, spec = _hostspec(host.name, host.spec, set(self.vars_by_id))
            self.vars_by_id[host_id] = host.vars
            self.id_by_name[host.name] = host_id
            self.hostspecs.append(spec)
        self.names = [h.name for h in hosts]
        self.verified: list[str] = []  # the hosts that were ready, in that order
        self.stop = False  # Ctrl-C: no further test
        self.items: dict[str, tuple[list[str], str]] = {}
        self.host_of: dict[str, str] = {}  # nodeid -> host id
        self.backends: dict[str, Any] = {}  # host id -> testinfra backend
        self.outcomes: dict[str, dict[str, VerifyOutcome]] = {n: {} for n in self.names}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        name_of = {host_id: name for name, host_id in self.id_by_name.items()}
        for item in items:
            callspec = getattr(item, "callspec", None)
            host = callspec.params.get("_testinfra_host") if callspec else None
            if host is None:  # a test that needs no host counts for every host
                self.items[item.nodeid] = (self.names, item.nodeid)
                continue
            host_id = host.backend.get_pytest_id()
            self.host_of[item.nodeid] = host_id
            self.backends[host_id] = host.backend
            self.items[item.nodeid] = ([name_of[host_id]], _without_id(item.nodeid, host_id))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        """pytest's own loop, but host by host as each becomes ready (see SuiteRun).

        The last test of a host waits for the next ready host, so that pytest knows which
        test comes next and tears down only the fixtures that one does not share.
        """
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        groups: dict[str | None, list[pytest.Item]] = {}
        for item in session.items:
            groups.setdefault(self.host_of.get(item.nodeid), []).append(item)
        held: list[pytest.Item] = []

        def run(items: list[pytest.Item]) -> None:
            todo = held + items
            for item, nextitem in itertools.pairwise(todo):
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop or self.stop:
                    raise session.Interrupted(session.shouldstop or "interrupted")
            held[:] = todo[-1:]

        run(groups.pop(None, []))  # tests that need no host
        while (target := self.ready.get()) is not None:
            host_id = self.id_by_name.get(target.name)
            if host_id is None or target.name in self.verified:
                continue
            self.verified.append(target.name)
            if host_id in self.backends:
                _attach(self.backends[host_id], target, self.lookahead)
            run(groups.pop(host_id, []))
        if held:
            held[0].config.hook.pytest_runtest_protocol(item=held[0], nextitem=None)
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        if outcome is None:
            return
        names, test = self.items.get(report.nodeid, (self.names, report.nodeid))
        for name in names:
            self._record(name, VerifyOutcome(test, outcome[0], outcome[1], report.duration))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            for name in self.names:
                test = report.nodeid or "collection"
                self._record(name, VerifyOutcome(test, "error", report.longreprtext))

    def _record(self, name: str, new: VerifyOutcome) -> None:
        """Setup, call and teardown of one test fold into one outcome: the worst one."""
        old = self.outcomes[name].get(new.test)
        if old is None or _RANK[new.outcome] > _RANK[old.outcome]:
            message = "\n".join(m for m in (old and old.message, new.message) if m)
            self.outcomes[name][new.test] = VerifyOutcome(new.test, new.outcome, message)
        self.outcomes[name][new.test].duration += new.duration + (old.duration if old else 0.0)

    def results(self, exit_code: int, output: str) -> dict[str, list[VerifyOutcome]]:
        """Outcomes of the hosts that were ready; if pytest itself failed and ran nothing,
        say so for each of them."""
        if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not any(
            self.outcomes.values()
        ):
            for name in self.verified or self.names:
                self._record(name, VerifyOutcome("pytest", "error", output.strip()))
        names = self.verified or ([] if self.host_of else self.names)
        return {name: list(self.outcomes[name].values()) for name in names}


def _hostspec(name: str, spec: ConnectionSpec, taken: set[str]) -> tuple[str, str]:
    """testinfra's host spec and the test id it yields, of the backend the host's transport
    names (opsfix.transport.registry).

    A host is named by its inventory name, not its address: ids would collide for hosts
    that differ only by port, and the name is never used to connect (our connection is).
    testinfra's local backend has one id whatever the host: one such host per run.
    """
    query = f"?sudo=true&sudo_user={spec.become_user}" if spec.become else ""
    backend = transport_for(spec).testinfra
    if backend == "local":
        if "local" in taken:
            raise InputError(f"verify: only one local host per run ({name} is the second)")
        return "local", f"local://{query}"
    token = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "host"
    candidate, n = token, 1
    while f"{backend}://{candidate}" in taken:
        n += 1
        candidate = f"{token}-{n}"
    return f"{backend}://{candidate}", f"{backend}://{candidate}{query}"


def _attach(backend: Any, target: VerifyTarget, lookahead: Lookahead) -> None:
    """Route testinfra's commands through our connection, with our become; the transport
    wires whatever else its testinfra backend holds (ssh: our verified client)."""
    transport = transport_for(target.spec)
    if transport.attach is not None:
        transport.attach(backend, target.connection, target.spec)
    backend.get_sudo_command = _sudo_command(target.spec)
    backend.run = _routed_run(backend, target.name, lookahead)


def _sudo_command(spec: ConnectionSpec) -> Callable[[str, str | None], str]:
    """sudo to the become user becomes our become (password on stdin); others use sudo -n."""

    def get_sudo_command(command: str, user: str | None) -> str:
        if user in (None, spec.become_user):
            return _BECOME + command
        return cmd("sudo", "-H", "-n", "-u", user, "--", "/bin/sh", "-c", command)

    return get_sudo_command


class OutputCut(Exception):
    """A verify command printed past the output limit: its test errors, never passes."""


def _routed_run(backend: Any, host: str, lookahead: Lookahead) -> Callable[..., Any]:
    def run(command: str, *args: str, **kwargs: Any) -> Any:
        script = backend.get_command(command, *args)
        become = script.startswith(_BECOME)
        while script.startswith(_BECOME):
            script = script[len(_BECOME) :]
        result = lookahead.run(host, script, become)
        if result.truncated:  # a test must not pass on a cut text: it could not tell
            raise OutputCut(f"{host}: {OUTPUT_CUT}")
        return backend.result(result.exit_status, script.encode(), result.stdout, result.stderr)

    return run


def _without_id(nodeid: str, host_id: str) -> str:
    """`t.py::test_x[paramiko://web1-80]` -> `t.py::test_x[80]`; the host is known already."""
    for pattern, repl in ((f"[{host_id}]", ""), (f"[{host_id}-", "["), (f"-{host_id}]", "]")):
        nodeid = nodeid.replace(pattern, repl)
    return nodeid.replace(f"-{host_id}-", "-")


def _outcome(report: pytest.TestReport) -> tuple[Any, str] | None:
    """One phase's verdict: setup/teardown count only when they did not pass."""
    if report.passed:
        return ("passed", "") if report.when == "call" else None
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skipped", reason
    text = report.longreprtext
    for title, content in report.sections:
        text += f"\n--- {title} ---\n{content}"
    return ("failed" if report.when == "call" else "error"), text
