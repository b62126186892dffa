"""Cron to systemd OnCalendar= and crontab lines, checked against systemd-analyze and croniter;
the unit files and cron.d file, written under a temporary root only."""

import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from opsfix.windows import Window
from opsfix.windows.conversion import (
    ConversionError,
    cron_lines,
    dst_skipped_starts,
    oncalendar,
)
from opsfix.windows.model import instant_of
from opsfix.windows.units import (
    Schedule,
    cron_file,
    install,
    machine_zone,
    same_clock,
    systemd_files,
    unit_name,
)

H = timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
BASE = datetime(2024, 1, 1, tzinfo=UTC)

EXPRESSIONS = [
    "0 2 * * 2#1",  # the seeds' window: first Tuesday
    "*/15 1-2 * * *",
    "0 2 1,15 * mon-fri",  # cron's OR: the 1st, the 15th, and every weekday
    "0 4 1-7 * 1",  # OR again: days 1-7 and every Monday (not "first Monday")
    "0 2 */2 * 1",
    "0 2 L * *",
    "0 2 1,L jan,jul *",
    "0 2 * * L5",  # last Friday
    "0 2 * * 2#1,4#3",
    "0 2 * * 5#5",
    "@weekly",
    "30 23 31 * *",
    "5,35 */6 * * 0,6",
    "0 12 */10 * *",
    "0 3 * * 7",
    "0 0 * feb-apr/2 *",
    "0 2 29 2 *",
]


def window(cron, tz="UTC"):
    return Window(cron, H, tz)


def first_starts(win, n, since=BASE):
    return [s for s, _ in zip(win.starts(since), range(n), strict=False)]


def starts_until(win, until, since=BASE):
    found = []
    for start in win.starts(since):
        if start >= until:
            return found
        found.append(start)
    return found


def systemd_times(spec, n, since=BASE):
    assert SYSTEMD_ANALYZE
    out = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "calendar",
            f"--iterations={n}",
            f"--base-time={since:%Y-%m-%d %H:%M:%S} UTC",
            spec,
        ],
        env={**os.environ, "TZ": "UTC"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out)
    return [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in found]


def systemd_starts(win, n, since=BASE):
    """The first n fire times of all the window's OnCalendar= lines together."""
    times = {t for spec in oncalendar(win) for t in systemd_times(spec, n, since)}
    return sorted(times)[:n]


# --- OnCalendar= --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 2 * * 2#1", ["Tue *-*-01..07 02:00:00 UTC"]),
        ("*/15 1-5 * * *", ["*-*-* 01..05:00,15,30,45:00 UTC"]),
        (
            "0 2 1,15 * mon-fri",
            ["*-*-01,15 02:00:00 UTC", "Mon,Tue,Wed,Thu,Fri *-*-* 02:00:00 UTC"],
        ),
        ("0 2 L * *", ["*-*~01 02:00:00 UTC"]),
        ("0 2 * * L5", ["Fri *-*~07/1 02:00:00 UTC"]),
        ("0 2 * * 5#5", ["Fri *-*-29..31 02:00:00 UTC"]),
        ("0 0 * jan-mar,dec *", ["*-01..03,12-* 00:00:00 UTC"]),
        ("@weekly", ["Sun *-*-* 00:00:00 UTC"]),  # cron's Sunday, not systemd's "weekly"
    ],
)
def test_oncalendar_lines(cron, expected):
    assert oncalendar(window(cron)) == expected


def test_oncalendar_keeps_the_window_zone():
    assert oncalendar(window("0 2 * * 2#1", "Europe/Berlin")) == [
        "Tue *-*-01..07 02:00:00 Europe/Berlin"
    ]


def test_nearest_weekday_is_refused():
    with pytest.raises(ConversionError, match=r"'W' .*no systemd or crontab equivalent"):
        oncalendar(Window("0 2 15W * *", H, name="payday"))


needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed"
)


