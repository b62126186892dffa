"""The practice lab: nginx hosts made of Linux namespaces, reachable over real SSH.

Each host is a network namespace on a bridge, with its own pid, mount and uts
namespaces inside; `boot.sh` builds its private filesystem and ends as its sshd. A
systemd host joins the same network namespace, but is a container nspawn boots (`nspawn`).
`up` builds every host at once, `down` undoes everything (also a partial `up`), and a
`Lab` lets tests run commands inside a host and reset it without going through opsfix.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from opsfix.errors import LabError
from opsfix.lab import files, nspawn, rootfs, system
from opsfix.lab.plan import (
    HostPlan,
    LabPlan,
    inventory_text,
    known_hosts_text,
    neighbour_limits,
    network_down_commands,
    network_up_commands,
    plan_lab,
)
from opsfix.lab.state import LabPaths, LabRecord, resolve_state_dir

SCRIPTS = Path(str(importlib.resources.files("opsfix.lab")))
REQUIRED_COMMANDS = ("ip", "nsenter", "unshare", "mount", "findmnt", "nginx", "/usr/sbin/sshd")
KINDS = ("namespace", "systemd")
PROBE_TIMEOUT = 0.5
_children: dict[str, subprocess.Popen[bytes]] = {}  # netns -> boot process started here


@dataclass(frozen=True)
class HostStatus:
    """One host as seen from the root namespace: does it answer on 22 and 80?"""

    name: str
    address: str
    sshd_answering: bool
    nginx_answering: bool

    @property
    def is_healthy(self) -> bool:
        return self.sshd_answering and self.nginx_answering


@dataclass
class Lab:
    """A running lab: its files, its hosts (name -> address) and a way into each host."""

    state_dir: Path
    inventory_path: Path
    hosts: dict[str, str]
    _record: LabRecord = field(repr=False)

    @classmethod
    def load(cls, state_dir: Path | str | None = None) -> Lab:
        """Reopen the lab whose record is in `state_dir` (default: see `resolve_state_dir`)."""
        paths = LabPaths(resolve_state_dir(state_dir))
        record = LabRecord.load(paths)
        hosts = {h.name: h.address for h in record.plan.hosts}
        return cls(paths.root, paths.inventory, hosts, record)

    @property
    def kind(self) -> str:
        """`namespace` (sshd as PID 1, no systemd) or `systemd` (nspawn, systemd as PID 1)."""
        return self._record.kind

    @property
    def private_key_path(self) -> Path:
        return LabPaths(self.state_dir).private_key

    @property
    def known_hosts_path(self) -> Path:
        return LabPaths(self.state_dir).known_hosts

    def exec(
        self,
        host: str,
        command: str,
        check: bool = True,
        *,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside `host`'s namespaces, bypassing SSH and opsfix.

        With `check`, a non-zero exit raises LabError quoting the command and its stderr.
        """
        argv = [*system.nsenter_argv(self._init_pid(host)), "/bin/sh", "-c", command]
        try:
            done = subprocess.run(
                argv,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd="/",
                env=dict(system.HOST_ENV),
            )
        except subprocess.TimeoutExpired:
            raise LabError(f"{host}: {command!r}: no answer after {timeout:g}s") from None
        if check and done.returncode != 0:
            raise LabError(
                f"{host}: {command!r}: exit {done.returncode}: {system.tail(done.stderr)}"
            )
        return done

    def reset(self, host: str) -> None:
        """Put `host` back as `up` made it: /etc/nginx, web root, empty /var/log, nginx up.

        Files are restored from the controller side (the bind-mount sources), then nginx
        is reloaded, or started if it was down. Other changes to /etc, /var or /tmp stay.
        """
        paths = LabPaths(self.state_dir)
        self._init_pid(host)  # fails early, before touching files, if the host is gone
        for tree in ("nginx", "www"):
            files.restore_tree(paths.pristine / tree, paths.host(host) / tree)
        self.exec(host, "/bin/sh -s", input=(SCRIPTS / "reset.sh").read_text(), timeout=30)
        # seconds on a loaded machine; the wait ends as soon as nginx answers
        if not system.wait_until(lambda: system.tcp_answers(self.hosts[host], 80), 30):
            raise LabError(f"{host}: nginx restarted but nothing answers on port 80 after 30 s")

    def status(self) -> list[HostStatus]:
        return _probe(self._record.plan)

    def down(self) -> None:
        down(self.state_dir)

    def _init_pid(self, host: str) -> int:
        """The host's namespace PID 1, checked to still be that process."""
        if host not in self.hosts:
            known = ", ".join(self.hosts)
            raise LabError(f"unknown lab host {host!r} (this lab has {known})")
        pid = self._record.pids.get(host)
        netns = next(h.netns for h in self._record.plan.hosts if h.name == host)
        if pid is None or not system.in_netns(pid, netns):
            raise LabError(f"{host}: not running (its PID 1 is gone); run down, then up")
        return pid


