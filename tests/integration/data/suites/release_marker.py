"""A verify suite that expects a release marker no lab host has: verify must fail.

Not named test_*.py, so the project's own pytest run never collects it; opsfix passes it
to pytest explicitly.
"""

from __future__ import annotations

from typing import Any

MARKER = "/var/www/html/RELEASE"


def test_the_release_marker_is_deployed(host: Any) -> None:
    assert host.file(MARKER).exists, f"{MARKER} is missing"


def test_nginx_config_is_valid(host: Any) -> None:
    with host.sudo():
        assert host.run("nginx -t").rc == 0