@needs_systemd_analyze
@pytest.mark.parametrize("cron", EXPRESSIONS)
def test_systemd_fires_when_croniter_does(cron):
    win = window(cron)
    n = 8 if cron == "0 2 29 2 *" else 40
    assert systemd_starts(win, n) == first_starts(win, n)


@needs_systemd_analyze
@pytest.mark.parametrize("cron", ["30 2 * * *", "0 2 * * 2#1", "0 1-3 * * 0"])
def test_systemd_agrees_in_berlin_except_where_the_clocks_skip(cron):
    win = window(cron, "Europe/Berlin")
    until = datetime(2025, 1, 1, tzinfo=UTC)
    ours = starts_until(win, until)
    theirs = [s for s in systemd_starts(win, 400) if s < until]
    # systemd fires at each of our starts but those that fall in the hour the clocks
    # skip: ours open at the jump (03:00), unless another start is there anyway
    skipped = {instant_of(s.replace(tzinfo=None), BERLIN) for s in dst_skipped_starts(win, BASE)}
    assert set(ours) - set(theirs) == skipped - set(theirs)
    assert set(theirs) <= set(ours)
    assert all(s.astimezone(BERLIN).hour == 3 for s in skipped)


@needs_systemd_analyze
def test_the_documented_spring_forward_difference():
    win = window("30 2 * * *", "Europe/Berlin")
    since = datetime(2024, 3, 30, tzinfo=UTC)
    assert first_starts(win, 3, since)[1] == datetime(2024, 3, 31, 1, tzinfo=UTC)
    assert datetime(2024, 3, 31, 1, tzinfo=UTC) not in systemd_starts(win, 3, since)
    assert [s.date().isoformat() for s in dst_skipped_starts(win, BASE)] == ["2024-03-31"]


# --- crontab lines ------------------------------------------------------------------


def guard_holds(guard, when):
    """What the guard's shell test says on the day of `when` (see test_guards_in_a_shell)."""
    ok = True
    if weekday := re.search(r'date \+\\%w\)" = (\d)', guard):
        ok &= when.isoweekday() % 7 == int(weekday.group(1))
    if "-d tomorrow" in guard:
        ok &= (when + timedelta(days=1)).day == 1
    if "-d +7days" in guard:
        ok &= (when + timedelta(days=7)).day <= 7
    return ok


def cron_fire_times(win, until):
    """A year of what Vixie cron fires for the window's lines (its AND quirk included)."""
    times = set()
    for line in cron_lines(win):
        matches = croniter(" ".join(line.fields), BASE, implement_cron_bug=True)
        while (when := matches.get_next(datetime)) < until:
            if guard_holds(line.guard, when):
                times.add(when)
    return sorted(times)


@pytest.mark.parametrize("cron", [e for e in EXPRESSIONS if e != "0 2 29 2 *"])
def test_crontab_lines_fire_when_croniter_does(cron):
    win = window(cron)
    until = datetime(2025, 1, 1, tzinfo=UTC)
    assert cron_fire_times(win, until) == starts_until(win, until)


FAKE_DATE = """#!/bin/sh
case "$*" in
  "+%w") echo "$FAKE_W" ;;
  "-d tomorrow +%d") echo "$FAKE_TOMORROW" ;;
  "-d +7days +%d") echo "$FAKE_WEEK" ;;
  *) echo "unexpected date $*" >&2; exit 9 ;;
esac
"""


