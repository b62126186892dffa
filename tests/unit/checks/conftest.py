"""A live throwaway nginx on a free loopback port, for the tests that run real commands."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .throwaway import NGINX, Nginx, free_port, running, write_tree


@pytest.fixture(scope="session")
def live_nginx() -> Iterator[Nginx]:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    base = Path(tempfile.mkdtemp(prefix="opsfix-nginx-"))  # not tmp_path: workers must read it
    try:
        with running(write_tree(base, free_port())) as site:
            yield site
    finally:
        shutil.rmtree(base, ignore_errors=True)
