from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opsfix.plugin import Plan, RemediationContext, Remove, WriteFile
from opsfix.remediations.restore_content import RestoreContent
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from .conftest import DATA, Run, canned_result, run_sh

RELEASE = DATA / "release"


def content(context: RemediationContext, **params: Any) -> RestoreContent:
    params = {"source": RELEASE, "dest": "/var/www/html", **params}
    return RestoreContent(RestoreContent.Params(**params), context)


def plan_for(context: RemediationContext, webroot: str, **params: Any) -> Plan:
    return content(context, **params).plan([canned_result(webroot)])


def test_nothing_to_do_when_the_web_root_matches(
    context: RemediationContext, tmp_path: Path, sh: Run
) -> None:
    dest = tmp_path / "html"
    shutil.copytree(RELEASE, dest)
    restore = content(context, dest=str(dest), prune=True)
    plan = restore.plan([sh(c) for c in restore.gather()])
    assert plan.is_noop and plan.refuse is None
    assert plan.summary == f"{dest} already matches {RELEASE} (3 files)"


def test_changed_files_are_written_back_and_extras_kept(context: RemediationContext) -> None:
    plan = plan_for(context, "webroot_drifted")
    assert plan.changes == (
        WriteFile(
            "/var/www/html/app.js", (RELEASE / "app.js").read_bytes(), 0o644, "/var/www/html"
        ),
    )
    assert plan.summary == f"write 1 file(s) to /var/www/html from {RELEASE}"
    assert plan.stage_root is None and plan.act == () and plan.rollback == ()
    assert "df -P" in plan.validate[0]


def test_prune_removes_what_the_release_does_not_have(context: RemediationContext) -> None:
    plan = plan_for(context, "webroot_drifted", prune=True)
    assert Remove("/var/www/html/extra.txt", "/var/www/html") in plan.changes
    assert plan.summary.endswith(", remove 1")


def test_an_emptied_web_root_gets_every_file_with_the_given_mode(
    context: RemediationContext,
) -> None:
    plan = plan_for(context, "webroot_missing", mode=0o640)
    paths = [c.path for c in plan.changes]
    assert paths == [f"/var/www/html/{p}" for p in ("app.js", "assets/style.css", "index.html")]
    assert {c.mode for c in plan.changes if isinstance(c, WriteFile)} == {0o640}


def test_a_missing_release_is_refused(context: RemediationContext, tmp_path: Path) -> None:
    plan = plan_for(context, "webroot_drifted", source=tmp_path / "nope")
    assert plan.refuse == f"release folder {tmp_path / 'nope'} does not exist"


def test_an_empty_release_is_refused(context: RemediationContext, tmp_path: Path) -> None:
    (tmp_path / "empty/sub").mkdir(parents=True)
    plan = plan_for(context, "webroot_drifted", source=tmp_path / "empty")
    assert plan.refuse == f"release folder {tmp_path / 'empty'} has no files"


def test_a_dest_that_is_not_a_folder_is_refused(
    context: RemediationContext, tmp_path: Path, sh: Run
) -> None:
    (tmp_path / "file").write_text("x")
    restore = content(context, dest=str(tmp_path / "file"))
    plan = restore.plan([sh(c) for c in restore.gather()])
    assert plan.refuse is not None and plan.refuse.startswith(f"cannot list {tmp_path}/file")


def test_the_release_path_is_relative_to_the_playbook(context: RemediationContext) -> None:
    params = RestoreContent.Params.model_validate(
        {"source": "release", "dest": "/srv/www"}, context={"base_dir": DATA}
    )
    assert params.source == RELEASE


@pytest.mark.parametrize(
    "params",
    [{"dest": "/"}, {"dest": "var/www"}, {"dest": "/var/www/../etc"}, {"mode": 0o10000}, {"x": 1}],
)
def test_bad_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RestoreContent.Params(**{"source": RELEASE, "dest": "/var/www/html", **params})


def test_the_space_check_passes_or_says_what_is_missing(
    context: RemediationContext, tmp_path: Path, sh: Run
) -> None:
    plan = plan_for(context, "webroot_missing", dest=f"{tmp_path}/not/yet/html")
    assert " need=1036\n" in plan.validate[0]  # 3 files of one 4 KiB block each, and 1 MiB spare
    assert sh(plan.validate[0]).ok  # measured on the nearest existing parent
    huge = plan.validate[0].replace(" need=1036", " need=999999999999")
    result = sh(huge)
    assert result.exit_status == 1
    assert f"{tmp_path}: " in result.stderr and "KiB free, 999999999999 KiB needed" in result.stderr


def test_gathered_output_parses_the_way_it_was_captured(context: RemediationContext) -> None:
    result = CommandResult("x", 0, canned_result("webroot_drifted").stdout)
    plan = content(context).plan([result])
    assert [c.path for c in plan.changes] == ["/var/www/html/app.js"]


def test_hostile_values_stay_quoted(context: RemediationContext, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    dest = f"/tmp/x; touch {marker}"
    plan = plan_for(context, "webroot_missing", dest=dest)
    commands = [*content(context, dest=dest).gather(), *plan.validate]
    for command in commands:
        assert quote(dest) in command
        run_sh(command)
    assert not marker.exists()


def test_a_symlink_where_the_release_has_a_folder_refuses_naming_it(
    context: RemediationContext, tmp_path: Path, sh: Run
) -> None:
    release, dest, cron = tmp_path / "release", tmp_path / "html", tmp_path / "cron.d"
    (release / "assets").mkdir(parents=True)
    (release / "assets" / "site.css").write_text("body {}\n")
    dest.mkdir()
    cron.mkdir()
    (dest / "assets").symlink_to(cron)
    restore = content(context, source=release, dest=str(dest))
    plan = restore.plan([sh(c) for c in restore.gather()])
    assert (
        plan.refuse
        == f"{dest}/assets: a symlink on the host where a folder should be: not followed"
    )
    assert not plan.changes
