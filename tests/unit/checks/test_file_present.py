"""file_present: real outputs of the check's loop (wc, sha256sum) over a throwaway web root,
against the release folder kept in data/file_present/release (its app.js is a newer one)."""

from __future__ import annotations

import hashlib

import pytest

from opsfix.checks.file_present import FilePresent

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local

INDEX_SHA = "766866021ba33f3f1acf892906ed50a140b30618b32f649cd8ac504733ce44c0"


def test_missing_and_empty_files_fail():
    verdict = judge(FilePresent, "files")
    assert verdict.status == "failed"
    assert verdict.evidence == {
        "root": "/tmp/opsfix-capture/www",
        "empty": ["empty.txt"],
        "missing": ["favicon.ico"],
    }


def test_empty_files_pass_without_non_empty():
    verdict = judge(FilePresent, "files", non_empty=False)
    assert verdict.evidence == {"root": "/tmp/opsfix-capture/www", "missing": ["favicon.ico"]}


def test_manifest_covers_every_release_file_and_finds_the_changed_one():
    check = make(FilePresent, root="/srv/www", manifest="file_present/release")
    assert check.files == ["assets/app.js", "empty.txt", "index.html"]
    verdict = judge(FilePresent, "manifest")
    assert verdict.status == "failed"
    assert verdict.evidence["mismatched"] == ["assets/app.js"]
    assert "empty" not in verdict.evidence  # empty.txt is empty in the release too


def test_checksums_judge_alone():
    files = ["assets/app.js", "empty.txt", "index.html"]  # the order the output was captured in
    same = {"files": files, "manifest": None, "non_empty": False}
    good = {"index.html": INDEX_SHA.upper()}  # case does not matter
    assert judge(FilePresent, "manifest", **same, checksums=good).status == "passed"
    verdict = judge(FilePresent, "manifest", **same, checksums={"index.html": "0" * 64})
    assert verdict.evidence["mismatched"] == ["index.html"]


def test_explicit_files_narrow_the_manifest_and_checksums_add_to_it():
    check = make(
        FilePresent,
        root="/srv/www",
        manifest="file_present/release",
        files=["index.html"],
        checksums={"robots.txt": "0" * 64},
    )
    assert check.files == ["index.html", "robots.txt"]
    assert check.expected["index.html"] == INDEX_SHA
    assert make(FilePresent, root="/srv/www").files == ["index.html"]


def test_missing_root_fails():
    verdict = judge(FilePresent, "root_missing")
    assert verdict.status == "failed"
    assert verdict.summary == "/tmp/opsfix-capture/no-www is missing"


def test_no_sha256sum_is_could_not_tell():
    verdict = judge(FilePresent, "no_sha256sum")
    assert verdict.status == "error"
    assert "sha256sum: not found" in verdict.evidence["stderr"]


def test_unreadable_file_is_could_not_tell():
    verdict = judge(FilePresent, "not_readable")
    assert verdict.status == "error"
    assert verdict.evidence["unreadable"] == ["index.html"]


def test_missing_manifest_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"manifest folder '{tmp_path}/nope' not found"):
        make(FilePresent, root="/srv/www", manifest=str(tmp_path / "nope"))


def test_bad_checksum_is_refused():
    with pytest.raises(ValueError, match=r"index\.html"):
        make(FilePresent, root="/srv/www", checksums={"index.html": "abc"})


def test_hostile_values_stay_quoted(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(FilePresent, root=str(tmp_path / values[0]), files=values)
    assert_harmless(check, marker, str(tmp_path / values[0]), *values)
    (tmp_path / "www").mkdir()  # now the loop runs over the names
    assert_harmless(make(FilePresent, root=str(tmp_path / "www"), files=values), marker, *values)


def test_real_commands_in_dash(live_nginx, tmp_path):
    check = make(FilePresent, root=str(live_nginx.www), manifest=str(live_nginx.www))
    assert check.evaluate(run_local(check.commands())).status == "passed"
    release = tmp_path / "release"
    (release / "assets").mkdir(parents=True)
    (release / "index.html").write_bytes((live_nginx.www / "index.html").read_bytes())
    (release / "assets/app.js").write_text("changed\n")
    (release / "robots.txt").write_text("User-agent: *\n")
    check = make(FilePresent, root=str(live_nginx.www), manifest=str(release))
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.evidence["mismatched"] == ["assets/app.js"]
    assert verdict.evidence["missing"] == ["robots.txt"]
    assert hashlib.sha256(b"changed\n").hexdigest() in check.expected.values()
