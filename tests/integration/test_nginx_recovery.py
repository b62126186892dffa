"""`opsfix apply playbooks/nginx_recovery.yml` repairs real broken hosts, and proves it.

Each scenario breaks the four lab hosts in four different ways, runs the real `opsfix`
command once over all of them, and then reads every host's real state: `nginx -t`, what
`/` serves, the files under /etc/nginx and the web root, the backups, and nginx's master
and worker PIDs (a running nginx is reloaded, never restarted). Refusals and dry runs
must leave every file exactly as it was and nginx untouched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from opsfix.lab import Lab

from .helpers import (
    CONFIG_BREAKS,
    DATA,
    ETC_NGINX,
    EXPECTED,
    KNOWN_GOOD,
    WEB_ROOT,
    Nginx,
    Run,
    break_host,
    config_ok,
    http_body,
    nginx_processes,
    relative,
    reset_hosts,
    run_playbook,
    tree,
    watched,
)

pytestmark = pytest.mark.integration

RESTORE, START, CONTENT = "nginx_restore_config", "service_start", "restore_content"
BY_RESTORE, BY_START, BY_CONTENT = frozenset({RESTORE}), frozenset({START}), frozenset({CONTENT})
ALL_THREE = frozenset({RESTORE, START, CONTENT})


@dataclass(frozen=True)
class Case:
    """One broken host: how it is broken and how the repair must go."""

    host: str
    title: str
    breaks: tuple[str, ...]
    repaired_by: frozenset[str]  # the remediations that must end "applied"
    nginx: str  # "reloaded" (same master), "untouched" (same workers too) or "started"
    snapshot: bool = True  # a known-good snapshot is recorded before the breakage

    @property
    def source(self) -> str:
        return "known-good snapshot" if self.snapshot else "templates"


@dataclass
class Scenario:
    """The hosts' state at each stage, and the runs in between."""

    cases: dict[str, Case]
    pristine: dict[str, dict[str, str]] = field(default_factory=dict)
    record: Run | None = None  # the apply on healthy hosts that keeps the known-good copy
    recorded: dict[str, dict[str, str]] = field(default_factory=dict)
    broken: dict[str, dict[str, str]] = field(default_factory=dict)
    after: dict[str, dict[str, str]] = field(default_factory=dict)
    pids: dict[str, dict[str, Nginx]] = field(default_factory=dict)  # stage -> host -> nginx
    run: Run | None = None


def stage(lab: Lab, scenario: Scenario, name: str, hosts: list[str]) -> dict[str, dict[str, str]]:
    """Record nginx's processes and every watched file of each host at this stage."""
    scenario.pids[name] = {h: nginx_processes(lab, h) for h in hosts}
    return {h: watched(lab, h) for h in hosts}


def play(lab: Lab, cases: list[Case], command: str = "apply", **kwargs: Any) -> Scenario:
    """Reset, record known-good copies where wanted, break, then run opsfix once over all."""
    hosts = [c.host for c in cases]
    reset_hosts(lab, hosts)
    scenario = Scenario({c.host: c for c in cases})
    scenario.pristine = stage(lab, scenario, "pristine", hosts)
    keep = [c.host for c in cases if c.snapshot]
    if keep:
        scenario.record = run_playbook(lab, "apply", keep)
        recorded = scenario.record
        assert recorded.returncode == 0, f"keeping known-good copies failed: {recorded}"
    scenario.recorded = stage(lab, scenario, "recorded", hosts)
    for case in cases:
        break_host(lab, case.host, case.breaks)
    scenario.broken = stage(lab, scenario, "broken", hosts)
    scenario.run = run_playbook(lab, command, hosts, **kwargs)
    scenario.after = stage(lab, scenario, "after", hosts)
    return scenario


def applied(host: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["remediation"]: r
        for step in host["steps"]
        for r in step["remediations"]
        if r["status"] == "applied"
    }


def known_good(state: Mapping[str, str]) -> dict[str, str] | None:
    """The known-good copy in a host's state, relative to it; None when there is none."""
    link = state.get(KNOWN_GOOD, "")
    if not link.startswith("l "):
        return None
    target = f"{KNOWN_GOOD.rpartition('/')[0]}/{link.split()[-1]}"
    return relative(dict(state), target)


