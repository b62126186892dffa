from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opsfix.engine.transaction import Transaction
from opsfix.plugin import Plan, RemediationContext, Remove, Symlink, WriteFile
from opsfix.remediations import _nginx
from opsfix.remediations.nginx_restore_config import NginxRestoreConfig
from opsfix.shell import quote

from .conftest import LocalConnection, Run, canned_result, run_sh

TEMPLATES = {
    "files": {
        "/etc/nginx/nginx.conf": "nginx/nginx.conf.j2",
        "/etc/nginx/sites-available/default": "nginx/site.conf.j2",
    },
    "symlinks": {"/etc/nginx/sites-enabled/default": "/etc/nginx/sites-available/default"},
}


def remediation(context: RemediationContext, **params: Any) -> NginxRestoreConfig:
    return NginxRestoreConfig(NginxRestoreConfig.Params(**params), context)


def plan_from(context: RemediationContext, live: str, snapshot: str | None, **params: Any) -> Plan:
    facts = [canned_result(live)] + ([canned_result(snapshot)] if snapshot else [])
    return remediation(context, **params).plan(facts)


def by_path(plan: Plan) -> dict[str, object]:
    return {change.path: change for change in plan.changes}


# -- known-good snapshot --------------------------------------------------------------------


def test_nothing_to_do_when_the_tree_matches_the_snapshot(context: RemediationContext) -> None:
    plan = plan_from(context, "live_healthy", "known_good")
    assert plan.is_noop and plan.refuse is None
    assert "already matches the known-good snapshot" in plan.summary


def test_a_broken_tree_goes_back_to_the_snapshot(context: RemediationContext) -> None:
    plan = plan_from(context, "live_broken", "known_good")
    changes = by_path(plan)
    assert set(changes) == {
        "/etc/nginx/nginx.conf",
        "/etc/nginx/sites-available/default",
        "/etc/nginx/conf.d/broken.conf",
        "/etc/nginx/sites-enabled/old",
    }
    conf = changes["/etc/nginx/nginx.conf"]
    assert isinstance(conf, WriteFile) and conf.content.startswith(b"events {}\n")
    site = changes["/etc/nginx/sites-available/default"]
    assert isinstance(site, WriteFile) and site.mode == 0o644
    assert isinstance(changes["/etc/nginx/conf.d/broken.conf"], Remove)
    assert isinstance(changes["/etc/nginx/sites-enabled/old"], Remove)  # the dangling link
    assert plan.stage_root == "/etc/nginx"
    assert plan.validate == (_nginx.staged_test("nginx"),)
    assert "nginx -c /etc/nginx/nginx.conf -s reload" in plan.act[0]
    assert "systemctl reload nginx" in plan.act[0]
    assert "nginx -t -q -c /etc/nginx/nginx.conf" in plan.rollback[0]
    assert plan.summary.startswith("restore /etc/nginx from the known-good snapshot")
    assert "2 file(s) to write, 2 path(s) to remove" in plan.summary


def test_the_snapshot_wins_over_templates_in_auto(context: RemediationContext) -> None:
    plan = plan_from(context, "live_broken", "known_good", source="auto", **TEMPLATES)
    assert "known-good snapshot /var/lib/opsfix/known-good/etc_nginx" in plan.summary


def test_no_snapshot_and_no_templates_refuses_with_what_to_do(context: RemediationContext) -> None:
    plan = plan_from(context, "live_broken", "known_good_missing", source="auto")
    assert plan.refuse is not None and not plan.changes
    assert "no known-good snapshot of /etc/nginx" in plan.refuse
    assert "set `files`" in plan.refuse


def test_known_good_is_the_default_and_refuses_without_a_snapshot(
    context: RemediationContext,
) -> None:
    plan = plan_from(context, "live_broken", "known_good_missing")
    assert plan.refuse is not None and not plan.changes
    assert plan.refuse.startswith("no known-good snapshot of /etc/nginx at ")


def test_templates_are_never_a_fallback_of_known_good(context: RemediationContext) -> None:
    with pytest.raises(ValidationError, match="source 'known_good' has none"):
        remediation(context, source="known_good", **TEMPLATES)
    with pytest.raises(ValidationError, match="source 'peer' has none"):
        remediation(context, source="peer", **TEMPLATES)


