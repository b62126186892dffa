"""The engine's decisions, run for real in a local shell with the test plugins."""

import threading
import time
from pathlib import Path

import pytest

from opsfix.engine.fleet import Engine, EngineOptions, Job
from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.registry import load_registry
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec

from ..localsh import LocalShell, Recording

DATA = Path(__file__).parents[1] / "data"


def bound(tmp_path: Path, body: str, **host_vars):
    """The playbook `body`, with the test plugins, bound to one host h1 (state under tmp)."""
    registry = load_registry([DATA / "plugins"])
    book = tmp_path / "book.yml"
    book.write_text(body)
    playbook = load_playbook(book, registry)
    host_vars |= {
        "d": str(tmp_path),
        "opsfix_state_dir": str(tmp_path / "state"),
        "opsfix_backup_dir": str(tmp_path / "backups"),
    }
    [target] = bind(playbook, [Host("h1", (), host_vars)], registry, {}, TemplateEngine())
    return target


def run(tmp_path: Path, mode: str, body: str, **host_vars):
    target = bound(tmp_path, body, **host_vars)
    engine = Engine(mode, lambda spec: LocalShell())
    return engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]


BOOK = """
hosts: all
checks:
  - check: file_contains
    with: {path: "{{ d }}/conf/f", line: good, count: COUNT}
    remediate:
      - remediation: write_line
        with: {path: "{{ d }}/conf/f", line: LINE, root: "{{ d }}/conf"}
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "f").write_text("bad\n")
    return tmp_path / "conf" / "f"


def book(line: str = "good", count: int = 1) -> str:
    return BOOK.replace("LINE", line).replace("COUNT", str(count))


def test_repairs_and_reports_evidence(tmp_path, conf):
    host = run(tmp_path, "apply", book())
    assert host.status == "repaired"
    step = host.steps[0]
    assert step.before.status == "failed" and step.after.status == "passed"
    [rem] = step.remediations
    assert rem.status == "applied" and rem.recheck.ok
    assert conf.read_text() == "good\n"
    backups = list((tmp_path / "backups").rglob("f"))
    assert [b.read_text() for b in backups] == ["bad\n"]


def test_healthy_host_is_left_alone(tmp_path, conf):
    conf.write_text("good\n")
    host = run(tmp_path, "apply", book())
    assert host.status == "healthy"
    assert host.steps[0].remediations == []
    assert not (tmp_path / "backups").exists()


def test_validation_failure_refuses_and_changes_nothing(tmp_path, conf):
    host = run(tmp_path, "apply", book(line="FORBIDDEN"))
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "refused" and "validation failed" in rem.reason
    assert conf.read_text() == "bad\n"


def test_failed_recheck_rolls_back(tmp_path, conf):
    host = run(tmp_path, "apply", book(count=2))
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "rolled_back" and "snapshot restored" in rem.reason
    assert conf.read_text() == "bad\n"


def test_dry_run_shows_diff_and_changes_nothing(tmp_path, conf):
    host = run(tmp_path, "dry-run", book())
    [rem] = host.steps[0].remediations
    assert rem.status == "would_change"
    assert "-bad\n+good\n" in rem.diff
    assert conf.read_text() == "bad\n"
    assert not (tmp_path / "state").exists() and not (tmp_path / "backups").exists()


def test_check_mode_never_remediates(tmp_path, conf):
    host = run(tmp_path, "check", book())
    assert host.status == "failed"
    assert host.steps[0].remediations == []
    assert conf.read_text() == "bad\n"


def test_unreadable_is_error_not_pass(tmp_path):
    host = run(tmp_path, "check", book())
    assert host.steps[0].before.status == "error"
    assert host.status == "failed"


def test_a_check_that_cannot_tell_is_never_repaired(tmp_path):
    """docs/checks.md: an error is never read as broken, so no remediation runs for it
    (write_line would create the missing file)."""
    (tmp_path / "conf").mkdir()
    host = run(tmp_path, "apply", book())
    step = host.steps[0]
    assert step.before.status == "error" and step.remediations == []
    assert host.status == "failed"
    assert not (tmp_path / "conf" / "f").exists()
    assert host.notes == ["file_contains: the check could not tell, so it was not repaired"]


def test_partial_help_is_kept_and_the_host_still_fails(tmp_path, conf):
    body = book(count=2).replace('root: "{{ d }}/conf"}', 'root: "{{ d }}/conf", partial: true}')
    host = run(tmp_path, "apply", body)
    assert host.status == "failed"
    [rem] = host.steps[0].remediations
    assert rem.status == "partial" and "re-check still fails" in rem.reason
    assert conf.read_text() == "good\n"


SLOW = """
hosts: all
checks:
  - {name: before, check: slow_probe, with: {seconds: 0, log: "{{ d }}/before"}}
  - {name: hung, check: slow_probe, with: {seconds: 60, log: "{{ d }}/hung"}}
  - {name: after, check: slow_probe, with: {seconds: 0, log: "{{ d }}/after"}}
