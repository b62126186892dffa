"""systemd lab hosts: the cached Debian tree booted by systemd-nspawn, systemd as PID 1.

Each host gets an overlay on the shared tree (its writes land in its own folder), its
own SSH host key and the lab's client key written into that overlay, a 16 MiB tmpfs as
/var/log filled from the tree's, and the lab's /etc/nginx and web root bound in from its
folder, as namespace hosts have them, so `reset` restores both the same way. The network
namespace is the lab's, made before the boot; the container only joins it.

nspawn runs without machined here (PID 1 of the machine is not always systemd), hence
`--register=no --keep-unit`; it is started inside a cgroup of its own, or it would put its
payload at the top of the hierarchy, shared by every container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from opsfix.errors import LabError
from opsfix.lab import files, system
from opsfix.lab.plan import WEB_ROOT, HostPlan, LabPlan
from opsfix.lab.state import LabPaths

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_HIERARCHIES = ("systemd", "unified")  # hybrid: name=systemd v1, and cgroup2
LOG_SIZE = "16m"
REQUIRED_COMMANDS = ("ip", "nsenter", "mount", "umount", "systemd-nspawn")


def cgroup_dirs(plan: LabPlan, host: HostPlan) -> list[Path]:
    """The host's own cgroup in each hierarchy that exists here."""
    hierarchies = [CGROUP_ROOT / h for h in CGROUP_HIERARCHIES if (CGROUP_ROOT / h).is_dir()]
    tops = hierarchies or [CGROUP_ROOT]  # a pure cgroup2 machine mounts it at the root
    return [top / f"opsfix-lab-{plan.name}" / host.name for top in tops]


def address_commands(plan: LabPlan, host: HostPlan) -> list[str]:
    """`ip -n NETNS -batch` lines that give the host its address before it boots."""
    return [
        "link set lo up",
        f"addr add {host.address}/{plan.subnet.prefixlen} dev eth0",
        "link set eth0 up",
    ]


def prepare(paths: LabPaths, host: HostPlan, rootfs: Path, client_key: str) -> str:
    """Mount the host's overlay and /var/log, write its identity; return its host key line."""
    root = paths.host(host.name)
    for name in ("upper", "work", "merged", "log", "sshd"):
        (root / name).mkdir(parents=True, mode=0o755, exist_ok=True)
    files.restore_tree(paths.pristine / "nginx", root / "nginx")
    files.restore_tree(paths.pristine / "www", root / "www")
    lower, upper, work = rootfs, root / "upper", root / "work"
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    system.run(["mount", "-t", "overlay", "lab-root", "-o", options, str(root / "merged")])
    log_options = f"size={LOG_SIZE},mode=0755"
    system.run(["mount", "-t", "tmpfs", "-o", log_options, "lab-log", str(root / "log")])
    system.run(["cp", "-a", f"{rootfs}/var/log/.", str(root / "log")])
    key_line = files.generate_keypair(root / "sshd/ssh_host_ed25519_key", f"root@{host.name}")
    _write_identity(root / "merged", host, client_key, root / "sshd")
    return key_line


def _write_identity(merged: Path, host: HostPlan, client_key: str, keys: Path) -> None:
    ssh = merged / "etc/ssh"
    for name, mode in (("ssh_host_ed25519_key", 0o600), ("ssh_host_ed25519_key.pub", 0o644)):
        shutil.copyfile(keys / name, ssh / name)
        (ssh / name).chmod(mode)
    dot_ssh = merged / "root/.ssh"
    dot_ssh.mkdir(mode=0o700, exist_ok=True)
    files.write_private(dot_ssh / "authorized_keys", f"{client_key}\n".encode())
    hosts = f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}\n"
    (merged / "etc/hosts").write_text(hosts)
    (merged / "etc/hostname").write_text(f"{host.name}\n")


def boot(
    plan: LabPlan, host: HostPlan, paths: LabPaths, binds: Sequence[Path] = ()
) -> subprocess.Popen[bytes]:
    """Start nspawn in the host's own cgroup; it outlives this process. `binds` appear
    read-only at the same path inside."""
    root = paths.host(host.name)
    argv = [
        "systemd-nspawn", "--boot", "--quiet", "--console=read-only",
        f"--directory={root / 'merged'}", f"--machine={host.name}",
        "--register=no", "--keep-unit",
        f"--network-namespace-path={system.NETNS_DIR / host.netns}",
        f"--bind={root / 'nginx'}:/etc/nginx", f"--bind={root / 'www'}:{WEB_ROOT}",
        f"--bind={root / 'log'}:/var/log",
        *(f"--bind-ro={folder}" for folder in binds),
    ]  # fmt: skip
    cgroups = cgroup_dirs(plan, host)
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    with open(root / "boot.log", "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=dict(system.HOST_ENV),
            start_new_session=True,
            preexec_fn=lambda: _join(cgroups),
        )


def _join(cgroups: list[Path]) -> None:
    """In the child, before exec: move into the host's cgroups."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")


def find_init(host: HostPlan) -> int | None:
    """The container's systemd (its PID 1), as a PID here; None until it runs."""
    for pid in system.netns_members([host.netns]).get(host.netns, []):
        if system.is_namespace_init(pid) and system.command_name(pid) == "systemd":
            return pid
    return None


def release(plan: LabPlan, paths: LabPaths) -> None:
    """After the hosts are stopped: unmount their trees, remove their cgroups."""
    for host in plan.hosts:
        root = paths.host(host.name)
        for mount in (root / "log", root / "merged"):
            if os.path.ismount(mount):
                system.run(["umount", str(mount)])
        for cgroup in cgroup_dirs(plan, host):
            _remove_cgroup(cgroup)
    for top in {c.parent for h in plan.hosts for c in cgroup_dirs(plan, h)}:
        if top.is_dir() and not any(p.is_dir() for p in top.iterdir()):
            top.rmdir()


def _remove_cgroup(cgroup: Path) -> None:
    """Depth first, once its processes are gone (nspawn itself exits after its container;
    one that lingers is killed)."""
    if not cgroup.is_dir():
        return
    if not system.wait_until(lambda: not _procs(cgroup), 5):
        system.kill(_procs(cgroup))
        system.wait_until(lambda: not _procs(cgroup), 5)
    for child in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir():
            _rmdir(child)
    _rmdir(cgroup)


def _procs(cgroup: Path) -> list[int]:
    return [int(pid) for f in cgroup.rglob("cgroup.procs") for pid in f.read_text().split()]


def _rmdir(cgroup: Path) -> None:
    try:
        cgroup.rmdir()
    except OSError as exc:
        raise LabError(f"down: cannot remove cgroup {cgroup}: {exc.strerror}") from None
