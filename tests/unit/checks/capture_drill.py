"""Record the canned outputs of the six-phase drill's checks under data/: each check's real
commands, run by the local dash, most of them inside throwaway network namespaces (their
own interfaces, routes and firewall rules) or mount namespaces (their own resolver files
and unit-file links), so nothing on this machine changes. Needs root, iproute2, nginx.

    cd tests/unit/checks && ../../../.venv/bin/python capture_drill.py [FWTOOLS]

The firewall cases need `nft` and `xtables-*-multi` from Debian's nftables and iptables
packages: installed, or unpacked (`apt-get download nftables libnftables1 libnftnl11
iptables libip6tc2 libnetfilter-conntrack3 libnfnetlink0`, then `dpkg -x` each into
FWTOOLS). Each data/<check>/<case>.json holds the params used and one result per command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from throwaway import running, tools_dir, write_tree

from opsfix.checks import (
    default_route,
    dns_resolves,
    firewall,
    interfaces,
    request_trace,
    service_enabled,
)
from opsfix.plugin import Check
from opsfix.shell import batch, unbatch
from opsfix.transport.base import CommandResult

BASE = Path("/tmp/opsfix-capture-drill")
DATA = Path(__file__).parent / "data"
TOOLS = BASE / "tools"
NS, PEER = "opsfix-cap-net", "opsfix-cap-peer"
FW_TOOLS: dict[str, str] = {}  # env for unpacked nft/iptables
_IP, _UNSHARE, _SETPRIV = (shutil.which(t) or t for t in ("ip", "unshare", "setpriv"))


def save(module: Any, case: str, params: dict[str, Any], *, run: str = "root", **how: Any) -> None:
    check: Check[Any] = _check(module, params)
    results = run_as(check.commands(), **how)
    for index, text in how.get("hand", {}).items():  # outputs this machine cannot produce
        results[index] = CommandResult(results[index].command, 0, text, "")
    where = {k: v for k, v in how.items() if k in ("netns", "setup", "path", "as_user")}
    record = {"params": params, "run": run, "how": where, "results": [r.__dict__ for r in results]}
    path = DATA / check.name / f"{case}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(DATA)}: {check.evaluate(results).summary}")


def run_as(
    commands: list[str],
    *,
    netns: str | None = None,
    setup: str = "",
    path: str | None = None,
    as_user: str | None = None,
    env: dict[str, str] | None = None,
    hand: dict[int, str] | None = None,
) -> list[CommandResult]:
    """The commands batched as the engine batches them, in dash, optionally in a namespace
    (`netns`), after `setup` in a private mount namespace, with another PATH or user."""
    argv = [_IP, "netns", "exec", netns] if netns else []
    argv += [_UNSHARE, "-m", "--propagation", "private"] if setup else []
    argv += [_SETPRIV, f"--reuid={as_user}", "--regid=nogroup", "--clear-groups"] if as_user else []
    script = batch(commands)
    if setup:  # root does the setup, then the batch runs as it would on a host
        argv, script = [*argv, "/bin/sh", "-c", f"{setup}\nexec /bin/sh -c {_q(script)}"], ""
    full_env = {**os.environ, **(env or {}), **({"PATH": path} if path else {})}
    done = subprocess.run(
        argv if not script else [*argv, "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        env=full_env,
    )
    return unbatch(commands, CommandResult("batch", done.returncode, done.stdout, done.stderr))


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _check(module: Any, params: dict[str, Any]) -> Check[Any]:
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Check) and v.__module__ == module.__name__
    )
    return cls(cls.Params.model_validate(params))


def sh(*argv: str, check: bool = True) -> None:
    subprocess.run(argv, check=check, capture_output=True, env={**os.environ, **FW_TOOLS})


@contextmanager
def network() -> Iterator[Callable[..., None]]:
    """A namespace with lo, lan0 (up, 192.0.2.10/24), wan0 (up, its peer down: no carrier),
    eth9 (set down), v6only (an IPv6 address only); the peers live in a second namespace."""
    for ns in (NS, PEER):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)

    def ip(*args: str, ns: str = NS) -> None:
        sh("ip", "-n", ns, *args)

    ip("link", "set", "lo", "up")
    for name, peer_up in (("lan0", True), ("wan0", False), ("eth9", True), ("v6only", True)):
        ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p", "netns", PEER)
        ip("link", "set", f"{name}p", "up" if peer_up else "down", ns=PEER)
    ip("addr", "add", "192.0.2.10/24", "dev", "lan0")
    ip("addr", "add", "198.51.100.5/24", "dev", "wan0")
    ip("addr", "add", "203.0.113.9/24", "dev", "eth9")
    ip("addr", "add", "2001:db8::5/64", "dev", "v6only", "nodad")
    for name in ("lan0", "wan0", "v6only"):
        ip("link", "set", name, "up")
    try:
        yield ip
    finally:
        for ns in (NS, PEER):
            sh("ip", "netns", "del", ns, check=False)


def interfaces_cases() -> None:
    save(interfaces, "this_machine", {}, run="root, on the capture machine itself")
    with network():
        save(interfaces, "lab_like", {"names": ["lo", "lan0"]}, netns=NS)
        save(interfaces, "broken", {}, netns=NS)
        save(interfaces, "named", {"names": ["lan0", "eth1", "eth9"]}, netns=NS)
        save(interfaces, "ipv6", {"names": ["v6only"], "family": "inet6"}, netns=NS)
    save(interfaces, "no_ip", {}, path=tools_dir(TOOLS, ["head"]))


def default_route_cases() -> None:
    with network() as ip:
        save(default_route, "none", {}, netns=NS)
        ip("route", "add", "default", "via", "192.0.2.1", "dev", "lan0")
        ip("-6", "route", "add", "default", "via", "2001:db8::1", "dev", "v6only")
        save(default_route, "via_lan0", {"gateway": "192.0.2.1", "dev": "lan0"}, netns=NS)
        save(default_route, "ipv6", {"family": "inet6"}, netns=NS)
        ip("route", "replace", "default", "via", "198.51.100.1", "dev", "wan0")
        save(default_route, "link_down", {}, netns=NS)
        ip("route", "replace", "unreachable", "default")
        save(default_route, "unreachable", {}, netns=NS)
    save(default_route, "no_ip", {}, path=tools_dir(TOOLS, ["head"]))


def dns_resolves_cases() -> None:
    save(dns_resolves, "this_machine", {"names": ["localhost"]})
    save(dns_resolves, "unknown_name", {"names": ["localhost", "db.internal"]})
    bare = BASE / "resolver"
    bare.mkdir(parents=True, exist_ok=True)
    (bare / "resolv.conf").write_text("# left empty by hand\nsearch example.com\n")
    (bare / "nsswitch.conf").write_text("passwd: files\nhosts:          files myhostname\n")
    binds = "".join(
        f"mount --bind {bare / name} /etc/{name}\n" for name in ("resolv.conf", "nsswitch.conf")
    )
    save(dns_resolves, "no_dns", {"names": ["localhost"]}, setup=binds)
    save(dns_resolves, "no_getent", {}, path=tools_dir(TOOLS, ["head", "cat", "hostname"]))


def service_enabled_cases() -> None:
    save(service_enabled, "no_systemd", {"service": "nginx"})
    hand = {0: "systemd\n"}
    why = "command 0 hand-written (this machine runs no systemd): what the probe prints there"
    for case, unit in (
        ("enabled", "nginx"),
        ("disabled", "rsync"),
        ("static", "systemd-journald"),
        ("not_found", "opsfix-none"),
    ):
        save(service_enabled, case, {"service": unit}, run=why, hand=hand)
    masked = (
        "mount -t tmpfs lab /etc/systemd/system\nln -s /dev/null /etc/systemd/system/nginx.service"
    )
    save(service_enabled, "masked", {"service": "nginx"}, run=why, hand=hand, setup=masked)
    save(service_enabled, "no_systemctl", {"service": "nginx"}, path=tools_dir(TOOLS, ["cat"]))


NFT_RULES = """table inet filter {
\tchain input {
\t\ttype filter hook input priority 0; policy drop;
\t\tct state established,related accept
\t\tiif "lo" accept
\t\ttcp dport 22 accept
\t\ttcp dport { 80, 443 } counter accept
\t\tip saddr 10.0.0.0/8 tcp dport 9100 accept
\t\ttcp dport 8000-8080 drop
\t\tudp dport 53 accept
\t\tjump web
\t}
\tchain web {
\t\ttcp dport 8443 accept
\t\treturn
\t}
\tchain forward { type filter hook forward priority 0; policy drop; }
}
"""


def firewall_cases(fw: Path | None) -> None:
    if fw is None and not shutil.which("nft", path="/usr/sbin:/sbin"):
        print("firewall: skipped (no nft; give FWTOOLS)")
        return
    env, sbin = FW_TOOLS, str(fw / "usr/sbin") if fw else "/usr/sbin"
    bins = TOOLS / "bin-iptables-legacy"  # iptables-save, and no nft
    bins.mkdir()
    (bins / "iptables-save").symlink_to(f"{sbin}/xtables-legacy-multi")
    for tool in ("base64", "tr", "cat", "mktemp", "rm"):
        (bins / tool).symlink_to(str(shutil.which(tool)))
    path = f"{sbin}:{os.environ['PATH']}"
    allow = {"allow": [22, 80, 443, 8443, 9100, 8080, 3306]}
    with network():
        save(firewall, "nft_none", {"allow": [22, 80]}, netns=NS, path=path, env=env)
        rules = BASE / "rules.nft"
        rules.write_text(NFT_RULES)
        sh("ip", "netns", "exec", NS, f"{sbin}/nft", "-f", str(rules))
        save(firewall, "nft_rules", allow, netns=NS, path=path, env=env)
        save(
            firewall,
            "nft_not_root",
            {"allow": [22]},
            netns=NS,
            path=path,
            env=env,
            as_user="nobody",
        )
        sh("ip", "netns", "exec", NS, f"{sbin}/nft", "flush", "ruleset")
        xt = f"{sbin}/xtables-nft-multi"
        for rule in (
            ["-P", "INPUT", "DROP"],
            ["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
            ["-A", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "ACCEPT"],
        ):
            sh("ip", "netns", "exec", NS, xt, "iptables", *rule)
        save(firewall, "nft_iptables_made", {"allow": [22, 80]}, netns=NS, path=path, env=env)
        sh("ip", "netns", "exec", NS, f"{sbin}/nft", "flush", "ruleset")
        legacy = f"{sbin}/xtables-legacy-multi"
        for rule in (
            ["-N", "web-input"],
            ["-P", "INPUT", "DROP"],
            ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
            ["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
            [
                "-A",
                "INPUT",
                "-p",
                "tcp",
                "-m",
                "tcp",
                "--dport",
                "22",
                "-m",
                "comment",
                "--comment",
                "ssh in",
                "-j",
                "ACCEPT",
            ],
            ["-A", "INPUT", "-s", "192.0.2.0/24", "-p", "tcp", "--dport", "3306", "-j", "ACCEPT"],
            ["-A", "INPUT", "-j", "web-input"],
            [
                "-A",
                "web-input",
                "-p",
                "tcp",
                "-m",
                "multiport",
                "--dports",
                "80,443",
                "-j",
                "ACCEPT",
            ],
            [
                "-A",
                "web-input",
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        ):
            sh("ip", "netns", "exec", NS, legacy, "iptables", *rule)
        no_nft = str(bins)
        save(
            firewall,
            "iptables_rules",
            {"allow": [22, 80, 443, 3306, 8080]},
            netns=NS,
            path=no_nft,
            env=env,
        )
    save(firewall, "no_tools", {"allow": [22, 80]}, path=tools_dir(TOOLS, ["head"]))


def request_trace_cases() -> None:
    site = write_tree(BASE / "site", 18090)
    conf = site.base / "nginx/sites-available/default"
    log = site.base / "run/access.log"
    conf.write_text(conf.read_text().replace("\troot ", f"\taccess_log {log};\n\troot ", 1))
    with running(site):
        url = site.url
        save(request_trace, "served", {"url": url, "access_log": str(log)})
        save(
            request_trace,
            "not_found",
            {"url": url, "path": "/assets/nope.js", "access_log": str(log)},
        )
        save(
            request_trace,
            "wget",
            {"url": url, "access_log": str(log)},
            path=tools_dir(TOOLS, [*_TRACE_TOOLS, "wget"]),
        )
        quiet = site.base / "run/other.log"
        quiet.write_text("")
        save(request_trace, "not_logged", {"url": url, "access_log": str(quiet), "wait": 0.5})
        save(
            request_trace,
            "log_missing",
            {"url": url, "access_log": str(site.base / "run/gone.log")},
        )
        save(request_trace, "refused", {"url": "http://127.0.0.1:18099/", "access_log": str(log)})
        save(
            request_trace,
            "no_client",
            {"url": url, "access_log": str(log)},
            path=tools_dir(TOOLS, _TRACE_TOOLS),
        )


_TRACE_TOOLS = ["od", "tr", "wc", "tail", "grep", "sed", "sleep", "head"]


def main() -> None:
    """capture_drill.py [FWTOOLS] [CHECK ...]: every check's cases, or only those named."""
    args = sys.argv[1:]
    fw = Path(args.pop(0)) if args and Path(args[0]).is_dir() else None
    if fw:
        FW_TOOLS.update(
            LD_LIBRARY_PATH=str(fw / "usr/lib/x86_64-linux-gnu"),
            XTABLES_LIBDIR=str(fw / "usr/lib/x86_64-linux-gnu/xtables"),
        )
    cases: dict[str, Callable[[], None]] = {
        "interfaces": interfaces_cases,
        "default_route": default_route_cases,
        "dns_resolves": dns_resolves_cases,
        "service_enabled": service_enabled_cases,
        "firewall": lambda: firewall_cases(fw),
        "request_trace": request_trace_cases,
    }
    shutil.rmtree(BASE, ignore_errors=True)
    TOOLS.mkdir(parents=True)
    try:
        for name in args or cases:
            cases[name]()
    finally:
        shutil.rmtree(BASE, ignore_errors=True)


if __name__ == "__main__":
    main()
