"""Every path of opsfix that calls `systemctl` or `journalctl`, run on real systemd hosts.

The hosts are systemd-nspawn containers with systemd as PID 1 (`systemd_lab`), where
nginx.service and ssh.service are units and journald keeps the journal. Whether systemd
runs is read from each host by the code under test, never from the lab's kind. The paths,
and the test that runs each:

- checks/service_running.py, `systemctl show` (LoadState, ActiveState, MainPID):
  test_service_running_reads_the_unit_not_the_processes
- checks/service_enabled.py, `systemctl is-enabled`:
  test_service_enabled_tells_enabled_disabled_and_masked_units
- remediations/_service.py, `systemctl is-active` and `systemctl show -p LoadState`;
  remediations/service_start.py, `systemctl start` (`stop` on rollback):
  test_a_stopped_unit_is_started_and_a_running_one_reloaded
- remediations/_nginx.py and nginx_reload.py, `systemctl reload` (MainPID unchanged) and
  `systemctl start`: test_a_stopped_unit_is_started_and_a_running_one_reloaded,
  test_nginx_reload_reloads_through_the_unit
- remediations/journal_vacuum.py, `journalctl --disk-usage`, `--rotate`, `--vacuum-size`:
  test_journal_vacuum_shrinks_a_real_journal
- remediations/logrotate.py on a host whose logrotate.timer rotates it:
  test_logrotate_on_a_host_rotated_by_its_timer
- checks/log_errors.py and checks/request_trace.py, `journalctl` where nginx logs to
  syslog (journald): test_log_errors_and_request_trace_read_the_journal_where_nginx_logs
- opsfix/drills/script.py, `systemctl is-active`, `stop`, `start`, `reload`:
  test_drills_break_and_reset_through_the_unit
- opsfix/windows/units.py (`opsfix schedule --install`), `systemctl daemon-reload` and
  `enable --now`: tests/integration/test_schedule_fires.py
- opsfix/lab/reset.sh, `systemctl enable`, `reset-failed`, `reload`, `start` and
  `journalctl --rotate`, `--vacuum-time`: every test here (`clean_systemd_lab`)

The whole integration suite also runs with OPSFIX_TEST_LAB_KIND=systemd (scripts/test.sh),
so nginx recovery, the daily health and disk pressure playbooks and the drills run on
systemd hosts as they do on namespace hosts.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsfix.lab import Lab

from .helpers import REPO, break_host, opsfix_with_state, run_playbook

pytestmark = pytest.mark.integration


def unit(lab: Lab, host: str, *properties: str) -> dict[str, str]:
    """`systemctl show` of nginx.service on the host, as a dict."""
    props = ",".join(properties)
    out = lab.exec(host, f"systemctl show nginx --property={props}").stdout
    return dict(line.partition("=")[::2] for line in out.splitlines())


def journal(lab: Lab, host: str, since: str) -> str:
    """What systemd logged about nginx.service since the cursor `since`."""
    argv = ["journalctl", "-u", "nginx", "--no-pager", "-o", "cat", f"--after-cursor={since}"]
    return lab.exec(host, shlex.join(argv)).stdout


def cursor(lab: Lab, host: str) -> str:
    out = lab.exec(host, "journalctl -n 0 --show-cursor --no-pager").stdout
    return out.strip().rpartition("-- cursor: ")[2]


def playbook(tmp_path: Path, name: str, checks: list[dict[str, object]]) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(json.dumps({"name": name, "hosts": "web", "checks": checks}))
    return path


def steps(run_host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A host's report, step by step: name -> before, remediations, after."""
    return {step["name"]: step for step in run_host["steps"]}


def repaired_by(step: dict[str, Any]) -> str:
    """The commands (shell text) of the remediations that repaired a failing step."""
    if (step["before"]["status"], step["after"]["status"]) != ("failed", "passed"):
        return ""
    applied = [r for r in step["remediations"] if r["status"] == "applied"]
    return "\n".join(command for r in applied for command in r["commands"])


def test_the_hosts_run_systemd_with_nginx_and_ssh_as_units(clean_systemd_lab: Lab) -> None:
    lab = clean_systemd_lab
    for host in lab.hosts:
        assert lab.exec(host, "ps -o comm= -p 1").stdout.strip() == "systemd"
        system = lab.exec(host, "systemctl is-system-running --wait", check=False).stdout.strip()
        failed = lab.exec(host, "systemctl --failed --no-legend --plain", check=False).stdout
        assert system == "running", f"{host}: {system}; failed units: {failed}"
        assert lab.exec(host, "systemctl is-active nginx ssh").stdout.split() == ["active"] * 2
        state = unit(lab, host, "MainPID")
        assert state["MainPID"] == lab.exec(host, "cat /run/nginx.pid").stdout.strip()


