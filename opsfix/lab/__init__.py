"""The practice lab: nginx hosts in Linux namespaces, for learning and testing opsfix.

Two kinds of host: `namespace` (the default; sshd as PID 1, no systemd) and `systemd`
(systemd-nspawn containers booting a cached Debian tree, systemd as PID 1).

    lab = up(3)                   # web1..web3, inventory in lab.inventory_path
    lab.exec("web1", "nginx -t")  # a command inside a host, without SSH
    lab.reset("web1")             # back to pristine
    down()

Needs root, nginx and openssh-server. State lives in `$OPSFIX_LAB_DIR`, else
/var/lib/opsfix-lab, so `down`, `status` and `Lab.load` work from any process.
"""

from opsfix.lab.lab import HostStatus, Lab, down, status, up
from opsfix.lab.state import DEFAULT_STATE_DIR, resolve_state_dir

__all__ = ["DEFAULT_STATE_DIR", "HostStatus", "Lab", "down", "resolve_state_dir", "status", "up"]
