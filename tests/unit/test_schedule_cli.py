"""`opsfix schedule`: prints, or installs under a temporary root, a timer or a cron.d file.

Nothing here writes to the real /etc or runs systemctl: --root points at tmp_path.
"""

import sys
from pathlib import Path

import pytest

from opsfix.cli import main

INVENTORY = """\
web:
  hosts:
    web1:
    web2:
      opsfix_windows:
        - {name: nightly, cron: "30 2 * * *", duration: 1h, timezone: Europe/Berlin}
"""

PLAYBOOK = """\
name: site
hosts: web
windows:
  - {name: monthly, cron: "0 2 * * 2#1", duration: 2h}
checks:
  - check: nginx_config
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def opsfix_argv():
    script = Path(sys.executable).with_name("opsfix")
    return str(script) if script.is_file() else f"{sys.executable} -m opsfix.cli"


def test_prints_a_timer_with_every_window_and_a_locked_oneshot_service(files, capsys):
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "--kind", "systemd",
        "--", "--defer-ok", "-f", "10",
    )  # fmt: skip
    assert code == 0
    assert "# /etc/systemd/system/opsfix-site.service\n" in out
    assert "# /etc/systemd/system/opsfix-site.timer\n" in out
    assert "Type=oneshot\n" in out
    assert (
        f"ExecStart=/usr/bin/flock -n -E 75 /run/lock/opsfix-site.lock {opsfix_argv()} apply "
        f"{files}/site.yml -i {files}/hosts.yml --defer-ok -f 10\n"
    ) in out
    assert f"WorkingDirectory={files}\n" in out
    assert "OnCalendar=Tue *-*-01..07 02:00:00 UTC\n" in out
    assert "OnCalendar=*-*-* 02:30:00 Europe/Berlin\n" in out


def test_limit_narrows_the_windows_and_goes_to_apply(files, capsys):
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "-l", "web1", "--kind", "systemd"
    )
    assert code == 0
    assert "Europe/Berlin" not in out
    assert f"-i {files}/hosts.yml -l web1\n" in out


def test_install_under_a_root_with_systemd(files, capsys):
    root = files / "root"
    (root / "run/systemd/system").mkdir(parents=True)
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "--install", "--root", str(root)
    )
    assert code == 0
    unit_dir = root / "etc/systemd/system"
    assert sorted(p.name for p in unit_dir.iterdir()) == [
        "opsfix-site.service",
        "opsfix-site.timer",
    ]
    assert "OnCalendar=Tue *-*-01..07 02:00:00 UTC" in (unit_dir / "opsfix-site.timer").read_text()
    assert "not enabled (--root was given); to enable: systemctl daemon-reload && " in out
    assert "systemctl enable --now opsfix-site.timer" in out


def test_install_under_a_root_without_systemd_writes_cron_d(files, capsys):
    root = files / "root"
    root.mkdir()
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "-l", "web1", "--name", "monthly fix",
        "--install", "--root", str(root),
    )  # fmt: skip
    assert code == 0
    cron = root / "etc/cron.d/opsfix-monthly-fix"
    line = cron.read_text().splitlines()[-1]
    assert line.startswith('0 2 1-7 * * root [ "$(date +\\%w)" = 2 ] && { mkdir -p ')
    assert "flock -n -E 75 /run/lock/opsfix-monthly-fix.lock " in line
    assert " >>/var/log/opsfix/opsfix-monthly-fix.log 2>&1; " in line
    assert "MAILTO=root\n" in cron.read_text()
    assert "nothing to enable" in out
    assert not Path("/etc/cron.d/opsfix-monthly-fix").exists()


def test_cron_cannot_follow_a_window_in_another_zone(files, capsys):
    root = files / "root"
    root.mkdir()
    code, _, err = run(capsys, "schedule", "site.yml", "-i", "hosts.yml", "--root", str(root))
    assert code == 4
    assert "inventory vars of web2:" in err
    assert "window 'nightly' is in Europe/Berlin, but cron on this machine runs in UTC" in err


def test_nothing_to_schedule_without_windows(files, capsys):
    (files / "site.yml").write_text("hosts: web\nchecks:\n  - check: nginx_config\n")
    code, _, err = run(capsys, "schedule", "site.yml", "-i", "hosts.yml", "-l", "web1")
    assert code == 4 and "no maintenance window is declared for the targeted hosts" in err


def test_unconvertible_window_is_refused_with_its_place(files, capsys):
    (files / "site.yml").write_text(PLAYBOOK.replace("0 2 * * 2#1", "0 2 15W * *"))
    code, _, err = run(capsys, "schedule", "site.yml", "-i", "hosts.yml", "--kind", "systemd")
    assert code == 4
    assert "site.yml:4:5: windows[0]: window 'monthly': '0 2 15W * *': 'W'" in err


def test_a_check_only_run_at_times_of_its_own(files, capsys):
    """The morning health check: no maintenance window needed, `opsfix check` at 08:00."""
    (files / "site.yml").write_text("hosts: web\nchecks:\n  - check: nginx_config\n")
    root = files / "root"
    root.mkdir()
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "--check", "--at", "0 8 * * *",
        "--mailto", "oncall@example.org", "--log", "health.log", "--install", "--root", str(root),
    )  # fmt: skip
    assert code == 0, out
    text = (root / "etc/cron.d/opsfix-site").read_text()
    [line] = [ln for ln in text.splitlines() if ln.startswith("0 8 * * * root ")]
    assert f" {opsfix_argv()} check {files}/site.yml -i {files}/hosts.yml >>" in line
    assert f">>{files}/health.log 2>&1;" in line and "opsfix check site: exit $rc" in line
    assert "MAILTO=oncall@example.org\n" in text
    code, out, _ = run(
        capsys, "schedule", "site.yml", "-i", "hosts.yml", "--check", "--at", "0 8 * * *",
        "--kind", "systemd",
    )  # fmt: skip
    assert code == 0 and "OnCalendar=*-*-* 08:00:00 UTC\n" in out
    assert "Description=opsfix: check site on schedule\n" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "61 8 * * *"], "--at '61 8 * * *'"),
        (["--at", "0 8 * * *", "--timezone", "Mars/Olympus"], "--timezone 'Mars/Olympus'"),
        (["--mailto", "a\nMAILTO=b"], "--mailto"),
    ],
)
def test_bad_schedule_options_are_refused(files, capsys, extra, message):
    code, _, err = run(capsys, "schedule", "site.yml", "-i", "hosts.yml", *extra)
    assert code == 5 and message in err