def test_a_stopped_unit_is_started_and_a_running_one_reloaded(clean_systemd_lab: Lab) -> None:
    """web1: nginx.service stopped -> `systemctl start`. web2: a bad conf.d file while
    nginx runs -> the config is restored and `systemctl reload`ed: MainPID unchanged."""
    lab = clean_systemd_lab
    lab.exec("web1", "systemctl stop nginx")
    before = unit(lab, "web2", "MainPID")["MainPID"]
    old_workers = lab.exec("web2", f"pgrep -P {before} -x nginx").stdout.split()
    break_host(lab, "web2", ["conf_d_syntax"])
    marks = {h: cursor(lab, h) for h in lab.hosts}

    # a first run records the known-good config of each host; then break and repair
    run = run_playbook(lab, "apply", ["web1", "web2"], inventory=lab.inventory_path)

    assert run.returncode == 0, run
    web1, web2 = steps(run.host("web1")), steps(run.host("web2"))
    assert "systemctl start nginx" in repaired_by(web1["nginx is running"]), run
    assert "Started nginx.service" in journal(lab, "web1", marks["web1"])
    assert unit(lab, "web1", "ActiveState")["ActiveState"] == "active"
    assert "systemctl reload" in repaired_by(web2["nginx config is valid"]), run
    assert "Reloaded nginx.service" in journal(lab, "web2", marks["web2"])
    after = unit(lab, "web2", "MainPID", "ActiveState")
    assert (after["MainPID"], after["ActiveState"]) == (before, "active")
    new_workers = lab.exec("web2", f"pgrep -P {before} -x nginx").stdout.split()
    assert new_workers and not set(new_workers) & set(old_workers)


def test_nginx_reload_reloads_through_the_unit(clean_systemd_lab: Lab, tmp_path: Path) -> None:
    """An answer without the app (a stale config) -> nginx_reload: `systemctl reload`."""
    lab = clean_systemd_lab
    marker = "served after the reload"
    lab.exec("web1", f"echo {shlex.quote(marker)} > /var/www/html/reload.txt")
    lab.exec("web1", "echo 'location = /r { alias /var/www/html/reload.txt; }' > /tmp/r.conf")
    site = "/etc/nginx/sites-available/default"
    lab.exec("web1", f"sed -i '/^\\s*location \\/ {{/e cat /tmp/r.conf' {site}")
    before = unit(lab, "web1", "MainPID")["MainPID"]
    mark = cursor(lab, "web1")
    book = playbook(
        tmp_path,
        "reload",
        [
            {
                "name": "new location served",
                "check": "http",
                "with": {"url": "http://127.0.0.1/r", "contains": marker},
                "remediate": ["nginx_reload"],
            }
        ],
    )
    run = run_playbook(lab, "apply", ["web1"], playbook=book)
    assert run.returncode == 0, run
    assert "systemctl reload" in repaired_by(steps(run.host("web1"))["new location served"])
    assert "Reloaded nginx.service" in journal(lab, "web1", mark)
    assert unit(lab, "web1", "MainPID")["MainPID"] == before


def test_service_running_reads_the_unit_not_the_processes(
    clean_systemd_lab: Lab, tmp_path: Path
) -> None:
    """nginx started by hand beside a stopped unit is not "running": systemd says so."""
    lab = clean_systemd_lab
    lab.exec("web2", "systemctl stop nginx && nginx")
    check = {"name": "nginx", "check": "service_running", "with": {"service": "nginx"}}
    run = run_playbook(lab, "check", ["web1", "web2"], playbook=playbook(tmp_path, "up", [check]))
    assert run.returncode == 2, run
    ok = steps(run.host("web1"))["nginx"]["before"]
    stray = steps(run.host("web2"))["nginx"]["before"]
    assert ok["status"] == "passed" and ok["evidence"]["judged_by"] == "systemd", ok
    assert ok["evidence"]["main_pid"] == int(lab.exec("web1", "cat /run/nginx.pid").stdout)
    assert stray["status"] == "failed" and stray["evidence"]["active"] == "inactive", stray
    assert stray["evidence"]["judged_by"] == "systemd" and stray["evidence"]["pids"], stray


