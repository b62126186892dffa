"""Run testinfra suites against a run's hosts, over the connections opsfix already opened.

testinfra alone never checks host keys and logs in a second time; here every testinfra
host gets our verified client (`backend.client`) and runs its commands through our
Connection, so there is one login per host, one set of timeouts and sudo with a password
on stdin. pytest runs in-process once for all hosts, its output captured: opsfix prints
its own report, and each failure's text travels in its VerifyOutcome.

pytest runs one host's tests after another, one command at a time; the commands run on
every host ahead of the tests that ask for them (`opsfix.lookahead`), so hosts do not
wait for each other.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from opsfix.errors import InputError
from opsfix.hosts import ConnectionSpec, Secret
from opsfix.lookahead import Lookahead, VerifyTarget
from opsfix.results import VerifyOutcome
from opsfix.shell import cmd

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
    lookahead = lookahead or Lookahead()
    missing = [str(s) for s in suites if not Path(s).exists()]
    if missing:
        lookahead.close()
        raise InputError(f"verify suite not found: {', '.join(missing)}")
    if not targets or not suites:
        lookahead.close()
        return {t.name: [] for t in targets}
    for target in targets:
        if target.name not in lookahead.targets:
            lookahead.add(target)
    plugin = _OpsfixVerifyPlugin(targets, lookahead)
    output = io.StringIO()
    args = _pytest_args(suites, plugin.hostspecs, junit_xml)
    with (
        _fresh_imports(suites),
        _fresh_testinfra_hosts(),
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
        contextlib.closing(lookahead),
        _no_plugin_autoload(),
    ):
        exit_code = pytest.main(args, [plugin, _fixtures(plugin.by_id)])
    return plugin.results(int(exit_code), output.getvalue())


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
        "-q",
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


def _fixtures(by_id: dict[str, VerifyTarget]) -> object:
    """`opsfix_vars`, as a plugin module of its own.

    A fixture method on a plugin object is deprecated, and pytest reads fixtures off an
    object's class, not the object; off a module it reads the module's own attributes.
    """

    @pytest.fixture(scope="module")
    def opsfix_vars(host: Any) -> dict[str, Any]:
        """The current host's inventory vars, passwords left out (module scope, like `host`)."""
        return public_vars(by_id[host.backend.get_pytest_id()].vars)

    fixtures = types.ModuleType("opsfix_verify_fixtures")
    fixtures.opsfix_vars = opsfix_vars  # type: ignore[attr-defined]
    return fixtures


class _OpsfixVerifyPlugin:
    """Hooks opsfix into pytest: our clients in, per-host outcomes out, `opsfix_vars` fixture."""

    def __init__(self, targets: Sequence[VerifyTarget], lookahead: Lookahead) -> None:
        self.lookahead = lookahead
        self.by_id: dict[str, VerifyTarget] = {}
        self.hostspecs: list[str] = []
        for target in targets:
            host_id, spec = _hostspec(target, set(self.by_id))
            self.by_id[host_id] = target
            self.hostspecs.append(spec)
        self.names = [t.name for t in targets]
        self.items: dict[str, tuple[list[str], str]] = {}
        self.outcomes: dict[str, dict[str, VerifyOutcome]] = {n: {} for n in self.names}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            host = callspec.params.get("_testinfra_host") if callspec else None
            if host is None:  # a test that needs no host counts for every host
                self.items[item.nodeid] = (self.names, item.nodeid)
                continue
            host_id = host.backend.get_pytest_id()
            target = self.by_id[host_id]
            _attach(host.backend, target, self.lookahead)
            self.items[item.nodeid] = ([target.name], _without_id(item.nodeid, host_id))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        if outcome is None:
            return
        names, test = self.items.get(report.nodeid, (self.names, report.nodeid))
        for name in names:
            self._record(name, VerifyOutcome(test, outcome[0], outcome[1]))

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

    def results(self, exit_code: int, output: str) -> dict[str, list[VerifyOutcome]]:
        """Outcomes per host; if pytest itself failed and ran nothing, say so for every host."""
        if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not any(
            self.outcomes.values()
        ):
            for name in self.names:
                self._record(name, VerifyOutcome("pytest", "error", output.strip()))
        return {name: list(self.outcomes[name].values()) for name in self.names}


def _hostspec(target: VerifyTarget, taken: set[str]) -> tuple[str, str]:
    """testinfra's host spec and the test id it yields.

    An SSH host is named by its inventory name, not its address: ids would collide for
    hosts that differ only by port, and the name is never used to connect (our client is).
    """
    query = f"?sudo=true&sudo_user={target.spec.become_user}" if target.spec.become else ""
    if target.spec.connection == "local":
        if "local" in taken:
            raise InputError(f"verify: only one local host per run ({target.name} is the second)")
        return "local", f"local://{query}"
    token = re.sub(r"[^A-Za-z0-9._-]+", "-", target.name).strip("-") or "host"
    candidate, n = token, 1
    while f"paramiko://{candidate}" in taken:
        n += 1
        candidate = f"{token}-{n}"
    return f"paramiko://{candidate}", f"paramiko://{candidate}{query}"


def _attach(backend: Any, target: VerifyTarget, lookahead: Lookahead) -> None:
    """Give testinfra our verified client and route its commands through our connection."""
    client = target.connection.native_client
    if client is not None:
        backend.client = client  # no second login, no unverified host key
    backend.get_sudo_command = _sudo_command(target.spec)
    backend.run = _routed_run(backend, target.name, lookahead)


def _sudo_command(spec: ConnectionSpec) -> Callable[[str, str | None], str]:
    """sudo to the become user becomes our become (password on stdin); others use sudo -n."""

    def get_sudo_command(command: str, user: str | None) -> str:
        if user in (None, spec.become_user):
            return _BECOME + command
        return cmd("sudo", "-H", "-n", "-u", user, "--", "/bin/sh", "-c", command)

    return get_sudo_command


def _routed_run(backend: Any, host: str, lookahead: Lookahead) -> Callable[..., Any]:
    def run(command: str, *args: str, **kwargs: Any) -> Any:
        script = backend.get_command(command, *args)
        become = script.startswith(_BECOME)
        while script.startswith(_BECOME):
            script = script[len(_BECOME) :]
        result = lookahead.run(host, script, become)
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
