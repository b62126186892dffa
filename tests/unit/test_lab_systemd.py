"""systemd lab hosts without root: the cached tree's name and tweaks, the host's network
lines and cgroups, the record's kind, and the CLI flags that ask for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsfix.cli import _build_parser
from opsfix.lab import nspawn, rootfs
from opsfix.lab.plan import plan_lab
from opsfix.lab.state import LabPaths, LabRecord


def test_a_changed_package_list_names_another_tree() -> None:
    base = rootfs.RootfsSpec("bookworm")
    assert base.dirname == rootfs.RootfsSpec("bookworm", tuple(reversed(rootfs.PACKAGES))).dirname
    assert base.dirname != rootfs.RootfsSpec("bookworm", (*rootfs.PACKAGES, "vim")).dirname
    assert base.dirname != rootfs.RootfsSpec("trixie").dirname
    assert base.dirname.startswith("rootfs-bookworm-")


def test_the_tree_runs_what_the_checks_call() -> None:
    for package in ("systemd", "openssh-server", "nginx", "logrotate", "cron", "curl", "python3"):
        assert package in rootfs.PACKAGES


def test_suite_is_the_controllers_codename(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Debian GNU/Linux 12"\nVERSION_CODENAME=bookworm\n')
    assert rootfs.host_suite(release) == "bookworm"
    release.write_text('VERSION_CODENAME="trixie"\n')
    assert rootfs.host_suite(release) == "trixie"
    assert rootfs.host_suite(tmp_path / "missing") == "bookworm"


def test_cache_dir_is_explicit_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPSFIX_CACHE_DIR", raising=False)
    assert rootfs.resolve_cache_dir() == Path("/var/cache/opsfix")
    monkeypatch.setenv("OPSFIX_CACHE_DIR", str(tmp_path))
    assert rootfs.resolve_cache_dir() == tmp_path
    assert rootfs.resolve_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_a_cached_tree_is_used_without_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = rootfs.RootfsSpec("bookworm")
    (tmp_path / spec.dirname / "etc").mkdir(parents=True)
    (tmp_path / spec.dirname / "etc/os-release").write_text("ID=debian\n")
    monkeypatch.setattr(rootfs, "_build", lambda *_: pytest.fail("built again"))
    assert rootfs.ensure_rootfs(tmp_path, spec) == tmp_path / spec.dirname


def test_tweaks_leave_no_identity_and_only_the_lab_host_key(tmp_path: Path) -> None:
    for name in ("etc/ssh/sshd_config.d", "var/lib/dbus"):
        (tmp_path / name).mkdir(parents=True)
    for name in ("etc/hostname", "etc/machine-id", "var/lib/dbus/machine-id"):
        (tmp_path / name).write_text("builder\n")
    for name in ("ssh_host_rsa_key", "ssh_host_ed25519_key.pub"):
        (tmp_path / "etc/ssh" / name).write_text("key\n")
    rootfs._tweak(tmp_path)
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert not (tmp_path / "etc/hostname").exists()
    assert not (tmp_path / "var/lib/dbus/machine-id").exists()
    assert not list((tmp_path / "etc/ssh").glob("ssh_host_*"))
    conf = (tmp_path / "etc/ssh/sshd_config.d/lab.conf").read_text()
    assert "HostKey /etc/ssh/ssh_host_ed25519_key\n" in conf
    assert "PasswordAuthentication no\n" in conf


def test_old_trees_go_unless_a_host_still_mounts_them(tmp_path: Path) -> None:
    for name in ("rootfs-bookworm-old", "rootfs-bookworm-used", "rootfs-bookworm-new"):
        (tmp_path / name).mkdir()
    mounts = f"lab-root /x overlay rw,lowerdir={tmp_path}/rootfs-bookworm-used,upperdir=/u 0 0\n"
    rootfs._remove_unused(tmp_path, keep=tmp_path / "rootfs-bookworm-new", mounts=mounts)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rootfs-bookworm-new",
        "rootfs-bookworm-used",
    ]


def test_a_host_gets_its_address_before_it_boots() -> None:
    plan = plan_lab(2, "oft", "10.232.0.0/24")
    assert nspawn.address_commands(plan, plan.hosts[1]) == [
        "link set lo up",
        "addr add 10.232.0.12/24 dev eth0",
        "link set eth0 up",
    ]


def test_each_host_has_its_own_cgroup_under_the_lab() -> None:
    plan = plan_lab(2, "oft", "10.232.0.0/24")
    dirs = nspawn.cgroup_dirs(plan, plan.hosts[0])
    assert dirs and all(d.parts[-2:] == ("opsfix-lab-oft", "web1") for d in dirs)


def test_a_record_without_a_kind_is_a_namespace_lab(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    data = {"name": "oft", "subnet": "10.232.0.0/24", "count": 1, "pids": {}, "version": 1}
    paths.record.write_text(json.dumps(data))
    assert LabRecord.load(paths).kind == "namespace"
    LabRecord(name="oft", subnet="10.232.0.0/24", count=1, kind="systemd").save(paths)
    assert LabRecord.load(paths).kind == "systemd"


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        ([], "namespace"),
        (["--systemd"], "systemd"),
        (["--kind", "systemd"], "systemd"),
        (["--kind", "namespace"], "namespace"),
    ],
)
def test_lab_up_asks_for_a_kind(words: list[str], kind: str) -> None:
    args = _build_parser().parse_args(["lab", "up", "--hosts", "2", *words])
    assert (args.kind, args.hosts) == (kind, 2)