def test_service_enabled_tells_enabled_disabled_and_masked_units(
    clean_systemd_lab: Lab, tmp_path: Path
) -> None:
    lab = clean_systemd_lab
    lab.exec("web2", "systemctl disable --quiet nginx")
    book = playbook(
        tmp_path,
        "enabled",
        [
            {"name": "nginx", "check": "service_enabled", "with": {"service": "nginx"}},
            {"name": "ssh", "check": "service_enabled", "with": {"service": "ssh"}},
        ],
    )
    run = run_playbook(lab, "check", ["web1", "web2"], playbook=book)
    assert run.returncode == 2, run
    web1, web2 = steps(run.host("web1")), steps(run.host("web2"))
    verdicts = {
        h: {n: s[n]["before"]["status"] for n in s} for h, s in (("web1", web1), ("web2", web2))
    }
    assert verdicts == {
        "web1": {"nginx": "passed", "ssh": "passed"},
        "web2": {"nginx": "failed", "ssh": "passed"},
    }, run
    assert "disabled" in web2["nginx"]["before"]["summary"], web2
    lab.exec("web2", "systemctl mask --quiet nginx")
    run = run_playbook(lab, "check", ["web2"], playbook=book)
    assert "masked" in steps(run.host("web2"))["nginx"]["before"]["summary"], run


JOURNALD_ROOMY = "/etc/systemd/journald.conf.d/opsfix-test.conf"


@pytest.fixture
def roomy_journal(clean_systemd_lab: Lab) -> Iterator[Lab]:
    """journald on web1 may fill half of the 16 MiB /var/log (its default is a tenth)."""
    conf = "[Journal]\nSystemMaxUse=8M\nSystemMaxFileSize=1M\nSystemKeepFree=1M\n"
    restart = "systemctl restart systemd-journald"
    clean_systemd_lab.exec("web1", f"mkdir -p {Path(JOURNALD_ROOMY).parent}")
    clean_systemd_lab.exec("web1", f"cat > {JOURNALD_ROOMY} && {restart}", input=conf)
    try:
        yield clean_systemd_lab
    finally:
        clean_systemd_lab.exec("web1", f"rm -f {JOURNALD_ROOMY} && {restart}")


def test_journal_vacuum_shrinks_a_real_journal(roomy_journal: Lab, tmp_path: Path) -> None:
    lab = roomy_journal
    noise = "head -c 1500000 /dev/urandom | base64 -w 200 | systemd-cat -t opsfix-test"
    lab.exec("web1", f"for i in 1 2 3 4; do {noise}; done; journalctl --flush --sync")
    used = lab.exec("web1", "journalctl --disk-usage").stdout
    book = playbook(
        tmp_path,
        "journal",
        [
            {
                "name": "/var/log",
                "check": "disk_usage",
                "with": {"mounts": ["/var/log"], "warn_percent": 20, "critical_percent": 25},
                "remediate": [{"remediation": "journal_vacuum", "with": {"max_size": "1M"}}],
            }
        ],
    )
    run = run_playbook(lab, "apply", ["web1"], playbook=book)
    after = lab.exec("web1", "journalctl --disk-usage").stdout
    commands = [
        c for r in steps(run.host("web1"))["/var/log"]["remediations"] for c in r["commands"]
    ]
    assert any(c.startswith("journalctl --vacuum-size=") for c in commands), run
    assert _bytes(after) < _bytes(used) / 2, (used, after)


def _bytes(disk_usage: str) -> float:
    """`Archived and active journals take up 8.0M in the file system.` -> bytes."""
    size = disk_usage.split("take up ")[1].split()[0]
    factor = {"B": 1, "K": 2**10, "M": 2**20, "G": 2**30}[size[-1]]
    return float(size[:-1]) * factor


def test_logrotate_on_a_host_rotated_by_its_timer(clean_systemd_lab: Lab, tmp_path: Path) -> None:
    """The host's logrotate.timer is what rotates it normally; opsfix's forced rotation
    uses the same config and state, and the timer's service still runs cleanly after."""
    lab = clean_systemd_lab
    timers = lab.exec("web2", "systemctl list-timers logrotate.timer --no-pager").stdout
    assert "logrotate.service" in timers, timers
    lab.exec("web2", "for i in $(seq 200); do curl -s -o /dev/null http://127.0.0.1/; done")
    book = playbook(
        tmp_path,
        "rotate",
        [
            {
                "name": "rotated",
                "check": "file_present",
                "with": {"root": "/var/log/nginx", "files": ["access.log.1"]},
                "remediate": ["logrotate"],
            }
        ],
    )
    run = run_playbook(lab, "apply", ["web2"], playbook=book)
    assert run.returncode == 0, run
    assert "logrotate -f /etc/logrotate.conf" in repaired_by(steps(run.host("web2"))["rotated"])
    assert lab.exec("web2", "test -s /var/log/nginx/access.log.1").returncode == 0
    assert "nginx" in lab.exec("web2", "cat /var/lib/logrotate/status").stdout
    lab.exec("web2", "systemctl start logrotate.service")
    result = unit_result(lab, "web2", "logrotate.service")
    assert result == "success", lab.exec("web2", "journalctl -u logrotate --no-pager").stdout