@pytest.mark.parametrize(
    ("cron", "env", "runs"),
    [
        ("0 2 * * 2#1", {"FAKE_W": "2"}, True),
        ("0 2 * * 2#1", {"FAKE_W": "3"}, False),
        ("0 2 L * *", {"FAKE_TOMORROW": "01"}, True),
        ("0 2 L * *", {"FAKE_TOMORROW": "31"}, False),
        ("0 2 * * L5", {"FAKE_W": "5", "FAKE_WEEK": "03"}, True),
        ("0 2 * * L5", {"FAKE_W": "5", "FAKE_WEEK": "08"}, False),
        ("0 2 * * L5", {"FAKE_W": "4", "FAKE_WEEK": "03"}, False),
    ],
)
def test_guards_in_a_shell(tmp_path, cron, env, runs):
    (tmp_path / "date").write_text(FAKE_DATE)
    (tmp_path / "date").chmod(0o755)
    [line] = cron_lines(window(cron))
    script = line.guard.replace("\\%", "%") + "echo RUN"  # cron turns \% into %
    path = f"{tmp_path}:{os.environ['PATH']}"
    done = subprocess.run(
        ["sh", "-c", script], env={**os.environ, **env, "PATH": path}, capture_output=True
    )
    assert (done.stdout == b"RUN\n") is runs, done.stderr


# --- the files ------------------------------------------------------------------------


def schedule(**kw):
    values = {
        "name": "opsfix-site",
        "playbook": "site",
        "windows": (Window("0 2 * * 2#1", 2 * H, "UTC", "monthly"),),
        "command": ("/opt/opsfix/bin/opsfix", "apply", "/srv/pb dir/site.yml", "-e", "x=5%$y"),
        "workdir": Path("/srv/ops"),
    }
    return Schedule(**{**values, **kw})


def test_systemd_service_and_timer():
    files = systemd_files(schedule())
    service = files[Path("/etc/systemd/system/opsfix-site.service")]
    timer = files[Path("/etc/systemd/system/opsfix-site.timer")]
    assert "Type=oneshot\n" in service
    assert (
        "ExecStart=/usr/bin/flock -n -E 75 /run/lock/opsfix-site.lock /opt/opsfix/bin/opsfix "
        'apply "/srv/pb dir/site.yml" -e "x=5%%$$y"\n'
    ) in service
    assert "SuccessExitStatus=75\n" in service
    assert "OnCalendar=Tue *-*-01..07 02:00:00 UTC\n" in timer
    assert "# window 'monthly': 0 2 * * 2#1 for 2h, UTC\n" in timer
    assert "WantedBy=timers.target\n" in timer


def test_user_units_live_in_the_home_and_lock_in_the_runtime_dir(tmp_path):
    files = systemd_files(schedule(user=True), home=tmp_path)
    service = files[tmp_path / ".config/systemd/user/opsfix-site.service"]
    assert " %t/opsfix-site.lock " in service and "network-online" not in service


def test_cron_file():
    [(path, text)] = cron_file(schedule(), ZoneInfo("Etc/UTC")).items()
    assert path == Path("/etc/cron.d/opsfix-site")
    line = text.splitlines()[-1]
    assert "MAILTO=root\n" in text
    assert line == (
        '0 2 1-7 * * root [ "$(date +\\%w)" = 2 ] && { mkdir -p /var/log/opsfix && cd /srv/ops '
        "&& flock -n -E 75 /run/lock/opsfix-site.lock /opt/opsfix/bin/opsfix apply "
        "'/srv/pb dir/site.yml' -e 'x=5\\%$y' >>/var/log/opsfix/opsfix-site.log 2>&1; rc=$?; "
        '[ $rc = 0 ] || [ $rc = 75 ] || { echo "opsfix apply site: exit $rc; the end of '
        '/var/log/opsfix/opsfix-site.log:"; tail -n 40 /var/log/opsfix/opsfix-site.log; }; }'
    )


@pytest.mark.parametrize(("code", "mails"), [(0, False), (2, True), (3, True)])
def test_cron_logs_every_run_and_speaks_only_when_one_did_not_end_well(tmp_path, code, mails):
    """The line as cron runs it (dash, `\\%` read as `%`): output to the log; on a bad exit,
    the exit code and the log's end on stdout, which cron mails to MAILTO."""
    log = tmp_path / "logs" / "site.log"
    command = ("sh", "-c", f"echo checked 100%; exit {code}")
    made = schedule(
        command=command, workdir=tmp_path, log=log, mailto="ops@example.org", name=tmp_path.name
    )
    [text] = cron_file(made, ZoneInfo("UTC")).values()
    assert "MAILTO=ops@example.org\n" in text
    line = text.splitlines()[-1].split(" root ", 1)[1].replace("\\%", "%")
    line = line.replace('[ "$(date +%w)" = 2 ] && ', "")  # the day: any day here
    for _ in range(2):
        done = subprocess.run(["dash", "-c", line], capture_output=True, text=True)
    assert log.read_text() == "checked 100%\n" * 2
    if mails:
        assert done.stdout.startswith(f"opsfix apply site: exit {code}; the end of {log}:\n")
        assert done.stdout.endswith("checked 100%\n")
    else:
        assert done.stdout == "" and done.stderr == ""