def backed_up(lab: Lab, host: str, backups: list[str]) -> dict[str, str]:
    """Every entry of the host's backup folders, keyed by the host path it is a copy of."""
    found: dict[str, str] = {}
    for backup in backups:
        found |= {f"/{p}": v for p, v in relative(tree(lab, host, backup), backup).items()}
    return found


# -- repairs ----------------------------------------------------------------------------------

CONFIG_CASES = [
    Case("web1", "syntax error in nginx.conf", ("nginx_conf_syntax",), BY_RESTORE, "reloaded"),
    Case("web2", "syntax error in a conf.d file", ("conf_d_syntax",), BY_RESTORE, "reloaded"),
    Case("web3", "syntax error in the enabled site", ("site_syntax",), BY_RESTORE, "reloaded"),
    Case("web4", "conf.d includes a missing file", ("broken_include",), BY_RESTORE, "reloaded"),
]  # fmt: skip
# What nginx_config's evidence must name for each: the file at fault, and what it could not open.
CONFIG_EVIDENCE = {
    "web1": {"file": "/etc/nginx/nginx.conf"},
    "web2": {"file": "/etc/nginx/conf.d/typo.conf"},
    "web3": {"file": "/etc/nginx/sites-enabled/default"},  # as nginx names it: the link
    "web4": {
        "file": "/etc/nginx/conf.d/extra.conf",
        "cannot_open": "/etc/nginx/snippets/missing.conf",
    },
}
SITE_AND_CONTENT_CASES = [
    Case("web1", "dangling site symlink", ("dangling_symlink",), BY_RESTORE, "reloaded"),
    Case("web2", "index.html deleted", ("index_deleted",), BY_CONTENT, "untouched"),
    Case("web3", "index.html emptied", ("index_emptied",), BY_CONTENT, "untouched"),
    Case("web4", "nginx stopped", ("nginx_stopped",), BY_START, "started"),
]  # fmt: skip
EVERYTHING = ("nginx_stopped", "conf_d_syntax", "index_deleted", "dangling_symlink")
MIXED_CASES = [
    Case("web1", "bad config, stopped, no index, dangling link", EVERYTHING, ALL_THREE, "started"),
    Case("web2", "stopped, bad conf.d, no index, site file gone, no known-good copy",
         ("nginx_stopped", "conf_d_syntax", "index_deleted", "site_removed"), ALL_THREE,
         "started", snapshot=False),
    Case("web3", "nginx.conf syntax error with no known-good copy", ("nginx_conf_syntax",),
         BY_RESTORE, "reloaded", snapshot=False),
    Case("web4", "master killed, its workers hold port 80", ("master_killed",),
         BY_START, "started"),
]  # fmt: skip


def scenario_fixture(lab: Lab, cases: list[Case], **kwargs: Any) -> Iterator[Scenario]:
    try:
        yield play(lab, cases, **kwargs)
    finally:
        reset_hosts(lab, [c.host for c in cases])


@pytest.fixture(scope="module")
def config_breakage(lab: Lab) -> Iterator[Scenario]:
    yield from scenario_fixture(lab, CONFIG_CASES)


@pytest.fixture(scope="module")
def site_and_content(lab: Lab) -> Iterator[Scenario]:
    yield from scenario_fixture(lab, SITE_AND_CONTENT_CASES)


@pytest.fixture(scope="module")
def mixed(lab: Lab) -> Iterator[Scenario]:
    yield from scenario_fixture(lab, MIXED_CASES)


def assert_repaired(scenario: Scenario, case: Case) -> None:
    """The run repaired the host, and the host's real state says so."""
    run, host = scenario.run, case.host
    assert run is not None and run.returncode == 0, str(run)
    report = run.host(host)
    assert report["status"] == "repaired", f"{host} ({case.title}): {report['reason']}\n{run}"
    assert any(s["before"]["status"] == "failed" for s in report["steps"]), "breakage unseen"
    still = [s["name"] for s in report["steps"] if s["after"]["status"] != "passed"]
    assert not still, f"{host}: still failing after the run: {still}"
    done = applied(report)
    assert set(done) == case.repaired_by, f"{host}: applied {sorted(done)}\n{run}"
    other = [
        (r["remediation"], r["status"], r["reason"])
        for s in report["steps"]
        for r in s["remediations"]
        if r["status"] != "applied"
    ]
    assert not other, f"{host}: remediations that did not apply: {other}"
    if RESTORE in done:
        assert f"from the {case.source}" in done[RESTORE]["reason"]
    verify = report["verify"]
    assert verify and all(v["outcome"] == "passed" for v in verify), verify

    before, now = scenario.pids["broken"][host], scenario.pids["after"][host]
    assert now.master is not None and not now.has_strays, f"{host}: nginx {now}"
    if case.nginx == "untouched":
        assert now == before, f"{host}: nginx was reloaded or restarted: {before} -> {now}"
    elif case.nginx == "reloaded":
        assert now.master == before.master, f"{host}: nginx was restarted, not reloaded"
        assert now.workers - before.workers, f"{host}: nginx was not reloaded: {now}"
    else:
        assert before.master is None


