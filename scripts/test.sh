#!/usr/bin/env bash
# The whole test suite: lint, unit tests, and integration tests against real lab hosts
# (real sshd and nginx in network namespaces; needs root and scripts/setup.sh done).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
