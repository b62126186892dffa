"""The staged `nginx -t` really tests the staged tree, includes and symlinks included.

A live tree whose nginx.conf includes absolute paths into itself (as Debian's does) and
whose sites-enabled link is absolute: a plain `nginx -t -c <copy>/nginx.conf` would test the
live includes. Each case breaks one side only and checks that the verdict follows the
staged copy, through the private mount namespace and through the rewritten copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from opsfix.remediations import _nginx

pytestmark = pytest.mark.skipif(
    not shutil.which("nginx") or not shutil.which("dash") or os.geteuid() != 0,
    reason="needs nginx, dash and root",
)


def _namespaces_permitted() -> bool:
    probe = ["unshare", "-m", "sh", "-c", "mount --bind / /mnt"]
    return (
        bool(shutil.which("unshare")) and subprocess.run(probe, capture_output=True).returncode == 0
    )


ISOLATIONS = [
    pytest.param(
        "namespace",
        marks=pytest.mark.skipif(not _namespaces_permitted(), reason="no mount namespaces here"),
    ),
    "rewrite",
]


@pytest.fixture(params=["nginx", "etc nginx.v2"])
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A valid tree; the second name has a space and a dot, to test the path rewriting."""
    root = tmp_path / request.param
    for folder in ("conf.d", "sites-available", "sites-enabled"):
        (root / folder).mkdir(parents=True)
    (root / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f'http {{\n\taccess_log off;\n\tinclude "{root}/conf.d/*.conf";\n'
        f'\tinclude "{root}/sites-enabled/*";\n}}\n'
    )
    (root / "conf.d/gzip.conf").write_text("gzip on;\n")
    (root / "sites-available/default").write_text("server { listen 127.0.0.1:18080; }\n")
    (root / "sites-enabled/default").symlink_to(root / "sites-available/default")
    return root


@pytest.fixture
def stage(live: Path, tmp_path: Path) -> Path:
    """The engine's staged copy: `cp -a root/. stage/`, absolute symlinks unchanged."""
    copy = tmp_path / "stage" / "root"
    copy.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{live}/.", f"{copy}/"], check=True)
    return copy


def staged_test(live: Path, stage: Path, isolation: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPSFIX_STAGE": str(stage), "OPSFIX_STAGE_ROOT": str(live)}
    command = _nginx.staged_test("nginx", isolation=isolation)
    return subprocess.run(["dash", "-c", command], capture_output=True, text=True, env=env)


def plain_test(conf: Path) -> int:
    return subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True).returncode


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_valid_staged_copy_passes(live: Path, stage: Path, isolation: str) -> None:
    result = staged_test(live, stage, isolation)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_staged_site_broken_behind_an_absolute_symlink_fails(
    live: Path, stage: Path, isolation: str
) -> None:
    (stage / "sites-available/default").write_text("server { bogus_directive; }\n")
    assert plain_test(stage / "nginx.conf") == 0  # the naive test reads the live site: fooled
    result = staged_test(live, stage, isolation)
    assert result.returncode == 1
    assert 'unknown directive "bogus_directive"' in result.stderr
    assert str(live / "sites-enabled/default") in result.stderr  # named by its live path
    assert plain_test(live / "nginx.conf") == 0  # and the live tree is untouched


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_broken_staged_include_fails(live: Path, stage: Path, isolation: str) -> None:
    (stage / "conf.d/new.conf").write_text("proxy_pass;\n")
    assert plain_test(stage / "nginx.conf") == 0
    assert staged_test(live, stage, isolation).returncode == 1


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_staged_dangling_site_link_fails(live: Path, stage: Path, isolation: str) -> None:
    (stage / "sites-enabled/old").symlink_to(live / "sites-available/old")
    result = staged_test(live, stage, isolation)
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_staged_fix_passes_while_the_live_tree_is_broken(
    live: Path, stage: Path, isolation: str
) -> None:
    (live / "conf.d/broken.conf").write_text("proxy_pass;\n")
    (live / "sites-available/default").write_text("server {\n")
    assert plain_test(live / "nginx.conf") == 1
    assert plain_test(stage / "nginx.conf") == 1  # the naive test reads the live includes
    result = staged_test(live, stage, isolation)
    assert result.returncode == 0, result.stderr


def test_the_namespace_leaves_no_mount_behind(live: Path, stage: Path) -> None:
    if not _namespaces_permitted():
        pytest.skip("no mount namespaces here")
    (stage / "sites-available/default").write_text("bogus;\n")
    assert staged_test(live, stage, "namespace").returncode == 1
    assert str(live) not in Path("/proc/self/mountinfo").read_text().replace("\\040", " ")
    assert (live / "sites-available/default").read_text().startswith("server")


def test_auto_falls_back_to_the_rewritten_copy(
    live: Path, stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an `unshare` that is refused (as in an unprivileged container), auto still tests."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "unshare").write_text(
        "#!/bin/sh\necho 'unshare: Operation not permitted' >&2\nexit 1\n"
    )
    (fake / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    assert staged_test(live, stage, "auto").returncode == 0
    (stage / "sites-available/default").write_text("bogus;\n")
    assert staged_test(live, stage, "auto").returncode == 1
    assert staged_test(live, stage, "namespace").returncode == 1  # no namespace, no verdict


def test_the_rewritten_copy_is_cleaned_up(live: Path, stage: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "OPSFIX_STAGE": str(stage)}
    env["OPSFIX_STAGE_ROOT"] = str(live)
    command = _nginx.staged_test("nginx", isolation="rewrite")
    assert subprocess.run(["dash", "-c", command], env=env, capture_output=True).returncode == 0
    assert list(scratch.iterdir()) == []


def test_without_a_stage_it_refuses() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSFIX_STAGE")}
    command = _nginx.staged_test("nginx")
    result = subprocess.run(["dash", "-c", command], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "OPSFIX_STAGE" in result.stderr


def test_the_rewrite_takes_names_as_data(live: Path, stage: Path, tmp_path: Path) -> None:
    """A name with a newline and another name after it names nothing outside the copy
    (read as lines, the second name would be a file in the working folder)."""
    victim = tmp_path / "victim.conf"
    victim.write_text(f"include {live}/x;\n")
    (stage / "conf.d" / "a.conf\nvictim.conf").write_text(f"# {live}/conf.d\n")
    (stage / "sites-enabled" / "odd\nvictim.conf").symlink_to(live / "sites-available/default")
    env = {**os.environ, "OPSFIX_STAGE": str(stage), "OPSFIX_STAGE_ROOT": str(live)}
    command = _nginx.staged_test("nginx", isolation="rewrite")
    done = subprocess.run(["dash", "-c", command], env=env, cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == f"include {live}/x;\n" and not victim.is_symlink()