def assert_host_serves(lab: Lab, host: str) -> None:
    ok, output = config_ok(lab, host)
    assert ok, f"{host}: nginx -t fails after the run: {output}"
    for path in ("/", "/app/settings"):
        body = http_body(lab, host, path)
        assert EXPECTED in body, f"{host}: {path} answers {body[:200]!r}"


def assert_files_restored(lab: Lab, scenario: Scenario, case: Case) -> None:
    """Config and content as they should be; every changed file backed up; copy refreshed."""
    host = case.host
    assert scenario.run is not None
    done = applied(scenario.run.host(host))
    pristine, broken, after = scenario.pristine[host], scenario.broken[host], scenario.after[host]
    live = relative(after, ETC_NGINX)
    if case.snapshot and RESTORE in done:  # exactly the copy kept on the healthy host
        assert live == relative(scenario.recorded[host], ETC_NGINX)
    else:  # the templates' files, and nothing the breakage added
        assert set(live) == set(relative(pristine, ETC_NGINX))
    if RESTORE not in done:
        assert live == relative(broken, ETC_NGINX)
    if CONTENT in done:
        assert relative(after, WEB_ROOT) == relative(pristine, WEB_ROOT)
    else:
        assert relative(after, WEB_ROOT) == relative(broken, WEB_ROOT)

    backups = [r["backup_path"] for r in done.values() if r["backup_path"]]
    copies = backed_up(lab, host, backups)
    touched = {
        path
        for path in broken.keys() | after.keys()
        if path.startswith((f"{ETC_NGINX}/", f"{WEB_ROOT}/"))
        and broken.get(path) != after.get(path)
    }
    assert touched, f"{host}: the run changed no file"
    old = {p: broken[p] for p in touched if p in broken and broken[p][0] in "fl"}
    lost = {p: e for p, e in old.items() if copies.get(p) != e}
    assert not lost, f"{host}: changed or removed without a backup: {lost}"
    assert known_good(after) == live, f"{host}: the known-good copy is not the repaired config"


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.title)
def test_a_broken_config_is_restored_from_the_known_good_copy_and_reloaded(
    lab: Lab, config_breakage: Scenario, case: Case
) -> None:
    assert_repaired(config_breakage, case)
    assert_host_serves(lab, case.host)
    assert_files_restored(lab, config_breakage, case)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.title)
def test_the_report_names_the_broken_file(config_breakage: Scenario, case: Case) -> None:
    assert config_breakage.run is not None
    step = config_breakage.run.host(case.host)["steps"][0]
    assert (step["name"], step["before"]["status"]) == ("nginx config is valid", "failed")
    evidence = step["before"]["evidence"]
    assert {k: evidence.get(k) for k in CONFIG_EVIDENCE[case.host]} == CONFIG_EVIDENCE[case.host]
    assert step["before"]["summary"].startswith("nginx -t: ")
    assert step["after"]["status"] == "passed"


@pytest.mark.parametrize("case", SITE_AND_CONTENT_CASES, ids=lambda c: c.title)
def test_a_broken_site_content_or_service_is_repaired(
    lab: Lab, site_and_content: Scenario, case: Case
) -> None:
    assert_repaired(site_and_content, case)
    assert_host_serves(lab, case.host)
    if case.repaired_by != {START}:
        assert_files_restored(lab, site_and_content, case)


def test_a_dangling_symlink_is_reported_and_removed(site_and_content: Scenario) -> None:
    assert site_and_content.run is not None
    step = site_and_content.run.host("web1")["steps"][0]
    link = "/etc/nginx/sites-enabled/staging"
    assert step["before"]["evidence"]["dangling_symlinks"] == [link]
    assert step["before"]["evidence"]["cannot_open"] == link
    assert link not in site_and_content.after["web1"]
    assert "dangling_symlinks" not in step["after"]["evidence"]