"""


def test_a_hung_probe_fails_alone_and_finished_probes_are_not_run_again(tmp_path):
    """No `timeout` per command at first; past the check limit, only the unfinished rerun."""
    target = bound(tmp_path, SLOW)
    engine = Engine("check", LocalConnection, options=EngineOptions(check_timeout=1.0))
    began = time.monotonic()
    host = engine.run("book", [Job(target, ConnectionSpec("h1", "local", command_timeout=20))])
    took = time.monotonic() - began

    statuses = {s.name: s.before.status for s in host.hosts[0].steps}
    assert statuses == {"before": "passed", "hung": "error", "after": "passed"}
    assert took < 6, took  # two limits of 1 s and the kill grace, not the probe's 60 s
    runs = {name: (tmp_path / name).read_text().count("start") for name in statuses}
    assert runs == {"before": 1, "hung": 2, "after": 1}


KEEP = """
hosts: all
checks:
  - check: file_contains
    with: {path: "{{ d }}/conf/f", line: good}
    remediate:
      - remediation: write_line
        with: {path: "{{ d }}/conf/f", line: good, root: "{{ d }}/conf", keep: "{{ d }}/kept"}
"""


def test_a_baseline_that_still_matches_is_not_recorded_again(tmp_path, conf):
    """Its probe rides along with the first checks, and with the last ones after a repair:
    only a run that leaves the host other than the copy records it."""
    target = bound(tmp_path, KEEP)

    def apply() -> list[str]:
        shell = LocalShell()
        engine = Engine("apply", lambda spec: shell)
        host = engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]
        assert host.status in ("healthy", "repaired"), host
        return [s for s in shell.scripts if "cp " in s and "kept" in s]

    kept = tmp_path / "kept"
    assert apply() and kept.read_text() == "good\n"  # repaired: recorded
    assert apply() == []  # healthy, unchanged, copy matches: no round trip for it
    kept.write_text("stale\n")
    assert apply() and kept.read_text() == "good\n"  # the copy differs: recorded again
    conf.write_text("bad\n")
    # repaired back to what the copy holds: the probe rode with the last checks, so the
    # run ends without a round trip for the baseline
    assert apply() == [] and conf.read_text() == "good\n"


class Riding:
    """A verifier with remembered commands to ride along; notes what each host handed over."""

    def __init__(self, *scripts: str) -> None:
        self.keys = [(script, False) for script in scripts]
        self.done: dict[str, dict] = {}

    def begin(self, hosts):
        pass

    def riders(self, target, spec):
        return list(self.keys)

    def ahead(self, item, done):
        self.done[item[0].host.name] = done

    def __call__(self, items):
        return {}


def test_verify_commands_ride_with_the_checks_of_a_host_the_run_leaves_alone(tmp_path, conf):
    conf.write_text("good\n")
    target = bound(tmp_path, book())
    shell, verifier = LocalShell(), Riding("echo one", "echo two >&2; exit 3")
    engine = Engine("apply", lambda spec: shell, verifier=verifier)
    host = engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]

    assert host.status == "healthy"
    assert len(shell.scripts) == 1  # checks and riders: one round trip
    done = verifier.done["h1"]
    assert done[("echo one", False)].stdout == "one\n"
    assert (
        done[("echo two >&2; exit 3", False)].exit_status,
        done[("echo two >&2; exit 3", False)].stderr,
    ) == (3, "two\n")


def test_after_a_repair_verify_commands_ride_with_the_last_checks(tmp_path, conf):
    target = bound(tmp_path, book())  # conf says "bad": repaired
    log = tmp_path / "rides"
    rider = f"echo ran >> {log}; head -n 1 {conf}"
    shell, verifier = LocalShell(), Riding(rider)
    engine = Engine("apply", lambda spec: shell, verifier=verifier)
    host = engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]

    assert host.status == "repaired"
    assert len(shell.scripts) == 3  # as without verify: no round trip of their own
    assert log.read_text() == "ran\nran\n"  # with the first and the last checks
    assert verifier.done["h1"][(rider, False)].stdout == "good\n"  # what the last one saw


def test_what_rode_along_is_dropped_when_the_host_was_locked_and_not_checked_again(tmp_path, conf):
    """A refused repair changes nothing, but this run held the lock: verify asks again."""
    target = bound(tmp_path, book(line="FORBIDDEN"))  # validation refuses it
    log = tmp_path / "rides"
    shell, verifier = LocalShell(), Riding(f"echo one >> {log}")
    engine = Engine("apply", lambda spec: shell, verifier=verifier)
    host = engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]

    assert host.status == "failed"
    assert log.read_text() == "one\n"  # it rode with the first checks
    assert verifier.done["h1"] == {}


def test_a_rider_cut_short_by_the_check_limit_is_not_run_again(tmp_path, conf):
    conf.write_text("good\n")
    target = bound(tmp_path, book())
    log = tmp_path / "rides"
    rider = f"echo ran >> {log}; sleep 30"
    shell, verifier = Recording("h1"), Riding(rider)  # a real transport's time limits
    options = EngineOptions(check_timeout=1.0)
    engine = Engine("apply", lambda spec: shell, options=options, verifier=verifier)
    began = time.monotonic()
    job = Job(target, ConnectionSpec("h1", "localhost", command_timeout=20))
    host = engine.run("book", [job]).hosts[0]

    assert host.status == "healthy"  # the checks had finished: judged as usual
    assert time.monotonic() - began < 10
    assert log.read_text() == "ran\n"
    # the checks, then the release of a lease the cut try at the lock (after the rider)
    # may have taken: no third round trip to run either again
    assert len(shell.calls) == 2
    assert verifier.done["h1"][(rider, False)].exit_status == -1  # verify runs it live


def test_a_rider_that_repeats_a_check_command_shares_its_result(tmp_path, conf):
    conf.write_text("good\n")
    target = bound(tmp_path, book())
    [probe] = target.steps[0].check.commands()
    log = tmp_path / "rides"
    twice = f"echo one >> {log}; echo one"
    shell, verifier = LocalShell(), Riding(probe, twice, twice)
    engine = Engine("apply", lambda spec: shell, verifier=verifier)
    engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))])

    assert len(shell.scripts) == 1 and log.read_text() == "one\n"
    done = verifier.done["h1"]
    assert done[(probe, False)].exit_status == 0 and done[(twice, False)].stdout == "one\n"


class Traced(LocalShell):
    """The local shell; after each round trip, notes what `look()` sees of the host."""

    def __init__(self, look) -> None:
        super().__init__()
        self.look = look
        self.seen: list = []

    def run(self, script, **kw):
        done = super().run(script, **kw)
        self.seen.append(self.look())
        return done


def journals(tmp_path: Path) -> list[str]:
    """Each transaction's journal state."""
    return [p.read_text().strip() for p in sorted((tmp_path / "state").glob("*/state"))]


