"""Lab fixtures: one practice lab per test session, reset to pristine before each test.

The lab has its own name and subnet, so it runs beside a user's `opsfix lab up` lab
without clashing. Its state dir sits in pytest's per-user temp folder under a fixed name,
so a lab left behind by a crashed session is taken down at the start of the next one.

The session lab's kind comes from OPSFIX_TEST_LAB_KIND: `namespace` (the default, fast)
or `systemd` (nspawn hosts running systemd as PID 1); scripts/test.sh runs the
integration suite on both. Tests stay kind-agnostic: whatever differs is read from the
host. A test that only makes sense on one kind marks itself with `only_kind(...)`.
`systemd_lab` is a small systemd lab for the tests about systemd itself, in any session.
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
LAB_KIND = os.environ.get("OPSFIX_TEST_LAB_KIND", "namespace")


def side_lab(suffix: str, offset: int) -> tuple[str, str]:
    """Name and subnet for a test's own extra lab: `offset` subnets past this session's."""
    net = ipaddress.ip_network(LAB_SUBNET)
    first = int(net.network_address) + offset * net.num_addresses
    return LAB_NAME + suffix, str(ipaddress.ip_network((first, net.prefixlen)))


def only_kind(kind: str) -> pytest.MarkDecorator:
    """Skip a test in sessions whose lab is of the other kind, saying why."""
    return pytest.mark.skipif(kind != LAB_KIND, reason=f"about {kind} lab hosts only")


def lab_unavailable(kind: str = LAB_KIND) -> str | None:
    """Why lab hosts of `kind` cannot be built here, or None if they can."""
    if os.geteuid() != 0:
        return "lab tests need root (they build network namespaces and mounts)"
    if kind == "systemd":
        tools = [t for t in ("systemd-nspawn", "mmdebstrap", "ip") if not shutil.which(t)]
        return f"systemd lab tests need {', '.join(tools)} (scripts/setup.sh)" if tools else None
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
    built = up(LAB_SIZE, state_dir=state_dir, name=LAB_NAME, subnet=LAB_SUBNET, kind=LAB_KIND)
    try:
        yield built
    finally:
        down(state_dir)


@pytest.fixture(scope="session")
def systemd_lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    """Two systemd hosts (web1, web2) beside the session lab, or the session lab itself
    when it is of the systemd kind."""
    if LAB_KIND == "systemd":
        yield request.getfixturevalue("lab")
        return
    reason = lab_unavailable("systemd")
    if reason:
        pytest.skip(reason)
    name, subnet = side_lab("sd", 3)
    state_dir = tmp_path_factory.getbasetemp().parent / f"opsfix-lab-{name}"
    down(state_dir)
    built = up(2, state_dir=state_dir, name=name, subnet=subnet, kind="systemd")
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


@pytest.fixture
def clean_systemd_lab(systemd_lab: Lab) -> Lab:
    """The systemd lab with every host reset to pristine."""
    with ThreadPoolExecutor(max_workers=len(systemd_lab.hosts)) as pool:
        list(pool.map(systemd_lab.reset, systemd_lab.hosts))
    return systemd_lab