@pytest.mark.parametrize("case", MIXED_CASES, ids=lambda c: c.title)
def test_several_faults_at_once_with_or_without_a_known_good_copy(
    lab: Lab, mixed: Scenario, case: Case
) -> None:
    assert_repaired(mixed, case)
    assert_host_serves(lab, case.host)
    if case.repaired_by != {START}:
        assert_files_restored(lab, mixed, case)


def test_a_template_restore_writes_the_desired_config_and_prunes_what_nginx_loads(
    lab: Lab, mixed: Scenario
) -> None:
    assert mixed.run is not None
    after = relative(mixed.after["web2"], ETC_NGINX)
    broken = relative(mixed.broken["web2"], ETC_NGINX)
    assert "conf.d/typo.conf" in broken and "conf.d/typo.conf" not in after
    assert "sites-available/default" not in broken and "sites-available/default" in after
    assert after["sites-enabled/default"].split()[-1] == "/etc/nginx/sites-available/default"
    site = lab.exec("web2", "cat /etc/nginx/sites-available/default").stdout
    assert "root /var/www/html;" in site and "try_files $uri $uri/ /index.html;" in site
    reason = applied(mixed.run.host("web2"))[RESTORE]["reason"]
    assert "restore /etc/nginx from the templates" in reason


def test_stray_workers_are_stopped_before_nginx_starts(mixed: Scenario) -> None:
    before, after = mixed.pids["broken"]["web4"], mixed.pids["after"]["web4"]
    assert before.master is None and before.every, "the breakage left no stray workers"
    assert not before.every & after.every, f"strays survived: {before.every & after.every}"
    assert mixed.run is not None
    assert "stray" in applied(mixed.run.host("web4"))[START]["reason"]


def test_apply_on_healthy_hosts_changes_nothing_and_keeps_a_known_good_copy(
    config_breakage: Scenario,
) -> None:
    run = config_breakage.record
    assert run is not None and run.returncode == 0, str(run)
    assert run.report["summary"] == {"failed": 0, "unreachable": 0, "repaired": 0, "healthy": 4}
    for host in config_breakage.cases:
        report = run.host(host)
        assert report["status"] == "healthy"
        for step in report["steps"]:
            assert step["before"]["status"] == step["after"]["status"] == "passed", step
            assert step["remediations"] == []
        assert report["verify"] and {v["outcome"] for v in report["verify"]} == {"passed"}
        pids = config_breakage.pids
        assert pids["recorded"][host] == pids["pristine"][host], "nginx was reloaded"
        pristine, recorded = config_breakage.pristine[host], config_breakage.recorded[host]
        for root in (ETC_NGINX, WEB_ROOT):
            assert relative(recorded, root) == relative(pristine, root)
        assert not relative(recorded, "/var/backups"), "a healthy run made backups"
        assert known_good(pristine) is None
        assert known_good(recorded) == relative(recorded, ETC_NGINX)


# -- refusals -----------------------------------------------------------------------------

REFUSALS = [
    Case("web1", "no known-good copy and the template renders a config nginx -t rejects",
         ("conf_d_syntax",), frozenset(), "untouched", snapshot=False),
    Case("web2", "nginx -t fails for a reason outside /etc/nginx (no log folder)",
         ("conf_d_syntax", "log_dir_missing"), frozenset(), "untouched"),
]  # fmt: skip
REFUSAL_OUTPUT = {
    "web1": 'invalid number "plenty"',
    "web2": 'open() "/var/log/nginx/error.log" failed',
}


