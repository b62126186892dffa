"""Lab fixtures: one practice lab per test session, reset to pristine before each test.

The lab has its own name and subnet, so it runs beside a user's `opsfix lab up` lab
without clashing. Its state dir sits in pytest's per-user temp folder under a fixed name,
so a lab left behind by a crashed session is taken down at the start of the next one.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from opsfix.lab import Lab, down, up

# One lab per test session. Two sessions at once (say, two developers' terminals) need
# different names and subnets: set OPSFIX_TEST_LAB=name:subnet, e.g. oft2:10.236.0.0/24.
LAB_NAME, _, LAB_SUBNET = os.environ.get("OPSFIX_TEST_LAB", "oft:10.232.0.0/24").partition(":")
LAB_SIZE = 4


def side_lab(suffix: str, offset: int) -> tuple[str, str]:
    """Name and subnet for a test's own extra lab: `offset` subnets past this session's."""
    net = ipaddress.ip_network(LAB_SUBNET)
    first = int(net.network_address) + offset * net.num_addresses
    return LAB_NAME + suffix, str(ipaddress.ip_network((first, net.prefixlen)))


def lab_unavailable() -> str | None:
    """Why lab hosts cannot be built here, or None if they can."""
    if os.geteuid() != 0:
        return "lab tests need root (they build network namespaces and mounts)"
    needs = {"/usr/sbin/sshd": "openssh-server", "/usr/sbin/nginx": "nginx"}
    missing = [package for path, package in needs.items() if not os.access(path, os.X_OK)]
    if missing:
        return f"lab tests need {' and '.join(missing)} (apt install {' '.join(missing)})"
    tools = [t for t in ("ip", "nsenter", "unshare", "findmnt") if not shutil.which(t)]
    return f"lab tests need {', '.join(tools)} (iproute2, util-linux)" if tools else None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of 4 hosts (web1..web4) for the whole session; always taken down."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    state_dir = tmp_path_factory.getbasetemp().parent / f"opsfix-lab-{LAB_NAME}"
    down(state_dir)  # a lab left behind by a crashed session
    built = up(LAB_SIZE, state_dir=state_dir, name=LAB_NAME, subnet=LAB_SUBNET)
    try:
        yield built
    finally:
        down(state_dir)


@pytest.fixture
def clean_lab(lab: Lab) -> Lab:
    """The session lab with every host reset to pristine (files, logs, nginx)."""
    with ThreadPoolExecutor(max_workers=len(lab.hosts)) as pool:
        list(pool.map(lab.reset, lab.hosts))
    return lab
