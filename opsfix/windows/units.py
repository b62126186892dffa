"""The files that run a playbook at the start of each maintenance window.

With systemd: a timer (one OnCalendar= per calendar rule of every window) and a oneshot
service. Without it: one file in /etc/cron.d. Either way the run goes through
`flock -n` on a lock file of its own, so a scheduled run never starts while the previous
one still runs (systemd would not start a oneshot twice either; cron would).

systemd keeps a run's output in the journal. Under cron, a run's output is appended to a
log file, and only a run that did not end well (a host failed or unreachable, opsfix
itself failed) prints: its exit code and the log's last lines, which cron mails to
MAILTO (set in the file; root unless told otherwise). A healthy run mails no one.

Every path is relative to a root that tests point at a temporary folder; nothing here
touches the real /etc unless that root is `/`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from opsfix.windows.conversion import ConversionError, cron_lines, oncalendar
from opsfix.windows.model import UTC, Window

FLOCK = "/usr/bin/flock"
LOCK_BUSY = 75  # flock's exit code when the previous run still holds the lock
CRON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HEADER = "# Written by `opsfix schedule`; run it again to change this file.\n"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Schedule:
    """Run `command` (argv) in `workdir` at the start of every window of `windows`."""

    name: str  # unit and file name, e.g. opsfix-nginx_recovery
    playbook: str  # for descriptions
    windows: tuple[Window, ...]
    command: tuple[str, ...]
    workdir: Path
    user: bool = False  # a systemd user unit rather than a system one
    mode: str = "apply"  # or "check": the command the schedule runs, for descriptions
    log: Path | None = None  # cron: where output goes (default /var/log/opsfix/NAME.log)
    mailto: str = "root"  # cron: who hears of a run that did not end well ("": no one)


def unit_name(playbook_name: str) -> str:
    """`opsfix-<name>` with only letters, digits, `_` and `-` (what cron.d accepts)."""
    return "opsfix-" + (_UNSAFE.sub("-", playbook_name).strip("-") or "playbook")


def systemd_running(root: Path) -> bool:
    return (root / "run/systemd/system").is_dir()


def systemd_files(schedule: Schedule, home: Path | None = None) -> dict[Path, str]:
    """The .service and .timer files, by absolute path (user units under `home`)."""
    base = (
        (home or Path.home()) / ".config/systemd/user"
        if schedule.user
        else Path("/etc/systemd/system")
    )
    return {
        base / f"{schedule.name}.service": _service(schedule),
        base / f"{schedule.name}.timer": _timer(schedule),
    }


def cron_file(schedule: Schedule, clock: ZoneInfo) -> dict[Path, str]:
    """/etc/cron.d/<name>; cron reads times in the machine's zone `clock`, so every
    window must keep the same clock (ConversionError names the first that does not)."""
    if schedule.user:
        raise ConversionError(
            "--user without systemd: cron.d is system-wide; print the lines without "
            "--install and add them with 'crontab -e' (drop the user field)"
        )
    lines = [HEADER, "SHELL=/bin/sh\n", f"PATH={CRON_PATH}\n", f"MAILTO={schedule.mailto}\n"]
    run = _cron_run(schedule).replace("%", "\\%")
    for window in schedule.windows:
        if not same_clock(window.zone, clock):
            raise ConversionError(
                f"window {window.label!r} is in {window.timezone}, but cron on this machine "
                f"runs in {clock.key}, and Debian's cron knows one zone only: use systemd, "
                "or give the window the machine's time zone",
                window,
            )
        lines.append(f"# {_about(window)}\n")
        for line in cron_lines(window):
            lines.append(f"{' '.join(line.fields)} root {line.guard}{run}\n")
    return {Path(f"/etc/cron.d/{schedule.name}"): "".join(lines)}


def _cron_run(schedule: Schedule) -> str:
    """The run, its output appended to the log. It prints (so cron mails) only when the
    run did not end well; a run skipped because the previous one still holds the lock
    ended well."""
    lock = f"/run/lock/{schedule.name}.lock"
    log = schedule.log or Path(f"/var/log/opsfix/{schedule.name}.log")
    q = shlex.quote
    run = shlex.join(["flock", "-n", "-E", str(LOCK_BUSY), lock, *schedule.command])
    return (
        f"{{ mkdir -p {q(str(log.parent))} && cd {q(str(schedule.workdir))} && "
        f"{run} >>{q(str(log))} 2>&1; rc=$?; [ $rc = 0 ] || [ $rc = {LOCK_BUSY} ] || "
        f'{{ echo "opsfix {schedule.mode} {schedule.playbook}: exit $rc; the end of {log}:"; '
        f"tail -n 40 {q(str(log))}; }}; }}"
    )


def same_clock(a: ZoneInfo, b: ZoneInfo, since: datetime | None = None, days: int = 400) -> bool:
    """True when both zones show the same time at every hour of `days` days from `since`."""
    if a.key == b.key:
        return True
    start = (since or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return all(
        (at := start + timedelta(hours=h)).astimezone(a).utcoffset() == at.astimezone(b).utcoffset()
        for h in range(days * 24)
    )


def machine_zone(root: Path) -> ZoneInfo:
    """The zone cron uses: `<root>/etc/localtime`, or UTC where there is none."""
    path = root / "etc/localtime"
    if not path.exists():
        return ZoneInfo("UTC")
    key = os.path.realpath(path).partition("/zoneinfo/")[2]
    try:
        return ZoneInfo(key) if key else _from_file(path)
    except (ValueError, OSError):
        return _from_file(path)


def install(files: dict[Path, str], root: Path) -> list[Path]:
    """Write each file under `root` atomically (temp file, then rename); mode 0644."""
    written = []
    for path, text in files.items():
        target = root / path.relative_to(path.anchor)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".{target.name}.opsfix-tmp")
        staged.write_text(text, encoding="utf-8")
        staged.chmod(0o644)
        os.replace(staged, target)
        written.append(target)
    return written


def enable_commands(schedule: Schedule) -> list[list[str]]:
    scope = ["--user"] if schedule.user else []
    return [
        ["systemctl", *scope, "daemon-reload"],
        ["systemctl", *scope, "enable", "--now", f"{schedule.name}.timer"],
    ]


def enable(schedule: Schedule) -> list[subprocess.CompletedProcess[str]]:
    """Reload systemd and enable and start the timer; stops at the first failure."""
    done = []
    for argv in enable_commands(schedule):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        done.append(result)
        if result.returncode != 0:
            break
    return done


def _service(schedule: Schedule) -> str:
    lock = f"%t/{schedule.name}.lock" if schedule.user else f"/run/lock/{schedule.name}.lock"
    argv = " ".join(_word(w) for w in schedule.command)
    network = "" if schedule.user else "Wants=network-online.target\nAfter=network-online.target\n"
    return (
        f"{HEADER}[Unit]\n"
        f"Description=opsfix: {schedule.mode} {_specifiers(schedule.playbook)} on schedule\n"
        f"{network}\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_specifiers(str(schedule.workdir))}\n"
        f"ExecStart={FLOCK} -n -E {LOCK_BUSY} {lock} {argv}\n"
        f"# {LOCK_BUSY}: skipped, the previous scheduled run still holds the lock\n"
        f"SuccessExitStatus={LOCK_BUSY}\n"
    )


def _timer(schedule: Schedule) -> str:
    lines = [HEADER, "[Unit]\n"]
    about = _specifiers(schedule.playbook)
    lines.append(f"Description=opsfix: when to {schedule.mode} {about}\n\n")
    lines.append("[Timer]\n")
    for window in schedule.windows:
        lines.append(f"# {_about(window)}\n")
        lines.extend(f"OnCalendar={spec}\n" for spec in oncalendar(window))
    lines.append("AccuracySec=1s\n\n[Install]\nWantedBy=timers.target\n")
    return "".join(lines)


def _about(window: Window) -> str:
    name = f"window {window.name!r}: " if window.name else "window: "
    return name + window.describe()


def _word(arg: str) -> str:
    """One argument as systemd's ExecStart= reads it: quoted, `%` and `$` doubled."""
    if re.fullmatch(r"[A-Za-z0-9_@+=:,./-]+", arg):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + _specifiers(escaped).replace("$", "$$") + '"'


def _specifiers(text: str) -> str:
    """`%` doubled, so systemd does not read it as a specifier such as %h."""
    return text.replace("%", "%%")


def _from_file(path: Path) -> ZoneInfo:
    with path.open("rb") as handle:
        return ZoneInfo.from_file(handle, key=str(path))