def test_cron_is_quiet_when_the_previous_run_still_holds_the_lock(tmp_path):
    made = schedule(command=("true",), workdir=tmp_path, log=tmp_path / "l", name=tmp_path.name)
    [text] = cron_file(made, ZoneInfo("UTC")).values()
    line = text.splitlines()[-1].split(" root ", 1)[1].replace("\\%", "%")
    line = line.replace('[ "$(date +%w)" = 2 ] && ', "")
    lock = f"/run/lock/{tmp_path.name}.lock"
    with subprocess.Popen(["flock", lock, "sleep", "5"]) as holder:
        try:
            time.sleep(0.3)
            done = subprocess.run(["dash", "-c", line], capture_output=True, text=True)
        finally:
            holder.kill()
    Path(lock).unlink(missing_ok=True)
    assert done.returncode == 0 and done.stdout == ""


def test_cron_escapes_percent_everywhere_in_the_command():
    odd = schedule(workdir=Path("/srv/100%"))
    line = cron_file(odd, ZoneInfo("UTC"))[Path("/etc/cron.d/opsfix-site")].splitlines()[-1]
    assert "&& cd /srv/100\\% && flock" in line
    assert line.count("%") == line.count("\\%")


def test_cron_refuses_a_window_in_another_zone():
    berlin = schedule(windows=(Window("0 2 * * *", H, "Europe/Berlin"),))
    with pytest.raises(ConversionError, match="Europe/Berlin, but cron on this machine"):
        cron_file(berlin, ZoneInfo("UTC"))
    assert cron_file(berlin, ZoneInfo("Europe/Berlin"))


def test_cron_refuses_user_schedules():
    with pytest.raises(ConversionError, match="crontab -e"):
        cron_file(schedule(user=True), ZoneInfo("UTC"))


def test_same_clock():
    since = datetime(2024, 1, 1, tzinfo=UTC)
    assert same_clock(ZoneInfo("UTC"), ZoneInfo("Etc/UTC"), since)
    assert not same_clock(ZoneInfo("UTC"), ZoneInfo("Europe/London"), since)


def test_machine_zone(tmp_path):
    assert machine_zone(tmp_path).key == "UTC"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/localtime").symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    assert machine_zone(tmp_path).key == "Europe/Berlin"


def test_install_writes_under_the_root_only(tmp_path):
    written = install(systemd_files(schedule()), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "etc/systemd/system/opsfix-site.service",
        "etc/systemd/system/opsfix-site.timer",
    ]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written)
    assert not list(tmp_path.rglob("*.opsfix-tmp"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("site", "opsfix-site"),
        ("nginx recovery/v2", "opsfix-nginx-recovery-v2"),
        ("..", "opsfix-playbook"),
    ],
)
def test_unit_names(name, expected):
    assert unit_name(name) == expected


@needs_systemd_analyze
def test_systemd_accepts_the_unit_files(tmp_path):
    tricky = ("/usr/bin/true", "apply", "a b", 'say "hi"', "50%", "$HOME", "back\\slash")
    windows = (
        Window("0 2 * * 2#1", 2 * H, "UTC", "monthly"),
        Window("0 2 1,L jan,jul *", H, "Europe/Berlin"),
    )
    written = install(systemd_files(schedule(command=tricky, windows=windows)), tmp_path)
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *(str(p) for p in written)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