def test_a_repair_takes_three_round_trips(tmp_path, conf):
    """checks + lock + gather (the check's command failed); prepare + apply + re-check;
    last checks + commit + unlock: no round trip of its own for locking, gathering,
    applying, re-checking, committing or unlocking."""
    from opsfix.engine.lock import LockSettings

    target = bound(tmp_path, book())
    lock_path = tmp_path / "lock" / "opsfix.lock"
    shell = Traced(lambda: (lock_path.exists(), journals(tmp_path), conf.read_text()))
    lock = LockSettings(path=str(lock_path))
    engine = Engine("apply", lambda spec: shell, options=EngineOptions(lock=lock))
    host = engine.run("book", [Job(target, ConnectionSpec("h1", "localhost"))]).hosts[0]

    assert host.status == "repaired" and host.steps[0].after.ok
    assert shell.seen == [
        (True, [], "bad\n"),  # checked, and locked: the check's command failed
        (True, ["applied"], "good\n"),  # prepared, applied, re-checked
        (False, ["committed"], "good\n"),  # checked again, committed, given back
    ]


def test_the_first_checks_lock_only_a_host_whose_check_command_failed(tmp_path, conf):
    """A healthy host is never locked: the try rides along, but does not run."""
    from opsfix.engine.lock import LockSettings

    conf.write_text("good\n")
    target = bound(tmp_path, book())
    shell = LocalShell()
    lock_path = tmp_path / "lock" / "opsfix.lock"
    options = EngineOptions(lock=LockSettings(path=str(lock_path)))
    host = (
        Engine("apply", lambda spec: shell, options=options)
        .run("book", [Job(target, ConnectionSpec("h1", "localhost"))])
        .hosts[0]
    )

    assert host.status == "healthy"
    assert len(shell.scripts) == 1
    assert not lock_path.parent.exists()  # not even the lock's folder was made


