"""Healthy when name resolution is set up and works without leaving the machine: every name
in `names` (and the host's own name) resolves from /etc/hosts, /etc/resolv.conf names a
nameserver, and the `hosts:` line of /etc/nsswitch.conf asks DNS (`dns` or `resolve`).

Names are looked up with `getent -s files`, so only /etc/hosts is read and no query ever
leaves the host; the nameservers are named as evidence, never asked. A host that must not
use DNS at all sets `nameserver_required: false`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_OWN_NAME = 'n=$(hostname) && echo "$n" && getent -s files hosts -- "$n"'
_DNS_SOURCES = {"dns", "resolve"}
_NSSWITCH_DEFAULT = ["dns", "files"]  # glibc's hosts: line when nsswitch.conf is missing


class DnsResolvesParams(Params):
    names: list[str] = Field(["localhost"], description="names that must resolve from /etc/hosts")
    own_name: bool = Field(True, description="the host's own name (hostname) must resolve too")
    nameserver_required: bool = Field(True, description="resolv.conf must name a nameserver")


class DnsResolves(Check[DnsResolvesParams]):
    def commands(self) -> list[str]:
        lookups = [cmd("getent", "-s", "files", "hosts", "--", name) for name in self.params.names]
        files = [cmd("cat", "/etc/resolv.conf"), cmd("cat", "/etc/nsswitch.conf")]
        return [*files, _OWN_NAME if self.params.own_name else "true", *lookups]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        resolv, nsswitch, own, *lookups = results
        if any(r.exit_status == 127 for r in results):
            return CheckResult.error("a tool is missing", stderr=_stderr(results))
        sources = _sources(nsswitch)
        if sources is None or not (resolv.ok or "No such file" in resolv.stderr):
            return CheckResult.error("cannot read the resolver's files", stderr=_stderr(results))
        nameservers = _words(resolv.stdout, "nameserver") if resolv.ok else []
        pairs = list(zip(self.params.names, lookups, strict=True))
        if self.params.own_name:
            pairs.append((own.stdout.partition("\n")[0], own))
        resolved = {name: _address(r) for name, r in pairs if r.ok and _address(r)}
        if len(resolved) < len(pairs) and any(r.exit_status not in (0, 2) for _, r in pairs):
            return CheckResult.error("getent failed", stderr=_stderr(results))
        facts = {"resolved": resolved, "nameservers": nameservers[:10], "hosts_sources": sources}
        problems = [f"{name} is not in /etc/hosts" for name, _ in pairs if name not in resolved]
        if self.params.nameserver_required and not nameservers:
            problems.append("/etc/resolv.conf names no nameserver")
        if self.params.nameserver_required and not _DNS_SOURCES & set(sources):
            problems.append(f"nsswitch.conf's hosts line ({' '.join(sources)}) asks no DNS")
        if problems:
            return CheckResult.failed("; ".join(problems), **facts)
        names, servers = ", ".join(resolved) or "no name", ", ".join(nameservers) or "none"
        return CheckResult.passed(f"{names} resolve; nameservers: {servers}", **facts)


def _address(lookup: CommandResult) -> str:
    """The first address getent printed (the own-name probe prints the name first)."""
    lines = [line.split() for line in lookup.stdout.splitlines() if len(line.split()) > 1]
    return lines[0][0] if lines else ""


def _sources(nsswitch: CommandResult) -> list[str] | None:
    """The hosts: line's sources, without [ACTION] items; None if the file is unreadable."""
    if not nsswitch.ok:
        return _NSSWITCH_DEFAULT if "No such file" in nsswitch.stderr else None
    line = next(iter(_words(nsswitch.stdout, "hosts:", whole_line=True)), "")
    return [w for w in line.split() if not w.startswith("[")] or _NSSWITCH_DEFAULT


def _words(text: str, key: str, *, whole_line: bool = False) -> list[str]:
    """The value after `key` on each line that starts with it (comments skipped)."""
    found = [line.split(None, 1) for line in text.splitlines() if line.split()[:1] == [key]]
    return [
        f[1].split("#")[0].strip() if whole_line else f[1].split()[0] for f in found if len(f) > 1
    ]


def _stderr(results: Sequence[CommandResult]) -> str:
    return " ".join(r.stderr.strip() for r in results if r.stderr.strip())[-300:]