def up(
    count: int,
    *,
    state_dir: Path | str | None = None,
    name: str = "opsfix",
    subnet: str = "10.231.0.0/24",
    kind: str = "namespace",
    cache_dir: Path | str | None = None,
    binds: Sequence[Path] = (),
) -> Lab:
    """Build `count` hosts web1..webN in parallel and wait until each answers SSH and HTTP.

    `kind` is `namespace` (the fast default) or `systemd`: nspawn containers booting a
    Debian tree that is built once with mmdebstrap and cached in `cache_dir`. `binds` are
    folders of this machine that systemd hosts see read-only at the same path (say, a
    checkout and virtualenv of opsfix, to make a host a controller); namespace hosts
    already see every folder.

    Refuses if `state_dir` already holds a lab, or if the name or subnet is in use: run
    `down` first (a lab is not extended in place). On failure, everything made is removed
    and the error quotes the failing host's boot log.
    """
    plan = plan_lab(count, name, subnet)
    paths = LabPaths(resolve_state_dir(state_dir))
    _preflight(plan, paths, kind)
    if binds and kind != "systemd":
        raise LabError("binds are for systemd hosts: namespace hosts see every folder already")
    tree = rootfs.ensure_rootfs(cache_dir) if kind == "systemd" else None
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = LabRecord(name=name, subnet=subnet, count=count, kind=kind)
    record.save(paths)  # first, so that `down` can undo whatever follows
    try:
        system.raise_sysctls(neighbour_limits(count))
        system.ip_batch(network_up_commands(plan))
        _write_files(plan, paths, tree)
        started = {h.name: _boot(h, plan, paths, kind, binds) for h in plan.hosts}
        deadline = time.monotonic() + (60 + 2 * count if tree else 20 + 0.3 * count)
        record.pids = _find_inits(plan, started, paths, deadline, kind)
        record.save(paths)
        _wait_ready(plan, started, record.pids, paths, deadline)
    except BaseException as exc:
        try:
            down(paths.root)
        except LabError as cleanup:
            exc.add_note(f"removing the partial lab also failed: {cleanup}")
        raise
    return Lab.load(paths.root)


def down(state_dir: Path | str | None = None) -> None:
    """Remove the lab in `state_dir`: processes, namespaces, cables, bridge, files.

    Safe to repeat and after a partial `up`: whatever is already gone is skipped.
    """
    paths = LabPaths(resolve_state_dir(state_dir))
    if not paths.record.exists():
        if paths.root.is_dir() and not any(paths.root.iterdir()):
            paths.root.rmdir()
        return
    record = LabRecord.load(paths)
    plan = record.plan
    _stop_hosts(plan)
    if record.kind == "systemd":
        nspawn.release(plan, paths)
    system.ip_batch(network_down_commands(plan), force=True)
    left = [h.netns for h in plan.hosts if h.netns in system.netns_names()]
    left += [n for n in (plan.bridge, *(h.veth for h in plan.hosts)) if system.interface_exists(n)]
    if left:
        raise LabError(f"down: could not remove {', '.join(left)}; see `ip netns` and `ip link`")
    shutil.rmtree(paths.root)


def status(state_dir: Path | str | None = None) -> list[HostStatus]:
    """Probe every host of the lab in `state_dir` over TCP from the root namespace.

    No lab is an answer, not an error: the list is empty.
    """
    paths = LabPaths(resolve_state_dir(state_dir))
    return Lab.load(paths.root).status() if paths.record.exists() else []