def test_a_lock_held_by_another_run_is_waited_for_as_usual(tmp_path, conf):
    """The try in the first checks does not wait; taking the lock then waits as always."""
    from opsfix.engine.lock import Holder, LockSettings

    target = bound(tmp_path, book())
    lock_path = tmp_path / "lock" / "opsfix.lock"
    lock_path.parent.mkdir()
    other = Holder("otherrun", "someone", "elsewhere", 1, int(time.time()))
    lock_path.write_text(other.line() + "\n")
    shell = LocalShell()
    options = EngineOptions(lock=LockSettings(path=str(lock_path), wait=0.2, poll=0.05))
    host = (
        Engine("apply", lambda spec: shell, options=options)
        .run("book", [Job(target, ConnectionSpec("h1", "localhost"))])
        .hosts[0]
    )

    assert host.status == "failed" and "locked by run otherrun" in host.reason
    assert conf.read_text() == "bad\n"  # never acted
    assert lock_path.read_text() == other.line() + "\n"  # the other run's lease stands


def test_a_commit_held_back_is_recorded_before_the_next_transaction(tmp_path, conf):
    """Two steps repaired: the first commit goes before the second transaction starts."""
    (tmp_path / "conf" / "g").write_text("bad\n")
    two = book() + book().replace("conf/f", "conf/g").split("checks:\n", 1)[1]
    target = bound(tmp_path, two)
    shell = Traced(lambda: journals(tmp_path))
    host = (
        Engine("apply", lambda spec: shell)
        .run("book", [Job(target, ConnectionSpec("h1", "localhost"))])
        .hosts[0]
    )

    assert host.status == "repaired"
    assert shell.seen[-1] == ["committed", "committed"]
    second = next(seen for seen in shell.seen if len(seen) == 2)
    assert sorted(second) == ["applied", "committed"]  # the first, when the second ran
    # no round trip of its own: it rode with the next one (the second step's re-check)
    assert [len(seen) for seen in shell.seen] == [0, 1, 1, 1, 2, 2]


