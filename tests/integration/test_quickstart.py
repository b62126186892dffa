"""The quick start's story (scripts/quickstart.sh) on the test lab, with the same commands:
a first `apply` of the generic playbook records every host's known-good config, web2 is
broken as the quick start breaks it, and the next `apply` repairs and verifies it with the
lab inventory's own variables (the practice app's release, page text and deep link)."""

from __future__ import annotations

import pytest

from opsfix.lab import Lab

from .helpers import EXPECTED, GENERIC, http_body, reset_hosts, run_playbook

pytestmark = pytest.mark.integration

QUICKSTART_BREAK = (  # scripts/quickstart.sh, as it breaks web2
    'nginx -s stop; echo "server { listen 80" > /etc/nginx/conf.d/oops.conf; '
    ": > /var/www/html/index.html"
)


def test_the_quick_start_repairs_web2_with_the_generic_playbook(lab: Lab) -> None:
    hosts = list(lab.hosts)
    reset_hosts(lab, hosts)
    try:
        first = run_playbook(lab, "apply", hosts, playbook=GENERIC)
        assert first.returncode == 0, str(first)
        assert {h["status"] for h in first.report["hosts"]} == {"healthy"}
        lab.exec("web2", QUICKSTART_BREAK)
        check = run_playbook(lab, "check", hosts, playbook=GENERIC)
        assert check.returncode == 2, str(check)
        run = run_playbook(lab, "apply", hosts, playbook=GENERIC)
        assert run.returncode == 0, str(run)
        report = run.host("web2")
        assert report["status"] == "repaired", report
        applied = {
            r["remediation"]: r["reason"]
            for s in report["steps"]
            for r in s["remediations"]
            if r["status"] == "applied"
        }
        assert set(applied) == {"nginx_restore_config", "service_start", "restore_content"}
        assert "from the known-good snapshot" in applied["nginx_restore_config"]
        assert {v["outcome"] for v in report["verify"]} == {"passed"}, report["verify"]
        for path in ("/", "/app/settings"):
            assert EXPECTED in http_body(lab, "web2", path)
    finally:
        reset_hosts(lab, hosts)
