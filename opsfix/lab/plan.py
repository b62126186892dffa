"""What a lab is made of, computed before anything on the machine changes.

Names, addresses and the text of every generated file are pure functions of the lab's
name, subnet and size, so they are unit-tested without root and reviewed before `up`
touches the network.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from opsfix.errors import LabError

FIRST_HOST_OFFSET = 11  # hosts get .11, .12, ...; .1 is the bridge
IFNAMSIZ = 15  # Linux interface names hold at most 15 characters
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*\Z")
WEB_ROOT = "/var/www/html"
EXPECTED_CONTENT = "opsfix practice app"
DEEP_LINK = "/app/settings"  # any route of the practice app (a single-page app)
GUEST_INTERFACE = "eth0"
BRIDGE_MAX_PORTS = 1024  # the kernel's BR_MAX_PORTS: a lab is one bridge, a port per host
# Every host adds about two entries to the kernel's IPv4 neighbour (ARP) table, which is
# one table for all network namespaces: the root's entry for the host and the host's for
# its gateway. The kernel's default hard limit (gc_thresh3) is 1024 entries, which a lab
# of ~500 hosts overflows ("neighbour: arp_cache: neighbor table overflow!"); hosts then
# answer only after ARP retries, a second each. `up` raises the limits (never lowers them).
NEIGHBOUR_SYSCTL = "/proc/sys/net/ipv4/neigh/default/gc_thresh{}"
NEIGHBOUR_ENTRIES_PER_HOST = 2


@dataclass(frozen=True)
class HostPlan:
    """One lab host: its inventory name, address and the kernel objects named after it."""

    name: str  # web1
    address: str  # 10.231.0.11
    netns: str  # <lab>-web1
    veth: str  # <lab>-v1, the root namespace's end of the host's cable


@dataclass(frozen=True)
class LabPlan:
    """A whole lab: its name, subnet, bridge and hosts."""

    name: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[HostPlan, ...]

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)


def plan_lab(count: int, name: str, subnet: str) -> LabPlan:
    """Check the request and name every host, interface and address it needs."""
    if count < 1:
        raise LabError(f"lab size {count}: expected at least 1 host")
    if not NAME_PATTERN.match(name):
        raise LabError(f"lab name {name!r}: expected lowercase letters and digits, letter first")
    network = _parse_subnet(subnet)
    capacity = network.num_addresses - FIRST_HOST_OFFSET - 1  # keep the broadcast address
    if count > capacity:
        raise LabError(f"subnet {subnet} holds at most {max(capacity, 0)} lab hosts, not {count}")
    if count > BRIDGE_MAX_PORTS:
        raise LabError(
            f"lab size {count}: a lab's hosts share one Linux bridge, which holds at most "
            f"{BRIDGE_MAX_PORTS} ports"
        )
    longest = f"{name}-v{count}"
    if len(longest) > IFNAMSIZ:
        raise LabError(
            f"lab name {name!r} is too long for {count} hosts: interface {longest!r} "
            f"exceeds {IFNAMSIZ} characters"
        )
    hosts = tuple(
        HostPlan(
            name=f"web{i}",
            address=str(network.network_address + FIRST_HOST_OFFSET + i - 1),
            netns=f"{name}-web{i}",
            veth=f"{name}-v{i}",
        )
        for i in range(1, count + 1)
    )
    return LabPlan(name=name, subnet=network, hosts=hosts)


def _parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise LabError(f"subnet {subnet!r}: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise LabError(f"subnet {subnet!r}: expected an IPv4 network such as 10.231.0.0/24")
    return network


def neighbour_limits(count: int) -> dict[str, int]:
    """The neighbour table limits (sysctl path -> value) a lab of `count` hosts wants:
    soft (gc_thresh1, 2) and hard (gc_thresh3) room for its entries four times over, as
    other labs on the machine share the table."""
    entries = NEIGHBOUR_ENTRIES_PER_HOST * count
    return {NEIGHBOUR_SYSCTL.format(i): factor * entries for i, factor in ((1, 1), (2, 2), (3, 4))}


def network_up_commands(plan: LabPlan) -> list[str]:
    """`ip -batch` lines that build the bridge, the namespaces and their cables."""
    lines = [
        f"link add {plan.bridge} type bridge",
        f"addr add {plan.gateway}/{plan.subnet.prefixlen} dev {plan.bridge}",
        f"link set {plan.bridge} up",
    ]
    for host in plan.hosts:
        lines += [
            f"netns add {host.netns}",
            f"link add {host.veth} type veth peer name {GUEST_INTERFACE} netns {host.netns}",
            f"link set {host.veth} master {plan.bridge} up",
        ]
    return lines


def network_down_commands(plan: LabPlan) -> list[str]:
    """`ip -force -batch` lines that remove what `network_up_commands` built.

    The root end of each cable goes first: deleting it removes both ends at once, while
    a namespace's own interfaces vanish only when the kernel gets round to it.
    """
    lines = [f"link del {host.veth}" for host in plan.hosts]
    lines += [f"netns del {host.netns}" for host in plan.hosts]
    return [*lines, f"link del {plan.bridge}"]


def inventory_text(plan: LabPlan, state_dir: Path, release_dir: Path | None = None) -> str:
    """The lab's Ansible-format YAML inventory: group `web`, key auth as root, and the
    practice app's expectations, which the generic nginx_recovery playbook judges only
    where they are set (the app's release folder, its page's text, a deep link)."""
    lines = ["all:", "  children:", "    web:", "      hosts:"]
    lines += [f"        {h.name}: {{ansible_host: {h.address}}}" for h in plan.hosts]
    variables: dict[str, str | int | bool] = {
        "ansible_user": "root",
        "ansible_port": 22,
        "ansible_ssh_private_key_file": str(state_dir / "id_ed25519"),
        "opsfix_known_hosts_file": str(state_dir / "known_hosts"),
        "practice": True,
        "web_root": WEB_ROOT,
        "expected_content": EXPECTED_CONTENT,
        "spa_deep_link": DEEP_LINK,
    }
    if release_dir is not None:
        variables["release_dir"] = str(release_dir)
    lines.append("      vars:")
    lines += [f"        {key}: {_yaml_scalar(value)}" for key, value in variables.items()]
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or re.fullmatch(r"[A-Za-z/][A-Za-z0-9_./ -]*[A-Za-z0-9_/]", value):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def known_hosts_text(plan: LabPlan, host_keys: Mapping[str, str]) -> str:
    """known_hosts lines keyed by address (port 22), from each host's public key line."""
    return "".join(f"{h.address} {_key_fields(host_keys[h.name])}\n" for h in plan.hosts)


def _key_fields(public_key_line: str) -> str:
    kind, blob, *_ = public_key_line.split()
    return f"{kind} {blob}"


def sshd_config_text(host: HostPlan, run_dir: str) -> str:
    """The host's own sshd_config: key-only root login on the host's address.

    Keys and this file are copied into the host's private /run at boot (`run_dir`), so
    they stay readable after the state dir is hidden inside the host.
    """
    return "\n".join(
        [
            f"# opsfix practice lab: sshd of {host.name}",
            f"ListenAddress {host.address}:22",
            f"HostKey {run_dir}/ssh_host_ed25519_key",
            "PidFile /run/sshd.pid",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            f"AuthorizedKeysFile {run_dir}/authorized_keys .ssh/authorized_keys",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AcceptEnv LANG LC_*",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )
