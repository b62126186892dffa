#!/usr/bin/env bash
# The whole test suite: lint, unit tests, and integration tests against real lab hosts
# (real sshd and nginx in network namespaces, then again on systemd hosts; needs root and
# scripts/setup.sh done).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
# The integration suite once more on systemd lab hosts (nspawn, systemd as PID 1): the
# same tests, where nginx is a unit and logs go to journald too. Only for the whole
# suite, and not when OPSFIX_TEST_LAB_KIND already picks one kind. The practice VM test
# (marked vm, no lab) runs once, in the first pass; OPSFIX_SKIP_VM=1 skips it.
if [ $# -eq 0 ] && [ -z "${OPSFIX_TEST_LAB_KIND:-}" ]; then
  OPSFIX_TEST_LAB_KIND=systemd .venv/bin/pytest tests/integration -m "not vm"
fi