@pytest.fixture(scope="module")
def refusals(lab: Lab) -> Iterator[Scenario]:
    yield from scenario_fixture(lab, REFUSALS, playbook=DATA / "refuse.yml")


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.title)
def test_a_config_that_cannot_be_validated_is_refused_and_nothing_changes(
    lab: Lab, refusals: Scenario, case: Case
) -> None:
    run, host = refusals.run, case.host
    assert run is not None and run.returncode == 2, str(run)
    report = run.host(host)
    assert report["status"] == "failed"
    assert report["reason"] == "still failing: nginx config is valid"
    step = report["steps"][0]
    assert [r["status"] for r in step["remediations"]] == ["refused"]
    refusal = step["remediations"][0]
    assert refusal["reason"] == "validation failed: nothing was changed"
    assert "[emerg]" in refusal["validate_output"]
    assert REFUSAL_OUTPUT[host] in refusal["validate_output"]
    assert "test failed" in refusal["validate_output"]

    broken, after = refusals.broken[host], refusals.after[host]
    for root in (ETC_NGINX, WEB_ROOT):
        assert relative(after, root) == relative(broken, root), f"{host}: {root} changed"
    assert known_good(after) == known_good(broken)
    assert (known_good(after) is None) == (not case.snapshot)
    before_pids, after_pids = refusals.pids["broken"][host], refusals.pids["after"][host]
    assert after_pids == before_pids, "nginx was reloaded or restarted"
    assert not config_ok(lab, host)[0]
    assert EXPECTED in http_body(lab, host, "/"), "the running nginx stopped serving"

    copies = backed_up(lab, host, [refusal["backup_path"]])
    assert "/etc/nginx/conf.d/typo.conf" in copies
    assert all(broken.get(path) == entry for path, entry in copies.items() if entry[0] in "fl")


def test_a_dry_run_foresees_the_refusal_and_changes_nothing(lab: Lab, refusals: Scenario) -> None:
    hosts = list(refusals.cases)
    before = {h: (watched(lab, h), nginx_processes(lab, h)) for h in hosts}
    run = run_playbook(lab, "apply --check", hosts, playbook=DATA / "refuse.yml")
    assert run.returncode == 2, str(run)
    for host in hosts:
        outcomes = run.host(host)["steps"][0]["remediations"]
        assert [r["status"] for r in outcomes] == ["refused"], outcomes
        assert outcomes[0]["reason"].endswith("would be refused, validation fails")
        assert REFUSAL_OUTPUT[host] in outcomes[0]["validate_output"]
        assert (watched(lab, host), nginx_processes(lab, host)) == before[host]


# -- dry runs and checks ------------------------------------------------------------------