def test_a_lock_try_the_check_limit_cut_short_is_given_back(tmp_path, conf):
    """The try at the lock rides last in the first checks; if the limit cuts the script
    first, the try may have taken the lease unseen: the run gives it back all the same."""
    from opsfix.engine.lock import LockSettings

    target = bound(tmp_path, book())
    lock_path = tmp_path / "lock" / "opsfix.lock"
    shell, verifier = Recording("h1"), Riding("sleep 30")  # a rider that outlasts the limit
    options = EngineOptions(
        check_timeout=1.0,
        lock=LockSettings(path=str(lock_path)),
        flap_guard=lambda target, step: "refused for the test",  # so nothing takes the lock
    )
    engine = Engine("apply", lambda spec: shell, options=options, verifier=verifier)
    lock_path.parent.mkdir()
    lock_path.write_text(engine.holder.line() + "\n")  # as if the cut try had taken it
    job = Job(target, ConnectionSpec("h1", "localhost", command_timeout=20))
    host = engine.run("book", [job]).hosts[0]

    assert host.status == "failed" and conf.read_text() == "bad\n"  # refused: not repaired
    assert not lock_path.exists()  # this run's lease, given back
    assert len(shell.calls) == 2  # the first checks (the try: not run again), the release


PEER_BOOK = """
hosts: all
checks:
  - check: file_contains
    with: {path: "{{ d }}/conf/f", line: good, count: 1}
    remediate:
      - remediation: peer_line
        with: {path: "{{ d }}/conf/f", peer_path: "{{ d }}/peer/f"ATTENTION}
"""


def run_with_peers(tmp_path: Path, peers: tuple[ConnectionSpec, ...], attention: str = ""):
    body = PEER_BOOK.replace("ATTENTION", f", attention: '{attention}'" if attention else "")
    target = bound(tmp_path, body)
    asked: list[str] = []

    def connect(spec: ConnectionSpec) -> LocalShell:
        asked.append(spec.host)
        if spec.host == "down":
            raise OSError("unreachable")
        return LocalShell()

    engine = Engine("apply", connect)
    job = Job(target, ConnectionSpec("h1", "localhost"), lambda: peers)
    return engine.run("book", [job]).hosts[0], asked


def test_a_repair_may_ask_the_hosts_peers_and_says_which_answered(tmp_path, conf):
    (tmp_path / "peer").mkdir()
    (tmp_path / "peer" / "f").write_text("good\n")
    peers = (ConnectionSpec("down", "192.0.2.1"), ConnectionSpec("h2", "localhost"))
    host, asked = run_with_peers(tmp_path, peers)
    assert host.status == "repaired", host
    [rem] = host.steps[0].remediations
    assert rem.status == "applied" and rem.reason == f"write {conf} from h2"
    assert sorted(asked) == ["down", "h1", "h2"]
    assert conf.read_text() == "good\n"


def test_peers_are_not_contacted_for_a_healthy_host(tmp_path, conf):
    conf.write_text("good\n")
    host, asked = run_with_peers(tmp_path, (ConnectionSpec("h2", "localhost"),))
    assert host.status == "healthy" and asked == ["h1"]


def test_a_repair_that_needs_a_person_fails_the_host_but_is_kept(tmp_path, conf):
    (tmp_path / "peer").mkdir()
    (tmp_path / "peer" / "f").write_text("good\n")
    peers = (ConnectionSpec("h2", "localhost"),)
    host, _ = run_with_peers(tmp_path, peers, attention="site disabled, restore it")
    assert (host.status, host.reason) == ("failed", "site disabled, restore it")
    [rem] = host.steps[0].remediations
    assert rem.status == "applied" and rem.attention == "site disabled, restore it"
    assert host.steps[0].after.ok and conf.read_text() == "good\n"


