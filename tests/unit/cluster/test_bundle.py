"""The bundle a cluster run ships: what it holds, its hash, and what a worker refuses."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from opsfix.cluster import bundle
from opsfix.cluster.bundle import TaskRefused


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A playbook folder with plugins, templates, a verify suite outside it, and noise."""
    play = tmp_path / "playbooks"
    (play / "checks").mkdir(parents=True)
    (play / "remediations").mkdir()
    (play / "templates" / "nginx").mkdir(parents=True)
    (play / "site.yml").write_text("name: site\n")
    (play / "other.yml").write_text("name: other\n")  # another playbook: not shipped
    (play / "checks" / "mine.py").write_text("CHECK = 1\n")
    (play / "checks" / "notes.txt").write_text("not a plugin\n")
    (play / "remediations" / "fix.py").write_text("FIX = 1\n")
    (play / "templates" / "nginx" / "site.conf.j2").write_text("server {}\n")
    suites = tmp_path / "tests" / "host"
    suites.mkdir(parents=True)
    (suites / "test_site.py").write_text("def test_x(host): pass\n")
    (suites / "conftest.py").write_text("# fixtures\n")
    (tmp_path / "tests" / "conftest.py").write_text("# shared\n")
    extra = tmp_path / "extra" / "checks"
    extra.mkdir(parents=True)
    (extra / "more.py").write_text("MORE = 1\n")
    return tmp_path


def collect(root: Path) -> bundle.Bundle:
    return bundle.collect(
        root / "playbooks" / "site.yml",
        [root / "tests" / "host" / "test_site.py"],
        [root / "extra"],
    )


def test_a_bundle_holds_the_playbook_plugins_templates_and_suites_relative_to_one_root(
    project: Path,
) -> None:
    made = collect(project)
    assert made.playbook == "playbooks/site.yml"
    assert made.plugin_dirs == ("extra",)
    assert sorted(made.files) == [
        "extra/checks/more.py",
        "playbooks/checks/mine.py",
        "playbooks/remediations/fix.py",
        "playbooks/site.yml",
        "playbooks/templates/nginx/site.conf.j2",
        "tests/conftest.py",
        "tests/host/conftest.py",
        "tests/host/test_site.py",
    ]


def test_the_hash_names_the_content_and_any_change_changes_it(project: Path) -> None:
    first = collect(project)
    assert collect(project).sha256 == first.sha256  # same files, same name
    (project / "playbooks" / "checks" / "mine.py").write_text("CHECK = 2\n")
    assert collect(project).sha256 != first.sha256


def test_a_loaded_bundle_unpacks_to_the_same_files_once(project: Path, tmp_path: Path) -> None:
    made = collect(project)
    loaded = bundle.load(made.doc(), made.sha256)
    root = bundle.unpack(loaded, tmp_path / "cache")
    assert root.name == made.sha256
    for rel, body in made.files.items():
        assert (root / rel).read_bytes() == body
    assert (root / "extra").is_dir()
    assert bundle.unpack(loaded, tmp_path / "cache") == root  # reused, not written again
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [made.sha256]


def test_content_that_does_not_match_its_hash_is_refused(project: Path) -> None:
    made = collect(project)
    doc = made.doc()
    doc["files"]["playbooks/site.yml"] = "bmFtZTogZXZpbAo="  # "name: evil"
    with pytest.raises(TaskRefused, match="does not match its hash"):
        bundle.load(doc, made.sha256)


@pytest.mark.parametrize("bad", ["/etc/cron.d/x", "../outside.py", "a/../../b", ""])
def test_a_path_that_leaves_the_bundle_is_refused_even_with_a_matching_hash(
    project: Path, bad: str
) -> None:
    doc = copy.deepcopy(collect(project).doc())
    doc["files"][bad] = "eA=="
    with pytest.raises(TaskRefused, match="path"):
        bundle.load(doc, bundle.digest(doc))


def test_a_document_of_another_format_is_refused() -> None:
    with pytest.raises(TaskRefused, match="format"):
        bundle.load({"format": "tarball"}, "0" * 64)
    with pytest.raises(TaskRefused, match="format"):
        bundle.load(["not", "a", "mapping"], "0" * 64)
