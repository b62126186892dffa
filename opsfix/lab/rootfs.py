"""The Debian tree that systemd lab hosts boot: built once with mmdebstrap, then cached.

Every systemd host mounts this tree read-only as the lower layer of its own overlay, so
a lab of ten hosts costs one tree on disk. The tree is named after a digest of what went
into it (suite, packages, the tweaks below), so a changed package list builds a new one
and the old one is removed once no lab still mounts it.

The tree holds nothing of a lab: no keys, no hostname, an empty machine-id. `up` writes
those into each host's overlay.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from opsfix.errors import LabError
from opsfix.lab import system

DEFAULT_CACHE_DIR = Path("/var/cache/opsfix")
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "libnss-myhostname",
    "openssh-server", "nginx", "sudo", "iproute2", "procps", "psmisc", "curl",
    "ca-certificates", "logrotate", "cron", "python3", "python3-jinja2",
)  # fmt: skip
MIRRORS = (
    "deb http://deb.debian.org/debian {suite} main",
    "deb http://deb.debian.org/debian {suite}-updates main",
    "deb http://deb.debian.org/debian-security {suite}-security main",
)
# sshd: lab keys only (each host gets its own ed25519 key), root by key only.
SSHD_LAB_CONF = (
    "HostKey /etc/ssh/ssh_host_ed25519_key\n"
    "PermitRootLogin prohibit-password\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UseDNS no\n"
)
TWEAKS_VERSION = 1  # bump when `_tweak` changes what the tree holds
BUILD_TIMEOUT = 1800.0


@dataclass(frozen=True)
class RootfsSpec:
    """What a tree is built from; its digest names the cached tree."""

    suite: str
    packages: tuple[str, ...] = PACKAGES

    @property
    def digest(self) -> str:
        recipe = {
            "suite": self.suite,
            "packages": sorted(self.packages),
            "mirrors": MIRRORS,
            "tweaks": TWEAKS_VERSION,
        }
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def dirname(self) -> str:
        return f"rootfs-{self.suite}-{self.digest}"


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The controller's Debian codename, so hosts run the same Python as the controller."""
    with contextlib.suppress(OSError):
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME" and value.strip('"'):
                return value.strip('"')
    return "bookworm"


def resolve_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """The explicit dir, else `$OPSFIX_CACHE_DIR`, else /var/cache/opsfix."""
    chosen = cache_dir if cache_dir is not None else os.environ.get("OPSFIX_CACHE_DIR")
    return Path(chosen or DEFAULT_CACHE_DIR).absolute()


def ensure_rootfs(cache_dir: Path | str | None = None, spec: RootfsSpec | None = None) -> Path:
    """The cached tree for `spec`, built first if missing (one builder at a time)."""
    spec = spec or RootfsSpec(host_suite())
    cache = resolve_cache_dir(cache_dir)
    tree = cache / spec.dirname
    if (tree / "etc/os-release").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "rootfs.lock"):
        if not (tree / "etc/os-release").exists():
            _build(spec, tree)
            _remove_unused(cache, keep=tree)
    return tree


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build(spec: RootfsSpec, tree: Path) -> None:
    """mmdebstrap into a staging folder, tweak it, then rename it into place."""
    if not shutil.which("mmdebstrap", path=system.HOST_ENV["PATH"]):
        raise LabError("systemd lab hosts need mmdebstrap (apt install mmdebstrap)")
    staging = tree.with_name(f".{tree.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    mirrors = [m.format(suite=spec.suite) for m in MIRRORS]
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root"]
    argv += [f"--include={','.join(spec.packages)}", spec.suite, str(staging), *mirrors]
    try:
        system.run(argv, timeout=BUILD_TIMEOUT)
        _tweak(staging)
        staging.rename(tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tweak(root: Path) -> None:
    """Make the tree a template: no identity, keys or hostname of its own."""
    (root / "etc/machine-id").write_text("")
    for leftover in ("etc/hostname", "var/lib/dbus/machine-id", *_host_keys(root)):
        (root / leftover).unlink(missing_ok=True)
    (root / "etc/ssh/sshd_config.d/lab.conf").write_text(SSHD_LAB_CONF)


def _host_keys(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in (root / "etc/ssh").glob("ssh_host_*")]


def _remove_unused(cache: Path, keep: Path, mounts: str | None = None) -> None:
    """Older trees go, unless a running host still has one as its lower layer."""
    mounts = Path("/proc/self/mounts").read_text() if mounts is None else mounts
    for old in cache.glob("rootfs-*"):
        if old != keep and f"lowerdir={old}" not in mounts:
            shutil.rmtree(old, ignore_errors=True)