DRY_CASES = [
    Case("web1", "everything, with a known-good copy", EVERYTHING, ALL_THREE, "started"),
    Case("web2", "everything, no known-good copy", EVERYTHING, ALL_THREE, "started",
         snapshot=False),
    # a valid config: a run that kept a known-good copy here would show in /var/lib/opsfix
    Case("web3", "emptied index, nginx stopped, valid config", ("index_emptied", "nginx_stopped"),
         BY_START | BY_CONTENT, "started"),
    Case("web4", "master killed and a typo in the site, no copy", ("master_killed", "site_syntax"),
         BY_RESTORE | BY_START, "started", snapshot=False),
]  # fmt: skip
DIFF_LINES = {
    RESTORE: {
        "web1": ["--- a/etc/nginx/conf.d/typo.conf", "+++ /dev/null", "-\tlisten 8081",
                 "--- a/etc/nginx/sites-enabled/staging", "--> /etc/nginx/sites-available/staging"],
        "web2": ["--- a/etc/nginx/conf.d/typo.conf", "--- a/etc/nginx/sites-enabled/staging"],
        "web4": ["--- a/etc/nginx/sites-available/default", "-\trooot /var/www/html;",
                 "+\troot /var/www/html;"],
    },
    CONTENT: {
        host: ["+++ b/var/www/html/index.html", f"+  <title>{EXPECTED}</title>"]
        for host in ("web1", "web2", "web3")
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def dry_run(lab: Lab) -> Iterator[Scenario]:
    yield from scenario_fixture(lab, DRY_CASES, command="apply --check")


@pytest.mark.parametrize("case", DRY_CASES, ids=lambda c: c.title)
def test_apply_check_shows_each_change_as_a_diff_and_changes_nothing(
    dry_run: Scenario, case: Case
) -> None:
    run, host = dry_run.run, case.host
    assert run is not None and run.returncode == 2, str(run)
    assert run.report["mode"] == "dry-run"
    report = run.host(host)
    assert report["status"] == "failed" and report["verify"] == []
    outcomes = {r["remediation"]: r for s in report["steps"] for r in s["remediations"]}
    assert set(outcomes) >= case.repaired_by, outcomes
    statuses = [r["status"] for s in report["steps"] for r in s["remediations"]]
    # the first repair is validated in a scratch copy; later ones depend on it
    assert statuses[0] == "would_change", outcomes
    assert set(statuses[1:]) <= {"cannot_tell"}, outcomes
    for name, hosts in DIFF_LINES.items():
        for line in hosts.get(host, []):
            assert line in outcomes[name]["diff"].splitlines(), f"{line!r} not in the diff"
    if RESTORE in outcomes:
        assert f"from the {case.source}" in outcomes[RESTORE]["reason"]

    assert dry_run.after[host] == dry_run.broken[host], "a dry run changed files"
    assert dry_run.pids["after"][host] == dry_run.pids["broken"][host], "a dry run touched nginx"


def test_check_reports_the_same_hosts_and_changes_nothing(lab: Lab, dry_run: Scenario) -> None:
    hosts = list(dry_run.cases)
    run = run_playbook(lab, "check", hosts)
    assert run.returncode == 2, str(run)
    assert run.report["mode"] == "check"
    for host in hosts:
        report = run.host(host)
        assert report["status"] == "failed" and report["verify"] == []
        assert all(s["remediations"] == [] for s in report["steps"])
        assert all(s["before"] == s["after"] for s in report["steps"])
        failing = {s["name"] for s in report["steps"] if s["before"]["status"] != "passed"}
        assert failing
        if CONFIG_BREAKS & set(dry_run.cases[host].breaks):
            assert "nginx config is valid" in failing
        assert watched(lab, host) == dry_run.broken[host], f"{host}: check changed files"
        assert nginx_processes(lab, host) == dry_run.pids["broken"][host]


def test_the_diff_of_an_emptied_file_is_against_the_file_not_dev_null(dry_run: Scenario) -> None:
    """web3's index.html exists but is empty: `--- /dev/null` would claim it does not exist,
    and `patch` refuses such a diff ("would create the file ..., which already exists")."""
    assert dry_run.run is not None
    outcomes = [r for s in dry_run.run.host("web3")["steps"] for r in s["remediations"]]
    content = next(r for r in outcomes if r["remediation"] == CONTENT)
    headers = [line for line in content["diff"].splitlines() if line.startswith("--- ")]
    assert headers == ["--- a/var/www/html/index.html"]


# -- verify ---------------------------------------------------------------------------------

MARKER_CONF = "/etc/nginx/conf.d/marker.conf"


@dataclass
class VerifyFailure:
    run: Run
    kept: dict[str, str] | None  # the known-good copy before the run
    after: dict[str, str] | None  # and after it


@pytest.fixture(scope="module")
def verify_failure(lab: Lab) -> Iterator[VerifyFailure]:
    """web1 with a known-good copy, then a valid but unverified config change, then a run
    whose checks all pass and whose verify suite fails."""
    reset_hosts(lab, ["web1"])
    try:
        recorded = run_playbook(lab, "apply", ["web1"])
        assert recorded.returncode == 0, str(recorded)
        lab.exec("web1", f"echo '# changed by hand, not verified yet' > {MARKER_CONF}")
        assert config_ok(lab, "web1")[0]
        kept = known_good(watched(lab, "web1"))
        run = run_playbook(lab, "apply", ["web1"], playbook=DATA / "verify_fails.yml")
        yield VerifyFailure(run, kept, known_good(watched(lab, "web1")))
    finally:
        reset_hosts(lab, ["web1"])


def test_a_failed_verify_fails_the_host_with_exit_2(verify_failure: VerifyFailure) -> None:
    run = verify_failure.run
    assert run.returncode == 2, str(run)
    report = run.host("web1")
    assert (report["status"], report["reason"]) == ("failed", "verify failed")
    assert [s["after"]["status"] for s in report["steps"]] == ["passed"]
    outcomes = {v["test"]: v for v in report["verify"]}
    assert outcomes["release_marker.py::test_nginx_config_is_valid"]["outcome"] == "passed"
    failed = outcomes["release_marker.py::test_the_release_marker_is_deployed"]
    assert failed["outcome"] == "failed"
    assert "/var/www/html/RELEASE is missing" in failed["message"]


def test_a_run_that_fails_verify_keeps_the_previous_known_good_copy(
    verify_failure: VerifyFailure,
) -> None:
    assert verify_failure.kept is not None and "conf.d/marker.conf" not in verify_failure.kept
    assert verify_failure.after == verify_failure.kept