def test_a_snapshot_over_2_mib_is_refused(context: RemediationContext) -> None:
    plan = plan_from(context, "live_broken", "known_good_too_big")
    assert plan.refuse is not None and "over the 2 MiB limit" in plan.refuse


def test_a_missing_root_is_refused(context: RemediationContext) -> None:
    plan = plan_from(context, "live_missing", "known_good")
    assert plan.refuse is not None and "cannot list /etc/nginx" in plan.refuse


# -- templates ------------------------------------------------------------------------------


def test_templates_rebuild_the_managed_files_and_prune_strays(context: RemediationContext) -> None:
    plan = plan_from(context, "live_drifted", "known_good_missing", source="auto", **TEMPLATES)
    changes = by_path(plan)
    site = changes["/etc/nginx/sites-available/default"]
    assert isinstance(site, WriteFile)
    assert site.content == b"# nginx/site.conf.j2\nroot /var/www/html;\n"  # rendered with vars
    link = changes["/etc/nginx/sites-enabled/default"]
    assert link == Symlink(
        "/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default", "/etc/nginx"
    )
    assert isinstance(changes["/etc/nginx/sites-enabled/stale"], Remove)
    assert isinstance(changes["/etc/nginx/conf.d/extra.conf"], Remove)
    assert "/etc/nginx/conf.d/README" not in changes  # not *.conf: nginx never loads it
    assert "/etc/nginx/mime.types" not in changes  # not managed, not under prune
    assert plan.summary.startswith("restore /etc/nginx from the templates")


def test_template_source_does_not_read_the_snapshot(context: RemediationContext) -> None:
    assert len(remediation(context, source="template", **TEMPLATES).gather()) == 1
    assert len(remediation(context, source="auto", **TEMPLATES).gather()) == 2


def test_nothing_to_do_when_the_tree_matches_the_templates(
    context: RemediationContext, tmp_path: Path
) -> None:
    root = tmp_path / "nginx"
    (root / "sites-enabled").mkdir(parents=True)
    (root / "nginx.conf").write_text("# nginx/nginx.conf.j2\nroot /var/www/html;\n")
    (root / "sites-enabled/default").symlink_to(root / "nginx.conf")
    params = {
        "root": str(root),
        "source": "template",
        "files": {f"{root}/nginx.conf": "nginx/nginx.conf.j2"},
        "symlinks": {f"{root}/sites-enabled/default": f"{root}/nginx.conf"},
    }
    nginx_restore = remediation(context, **params)
    plan = nginx_restore.plan([run_sh(command) for command in nginx_restore.gather()])
    assert plan.is_noop, plan
    (root / "sites-enabled/other").symlink_to("/nowhere")
    plan = nginx_restore.plan([run_sh(command) for command in nginx_restore.gather()])
    assert plan.changes == (Remove(f"{root}/sites-enabled/other", str(root)),)


def test_a_folder_where_a_file_belongs_is_refused(
    context: RemediationContext, tmp_path: Path
) -> None:
    root = tmp_path / "nginx"
    (root / "sites-available/default").mkdir(parents=True)
    files = {f"{root}/sites-available/default": "nginx/site.conf.j2"}
    nginx_restore = remediation(context, root=str(root), source="auto", files=files)
    plan = nginx_restore.plan([run_sh(command) for command in nginx_restore.gather()])
    assert plan.refuse is not None and "sites-available/default: a folder" in plan.refuse


@pytest.mark.parametrize(
    "params",
    [
        {"root": "/"},
        {"root": "etc/nginx"},
        {"root": "/etc/nginx/"},
        {"files": {"/etc/passwd": "nginx/site.conf.j2"}},
        {"files": {"/etc/nginx/../passwd": "nginx/site.conf.j2"}},
        {"symlinks": {"/etc/nginx-other/x": "/etc/nginx/x"}},
        {"source": "template"},
        {"source": "latest"},
        {"prune": "conf.d"},
        {"unknown": 1},
    ],
)
def test_bad_params_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NginxRestoreConfig.Params(**params)