def _preflight(plan: LabPlan, paths: LabPaths, kind: str) -> None:
    """Refuse early, before anything is made, with a message that says what to do."""
    if kind not in KINDS:
        raise LabError(f"lab kind {kind!r}: expected one of {', '.join(KINDS)}")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, mounts, network interfaces)")
    needed: tuple[str, ...] = REQUIRED_COMMANDS
    packages = "openssh-server, nginx"
    if kind == "systemd":
        needed, packages = nspawn.REQUIRED_COMMANDS, "systemd-container, mmdebstrap"
    missing = [c for c in needed if not shutil.which(c, path=system.HOST_ENV["PATH"])]
    if missing:
        raise LabError(f"missing commands: {', '.join(missing)} (install {packages})")
    if paths.record.exists():
        raise LabError(f"{paths.root}: a lab already exists here; run `opsfix lab down` first")
    if paths.root.is_dir() and any(paths.root.iterdir()):
        raise LabError(f"{paths.root}: folder is not empty and holds no lab; choose another")
    _check_state_dir_path(paths.root)
    _check_names_free(plan)


def _check_state_dir_path(root: Path) -> None:
    if root.is_relative_to("/etc"):
        raise LabError(f"{root}: the state dir cannot be under /etc (hosts overlay /etc)")
    bad = [c for c in ",:\\" if c in str(root)]
    if bad:
        raise LabError(f"{root}: the state dir path cannot contain {' '.join(bad)} (overlayfs)")


def _check_names_free(plan: LabPlan) -> None:
    taken = [h.netns for h in plan.hosts if h.netns in system.netns_names()]
    taken += [n for n in (plan.bridge, *(h.veth for h in plan.hosts)) if system.interface_exists(n)]
    if taken:
        raise LabError(
            f"lab name {plan.name!r} is in use ({', '.join(taken[:3])}...): take down that "
            "lab with `opsfix lab down` and its state dir, or pass another name"
        )
    for interface, network in _addresses():
        if network.overlaps(plan.subnet):
            raise LabError(f"subnet {plan.subnet} overlaps {network} on {interface}")


def _addresses() -> list[tuple[str, ipaddress.IPv4Network]]:
    found = []
    for link in json.loads(system.run(["ip", "-j", "-4", "addr", "show"]) or "[]"):
        for info in link.get("addr_info", []):
            network = ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
            found.append((link["ifname"], network))
    return found


