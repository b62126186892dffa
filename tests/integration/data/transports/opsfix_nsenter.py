"""`ansible_connection: nsenter`: reach a host that is a set of Linux namespaces (a lab
host, a container) by entering them, as `docker exec` enters a container; no SSH.

`ansible_host` is the PID of a process inside (its PID 1). Commands start here, under
`nsenter`, in the host's network, mount, uts and pid namespaces; files go through
/proc/PID/root, the host's own view of its filesystem. Everything else (timeouts, output
limits, become, long scripts) is the local transport's. Install it as a package's module
with the entry point `[project.entry-points."opsfix.transports"] nsenter = "opsfix_nsenter"`.
"""

from __future__ import annotations

from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.registry import Transport
from opsfix.transport.spec import ConnectionSpec


class NsenterConnection(LocalConnection):
    def __init__(self, spec: ConnectionSpec) -> None:
        super().__init__(spec)
        self.root = f"/proc/{spec.hostname}/root"

    def argv(self, command: str) -> list[str]:
        enter = ["nsenter", f"--target={self.spec.hostname}", "--net", "--mount", "--uts", "--pid"]
        return [*enter, "--", "/bin/sh", "-c", command]


TRANSPORT = Transport(
    names=("nsenter",),
    about="enter a host's namespaces through one of its processes (ansible_host: its PID)",
    connect=NsenterConnection,
)