def test_hostile_values_stay_quoted(context: RemediationContext, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"x; touch {marker}"
    nginx_restore = remediation(
        context, root=f"/tmp/{evil}", binary=evil, service=evil, known_good_dir=f"/tmp/{evil}"
    )
    plan = nginx_restore.plan([canned_result("live_broken"), canned_result("known_good")])
    assert quote(evil) in plan.act[0] and quote(evil) in plan.validate[0]
    commands = [*nginx_restore.gather(), *plan.validate, *plan.act, *plan.rollback]
    for command in [*commands, *nginx_restore.baseline()]:
        run_sh(command, env={"OPSFIX_STAGE": str(tmp_path), "OPSFIX_STAGE_ROOT": str(tmp_path)})
    assert not marker.exists()


# -- on a real tree: baseline, gather, and the engine's staging -----------------------------


def test_baseline_keeps_a_snapshot_only_while_nginx_t_passes(
    context: RemediationContext, nginx_tree: Path
) -> None:
    known_good = nginx_tree.parent / "known-good"
    nginx_restore = remediation(context, root=str(nginx_tree), known_good_dir=str(known_good))
    snapshot = Path(nginx_restore.snapshot)
    (baseline,) = nginx_restore.baseline()

    (nginx_tree / "conf.d/broken.conf").write_text("proxy_pass;\n")
    result = run_sh(baseline)
    assert result.exit_status == 1 and "not refreshed" in result.stderr
    assert not snapshot.exists()

    (nginx_tree / "conf.d/broken.conf").unlink()
    assert run_sh(baseline).ok
    first = snapshot.resolve()
    assert snapshot.is_symlink() and (first / "conf.d/gzip.conf").read_text() == "gzip on;\n"
    assert os.readlink(first / "sites-enabled/default") == str(
        nginx_tree / "sites-available/default"
    )

    (current,) = nginx_restore.baseline_current()
    assert run_sh(current).ok  # the probe that rides along with the checks agrees
    assert run_sh(baseline).ok  # nothing changed: the same copy stays, none is made
    assert snapshot.resolve() == first
    (nginx_tree / "sites-enabled/default").unlink()  # a symlink retargeted is a change
    (nginx_tree / "sites-enabled/default").symlink_to(nginx_tree / "sites-available/other")
    (nginx_tree / "sites-available/other").write_text("server { listen 81; }\n")
    assert not run_sh(current).ok
    assert run_sh(baseline).ok
    assert snapshot.resolve() != first
    first = snapshot.resolve()
    assert os.readlink(first / "sites-enabled/default").endswith("sites-available/other")
    (nginx_tree / "sites-enabled/default").unlink()
    (nginx_tree / "sites-enabled/default").symlink_to(nginx_tree / "sites-available/default")
    assert run_sh(baseline).ok
    first = snapshot.resolve()

    (nginx_tree / "conf.d/gzip.conf").write_text("gzip off;\n")
    assert run_sh(baseline).ok
    assert (snapshot / "conf.d/gzip.conf").read_text() == "gzip off;\n"
    assert not first.exists()  # the previous copy is gone, and nothing half-written is left
    assert {p.name for p in known_good.iterdir()} == {snapshot.name, snapshot.resolve().name}
    assert (known_good.stat().st_mode & 0o777) == 0o700

    (nginx_tree / "sites-available/default").write_text("server {\n")
    assert run_sh(baseline).exit_status == 1
    assert (snapshot / "sites-available/default").read_text().startswith("server { listen")


def test_gathered_snapshot_restores_a_broken_tree_through_the_engine(
    context: RemediationContext, nginx_tree: Path, tmp_path: Path
) -> None:
    """Real gather, plan, then the engine's own staging, validation, swap and act."""
    nginx_restore = remediation(
        context, root=str(nginx_tree), known_good_dir=str(tmp_path / "known-good")
    )
    assert run_sh(nginx_restore.baseline()[0]).ok
    good = {p: p.read_bytes() for p in nginx_tree.rglob("*") if p.is_file()}
    (nginx_tree / "conf.d/broken.conf").write_text("proxy_pass;\n")
    (nginx_tree / "sites-available/default").write_text("server {\n")
    (nginx_tree / "sites-enabled/old").symlink_to(nginx_tree / "sites-available/old")

    plan = nginx_restore.plan([run_sh(command) for command in nginx_restore.gather()])
    assert {type(c).__name__ for c in plan.changes} == {"WriteFile", "Remove"}
    tx = Transaction(
        LocalConnection(),
        plan,
        "t1",
        state_dir=str(tmp_path / "tx"),
        backup_dir=str(tmp_path / "b"),
    )
    prepared, applied, _ = tx.prepare_and_apply()
    assert prepared.ok, prepared.text()
    assert applied is not None and applied.ok, applied.text()
    assert {p: p.read_bytes() for p in nginx_tree.rglob("*") if p.is_file()} == good
    assert not (nginx_tree / "sites-enabled/old").is_symlink()
    assert subprocess.run(["nginx", "-t", "-c", str(nginx_tree / "nginx.conf")]).returncode == 0


def test_a_snapshot_that_no_longer_validates_changes_nothing(
    context: RemediationContext, nginx_tree: Path, tmp_path: Path
) -> None:
    """The snapshot is restored to a staged copy first; if that fails nginx -t, live stays."""
    known_good = tmp_path / "known-good"
    nginx_restore = remediation(context, root=str(nginx_tree), known_good_dir=str(known_good))
    assert run_sh(nginx_restore.baseline()[0]).ok
    (Path(nginx_restore.snapshot) / "conf.d/gzip.conf").write_text("gzip maybe;\n")
    (nginx_tree / "conf.d/gzip.conf").write_text("gzip off;\n")
    before = {p: p.read_bytes() for p in nginx_tree.rglob("*") if p.is_file()}

    plan = nginx_restore.plan([run_sh(command) for command in nginx_restore.gather()])
    assert [c.path for c in plan.changes] == [f"{nginx_tree}/conf.d/gzip.conf"]
    tx = Transaction(
        LocalConnection(),
        plan,
        "t2",
        state_dir=str(tmp_path / "tx"),
        backup_dir=str(tmp_path / "b"),
    )
    prepared, applied, _ = tx.prepare_and_apply()
    assert not prepared.ok and prepared.failed_phase == "validate" and applied is None
    assert 'invalid value "maybe"' in prepared.text()
    assert {p: p.read_bytes() for p in nginx_tree.rglob("*") if p.is_file()} == before


def test_act_and_rollback_reload_only_a_running_nginx(
    context: RemediationContext, namespace_host: Run
) -> None:
    """On a lab-like host (no systemd; the host's /etc/nginx is a test tree)."""
    plan = plan_from(context, "live_broken", "known_good")
    act, rollback = plan.act[0], plan.rollback[0]
    assert namespace_host(act).stdout == "nginx is not running: no reload\n"
    assert namespace_host(rollback).stdout == "nginx is not running: no reload\n"

    assert namespace_host("nginx").ok
    workers = 'sleep 0.3; pgrep -P "$(cat /run/nginx.pid)"'
    before = namespace_host(workers).stdout
    result = namespace_host(act)
    assert result.ok, result.stderr
    after = namespace_host(workers).stdout
    assert after and after != before  # reloaded: new workers, same master

    namespace_host("echo 'bogus;' >> /etc/nginx/nginx.conf")
    result = namespace_host(rollback)
    assert result.ok and "fails nginx -t: not reloaded" in result.stdout
    assert namespace_host(workers).stdout == after


def test_a_reload_returns_once_new_workers_serve_and_the_old_ones_are_quitting(
    namespace_host: Run,
) -> None:
    """The signal alone returns at once, while the old workers still answer with the old
    config; a re-check right after the act must see the new one."""
    assert namespace_host("nginx").ok
    listing = 'pgrep -a -P "$(cat /run/nginx.pid)"'
    before = {line.split()[0] for line in namespace_host(listing).stdout.splitlines()}
    for _ in range(5):
        result = namespace_host(_nginx.reload("nginx", "nginx") + "; " + listing)
        assert result.ok, result.stderr
        now = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
        assert any(pid not in before for pid, _ in now), now  # new workers run
        # and no old one still serves (nginx retitles those it told to quit)
        assert all(pid not in before or "shutting down" in rest for pid, rest in now), now
        before = {pid for pid, _ in now}


def test_a_reload_does_not_wait_for_a_master_it_cannot_find(namespace_host: Run) -> None:
    assert namespace_host("nginx").ok
    result = namespace_host(_nginx.reload("nginx", "nginx", pid_file="/run/none.pid"))
    assert result.ok, result.stderr