def unit_result(lab: Lab, host: str, name: str) -> str:
    return lab.exec(host, f"systemctl show {name} --property=Result --value").stdout.strip()


def test_drills_break_and_reset_through_the_unit(clean_systemd_lab: Lab, tmp_path: Path) -> None:
    """The nginx_stopped drill stops the unit (not the processes behind its back), apply
    starts it again with systemctl, and reset leaves the unit as it was."""
    lab = clean_systemd_lab
    state = tmp_path / "state"
    state.mkdir()
    inv = ["-i", str(lab.inventory_path)]
    broke = opsfix_with_state("drill", "break", "nginx_stopped", "-l", "web1", *inv, state=state)
    assert broke.returncode == 0, broke
    assert unit(lab, "web1", "ActiveState")["ActiveState"] in ("inactive", "failed")
    repaired = opsfix_with_state(
        "apply", str(REPO / "playbooks/nginx_recovery.yml"), "--limit", "web1", *inv, state=state
    )
    assert repaired.returncode == 0, repaired
    assert unit(lab, "web1", "ActiveState")["ActiveState"] == "active"
    reset = opsfix_with_state("drill", "reset", "--limit", "web1", *inv, state=state)
    assert reset.returncode == 0, reset
    assert lab.exec("web1", "systemctl is-active nginx").stdout.strip() == "active"


FAILING = (  # /boom answers 503; /gone is a file nginx cannot open (an error-log line)
    "printf 'location = /boom { return 503; }\\nlocation = /gone { alias /nope/gone; }\\n'"
    " > /etc/nginx/snippets/boom.conf"
    " && sed -i 's|^\\(\\s*\\)location / {|\\1include snippets/boom.conf;\\n&|'"
    " /etc/nginx/sites-available/default && nginx -t && systemctl reload nginx"
)
TO_JOURNAL = (
    "sed -i -e 's|^error_log .*|error_log syslog:server=unix:/dev/log;|'"
    " -e 's|^\\(\\s*\\)access_log .*|\\1access_log syslog:server=unix:/dev/log;|'"
    " /etc/nginx/nginx.conf && grep -c syslog: /etc/nginx/nginx.conf"
    " && nginx -t && rm -f /var/log/nginx/*.log"
    # reload, then wait for the old workers (they still write to the files) to leave
    ' && old=$(pgrep -P "$(cat /run/nginx.pid)" -x nginx) && systemctl reload nginx'
    " && for w in $old; do while kill -0 $w 2>/dev/null; do sleep 0.05; done; done"
)


def test_log_errors_and_request_trace_read_the_journal_where_nginx_logs(
    clean_systemd_lab: Lab, tmp_path: Path
) -> None:
    """web1's nginx logs to syslog (journald), its log files gone: 5xx answers, error
    lines and a traced request are found in the journal; web2 still reads its files."""
    lab = clean_systemd_lab
    for host in ("web1", "web2"):
        lab.exec(host, FAILING)
    assert lab.exec("web1", TO_JOURNAL).stdout.split()[0] == "2"
    get = "for i in $(seq {n}); do curl -s -o /dev/null http://127.0.0.1/{path}; done"
    for host in ("web1", "web2"):
        lab.exec(host, get.format(n=20, path="") + "; " + get.format(n=5, path="boom"))
        lab.exec(host, get.format(n=3, path="gone"))
    assert lab.exec("web1", "ls /var/log/nginx").stdout.split() == []
    lab.exec("web1", "journalctl --sync")  # what nginx sent is in the journal's files
    book = playbook(
        tmp_path,
        "logs",
        [
            {"name": "errors", "check": "log_errors", "with": {"max_error_lines": 100}},
            {"name": "trace", "check": "request_trace"},
        ],
    )
    run = run_playbook(lab, "check", ["web1", "web2"], playbook=book)
    assert run.returncode == 2, run
    for host in ("web1", "web2"):
        errors = steps(run.host(host))["errors"]["before"]
        assert errors["status"] == "failed", errors
        assert (errors["evidence"]["requests"], errors["evidence"]["errors_5xx"]) == (28, 5), host
        assert errors["evidence"]["error_lines"] == 3, errors  # open() failed, level error
        trace = steps(run.host(host))["trace"]["before"]
        assert trace["status"] == "passed", trace
    journal = steps(run.host("web1"))
    assert journal["errors"]["before"]["evidence"]["source"] == "journal (nginx)"
    assert journal["trace"]["before"]["summary"] == "request traced in the journal (nginx) (200)"
    assert "source" not in steps(run.host("web2"))["errors"]["before"]["evidence"]