def _write_files(plan: LabPlan, paths: LabPaths, tree: Path | None) -> None:
    """Keys, pristine trees, each host's folders, then the inventory and known_hosts.

    With a `tree` (systemd hosts), each host's overlay on it is mounted and its network
    namespace gets the host's address, as its boot would do on a namespace host.
    """
    client_key = files.generate_keypair(paths.private_key, f"opsfix-lab-{plan.name}")
    ipv6 = Path("/proc/net/if_inet6").exists()
    nginx = tree / "etc/nginx" if tree else None
    files.build_pristine(paths, listen_ipv6=ipv6, nginx_source=nginx)

    def prepare(host: HostPlan) -> str:
        if tree is None:
            return files.prepare_host(paths, host, client_key)
        system.run(["ip", "-n", host.netns, "-batch", "-"], input=_lines(plan, host))
        return nspawn.prepare(paths, host, tree, client_key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        host_keys = dict(
            zip([h.name for h in plan.hosts], pool.map(prepare, plan.hosts), strict=True)
        )
    paths.known_hosts.write_text(known_hosts_text(plan, host_keys))
    release = files.templates_dir() / "webapp"
    paths.inventory.write_text(inventory_text(plan, paths.root, release))


def _lines(plan: LabPlan, host: HostPlan) -> str:
    return "\n".join(nspawn.address_commands(plan, host)) + "\n"


def _boot(
    host: HostPlan, plan: LabPlan, paths: LabPaths, kind: str, binds: Sequence[Path]
) -> subprocess.Popen[bytes]:
    """Start a host's boot script (or nspawn) in new namespaces; it outlives this process."""
    if kind == "systemd":
        process = nspawn.boot(plan, host, paths, binds)
        _children[host.netns] = process
        return process
    argv = [
        "nsenter", f"--net={system.NETNS_DIR / host.netns}", "--",
        "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
        "--propagation", "private", "--",
        "/bin/sh", str(SCRIPTS / "boot.sh"),
        host.name, host.address, str(plan.subnet.prefixlen),
        str(paths.host(host.name)), str(paths.root),
    ]  # fmt: skip
    with open(paths.host(host.name) / "boot.log", "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            env=dict(system.HOST_ENV),
            start_new_session=True,  # a Ctrl-C aimed at the controller spares the hosts
        )
    _children[host.netns] = process
    return process


def _find_inits(
    plan: LabPlan,
    started: dict[str, subprocess.Popen[bytes]],
    paths: LabPaths,
    deadline: float,
    kind: str,
) -> dict[str, int]:
    """Each host's namespace PID 1, as a root-namespace PID: unshare's only child, or
    the systemd that nspawn started in the host's network namespace."""
    systemd = kind == "systemd"
    hosts = {h.name: h for h in plan.hosts}
    inits: dict[str, int] = {}
    while len(inits) < len(started):
        for name, process in started.items():
            if name in inits:
                continue
            if systemd and (pid := nspawn.find_init(hosts[name])):
                inits[name] = pid
            elif not systemd and (children := system.child_pids(process.pid)):
                inits[name] = children[0]
            elif process.poll() is not None:
                raise _boot_failed(name, paths)
        if time.monotonic() > deadline:
            raise LabError(f"hosts did not start in time: {sorted(set(started) - set(inits))}")
        time.sleep(0.01)
    return inits


def _wait_ready(
    plan: LabPlan,
    started: dict[str, subprocess.Popen[bytes]],
    inits: dict[str, int],
    paths: LabPaths,
    deadline: float,
) -> None:
    """Wait until every host answers on 22 and 80; fail fast if one's boot script died.

    A host is probed only once its init has become sshd: a probe sent before the host has
    its address leaves an unanswered ARP entry that the kernel retries only each second.
    """
    pending = list(plan.hosts)
    with ThreadPoolExecutor(max_workers=min(32, len(pending))) as pool:
        while pending:
            for host in pending:
                if started[host.name].poll() is not None:
                    raise _boot_failed(host.name, paths)
            booted = [h for h in pending if system.command_name(inits[h.name]) in _BOOTED]
            answers = dict(
                zip(booted, pool.map(lambda h: _answers(h.address, 1), booted), strict=True)
            )
            pending = [h for h in pending if not answers.get(h)]
            if pending and time.monotonic() > deadline:
                names = ", ".join(h.name for h in pending)
                raise LabError(f"hosts not answering on ports 22 and 80 in time: {names}")
            time.sleep(0.05 if pending else 0)


_BOOTED = ("sshd", "systemd")  # a namespace host's init becomes sshd; nspawn's is systemd


def _answers(address: str, timeout: float) -> bool:
    return system.tcp_answers(address, 22, timeout) and system.tcp_answers(address, 80, timeout)


def _boot_failed(name: str, paths: LabPaths) -> LabError:
    try:
        log = (paths.host(name) / "boot.log").read_text(errors="replace")
    except OSError:
        log = ""
    return LabError(f"{name}: boot failed; its boot log ends:\n{system.tail(log, 12)}")


def _probe(plan: LabPlan) -> list[HostStatus]:
    def one(host: HostPlan) -> HostStatus:
        return HostStatus(
            host.name,
            host.address,
            system.tcp_answers(host.address, 22, PROBE_TIMEOUT),
            system.tcp_answers(host.address, 80, PROBE_TIMEOUT),
        )

    with ThreadPoolExecutor(max_workers=min(32, len(plan.hosts))) as pool:
        return list(pool.map(one, plan.hosts))


def _stop_hosts(plan: LabPlan) -> None:
    """Kill every process in the lab's namespaces, namespace inits first.

    Killing a pid namespace's init kills all of it; its parent (unshare) then reaps it
    and exits. Killing unshare first would orphan the init to PID 1, which some
    sandboxes never reap.
    """
    names = [h.netns for h in plan.hosts]

    def members() -> list[int]:
        return [pid for pids in system.netns_members(names).values() for pid in pids]

    system.kill(pid for pid in members() if system.is_namespace_init(pid))
    if not system.wait_until(lambda: not members(), 5):
        system.kill(members())
        if not system.wait_until(lambda: not members(), 5):
            raise LabError(f"down: processes would not die: {members()}")
    for netns in names:  # reap the boot processes this process started, if any
        if (process := _children.pop(netns, None)) is not None:
            process.wait(timeout=5)
