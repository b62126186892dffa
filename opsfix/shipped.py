"""The sample playbooks, verify suites and schema opsfix ships, wherever it is installed.

A checkout keeps them at the top of the repository (`playbooks/`, `tests/host/`,
`templates/`, `docs/schema/`); a wheel keeps the same tree inside the package
(`opsfix/playbooks/`, `opsfix/tests/host/`, `opsfix/templates/`, `opsfix/schema/`), so a
playbook's relative paths (`../templates/webapp`, `../tests/host/test_nginx.py`) hold in
both.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent  # the repository, when opsfix runs from one


def root() -> Path:
    """The folder that holds `playbooks/`: the checkout, else the installed package."""
    if (CHECKOUT / "playbooks").is_dir() and (CHECKOUT / "pyproject.toml").is_file():
        return CHECKOUT
    return PACKAGE


def playbook(relative: str) -> Path:
    """A shipped playbook named as in the repository (`playbooks/nginx_recovery.yml`):
    as given when it exists from here, else the shipped copy."""
    here = Path(relative)
    return here if here.is_file() else root() / relative


def playbooks() -> list[Path]:
    """Every shipped playbook."""
    return sorted((root() / "playbooks").rglob("*.yml"))


def schema(name: str = "run.schema.json") -> Path:
    base = root()
    return base / ("docs/schema" if base == CHECKOUT else "schema") / name