WHEN_BOOK = """
hosts: all
checks:
  - check: file_contains
    with: {path: "{{ d }}/conf/f", line: good, count: 1}
  - name: only where asked
    when: wanted is defined and wanted
    check: file_contains
    with: {path: "{{ d }}/conf/f", line: "{{ wanted }}", count: 1}
"""


@pytest.mark.parametrize(
    "host_vars, labels",
    [
        ({}, ["file_contains"]),
        ({"wanted": "x"}, ["file_contains", "only where asked"]),
        ({"wanted": ""}, ["file_contains"]),
    ],
)
def test_a_step_with_when_runs_only_where_it_holds(tmp_path, conf, host_vars, labels):
    target = bound(tmp_path, WHEN_BOOK, **host_vars)
    assert [s.label for s in target.steps] == labels


def test_an_undefined_variable_in_when_is_an_error_naming_the_place(tmp_path, conf):
    from opsfix.errors import VariableError

    with pytest.raises(VariableError) as caught:
        bound(tmp_path, WHEN_BOOK.replace("wanted is defined and wanted", "wanted"))
    assert "checks[1].when" in str(caught.value) and "(host h1)" in str(caught.value)


class Closing(LocalShell):
    """The local shell; says when it is closed, and may wait, before its first round
    trip, for another host's connection to be closed."""

    def __init__(self, closed: threading.Event, wait_for: threading.Event | None = None) -> None:
        super().__init__()
        self.closed, self.wait_for = closed, wait_for
        self.waited: bool | None = None

    def run(self, script, **kw):
        if self.wait_for is not None and self.waited is None:
            self.waited = self.wait_for.wait(10)
        return super().run(script, **kw)

    def close(self) -> None:
        self.closed.set()


def two_hosts(tmp_path: Path, body: str) -> list[Job]:
    targets = [bound(tmp_path, body) for _ in range(2)]
    return [
        Job(t, ConnectionSpec(name, "localhost"))
        for t, name in zip(targets, ("h1", "h2"), strict=True)
    ]


def test_a_host_done_with_gives_its_connection_back_before_its_batch_ends(tmp_path, conf):
    """A check run needs nothing more of a host once it is checked: a batch of a thousand
    hosts holds only the connections still in use."""
    conf.write_text("good\n")
    h1_closed, h2_closed = threading.Event(), threading.Event()
    shells = {"h1": Closing(h1_closed), "h2": Closing(h2_closed, wait_for=h1_closed)}
    for mode in ("check", "apply"):  # apply: healthy, nothing to verify or remember
        h1_closed.clear(), h2_closed.clear()
        shells["h2"].waited = None
        engine = Engine(mode, lambda spec: shells[spec.host], options=EngineOptions(forks=2))
        hosts = engine.run("book", two_hosts(tmp_path, book())).hosts
        assert [h.status for h in hosts] == ["healthy", "healthy"]
        assert shells["h2"].waited is True, mode  # h1's was closed while h2 still ran
        assert h2_closed.is_set()


def test_a_host_that_verify_will_look_at_keeps_its_connection_until_then(tmp_path, conf):
    closed = threading.Event()
    seen: list[bool] = []

    class Verifier:
        def begin(self, hosts):
            pass

        def riders(self, target, spec):
            return []

        def ahead(self, item, done):
            pass

        def __call__(self, items):
            seen.extend(closed.is_set() for _ in items)
            return {}

    engine = Engine("apply", lambda spec: Closing(closed), verifier=Verifier())
    host = engine.run("book", [Job(bound(tmp_path, book()), ConnectionSpec("h1", "x"))]).hosts[0]
    assert host.status == "repaired" and seen == [False] and closed.is_set()
