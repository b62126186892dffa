"""The host-side drill scripts, run for real in a scratch folder: record, back up, break,
refuse, roll back, reset exactly, report status.

The scripts are opsfix's own, with two changes made here: the record folder is moved into
the scratch folder, and nginx control is stubbed out (this machine's nginx is not a drill's
business). The drill itself is a scratch one, put in the catalog for the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from opsfix.drills import RECORD_DIR, Drill, break_script, reset_script, status_script

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("tar"), reason="drill scripts run as root (tar -p)"
)

STUBS = """
nginx_is_running() {{ [ -e {host}/nginx-running ]; }}
nginx_settle() {{ echo "settle $1" >> {host}/settled; }}
"""


def scratch_drill(tmp: Path, **changes: str) -> Drill:
    fields = {
        "name": "scratch",
        "title": "scratch fault",
        "observe": "",
        "playbook": "playbooks/nginx_recovery.yml",
        "detects": (),
        "saves": (f"{tmp}/conf", "{web_root}", f"{tmp}/new.conf"),
        "breaks": (
            'echo broken > "$DRILL_DIR/../../conf"; chmod 0700 "$WEB_ROOT"; '
            'rm "$WEB_ROOT/index.html"; echo new > "$DRILL_DIR/../../new.conf"'
        ),
        "broken_when": f'[ -e "{tmp}/new.conf" ]',
        "undo": f'echo undone >> "{tmp}/undone"',
    }
    fields.update(changes)
    return Drill(**fields)  # type: ignore[arg-type]


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch 'host': a config file, a web root with a subfolder, nginx 'running'."""
    (tmp_path / "conf").write_text("good\n")
    (tmp_path / "conf").chmod(0o600)
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    (www / "index.html").write_text("app\n")
    (www / "sub" / "page.html").write_text("page\n")
    www.chmod(0o755)
    (tmp_path / "nginx-running").touch()
    return tmp_path


def run(script: str, host: Path) -> subprocess.CompletedProcess[str]:
    script = script.replace(f"D={RECORD_DIR}\n", f"D={host}/drills\n", 1)
    for marker in ("\nname=", "\nreset_one() {"):
        if marker in script:
            script = script.replace(marker, STUBS.format(host=host) + marker, 1)
            break
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under the scratch host except the drills' own state: mode and content."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("drills", "settled", "undone")):
            continue
        content = path.read_text() if path.is_file() else ""
        found[rel] = (path.stat().st_mode & 0o7777, content)
    return found


def test_break_records_then_reset_puts_back_exactly(host: Path, monkeypatch) -> None:
    drill = scratch_drill(host)
    monkeypatch.setattr("opsfix.drills.script.DRILLS", (drill,))
    before = snapshot(host)
    broke = run(break_script(drill, web_root=str(host / "www"), by="ana@laptop"), host)
    assert broke.returncode == 0, broke.stderr
    assert broke.stdout.strip() == "broken: scratch"
    record = (host / "drills" / "scratch" / "record").read_text()
    assert "drill=scratch" in record and "by=ana@laptop" in record and "nginx=running" in record
    saved = (host / "drills" / "scratch" / "saved").read_text().splitlines()
    assert saved == [f"f {host}/conf", f"d {host}/www", f"absent: {host}/new.conf"]
    assert (host / "conf").read_text() == "broken\n"

    status = run(status_script(web_root=str(host / "www")), host)
    assert (
        status.stdout.startswith("drill=scratch since=")
        and "still=yes by=ana@laptop" in status.stdout
    )

    reset = run(reset_script(web_root=str(host / "www")), host)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.strip() == "reset: scratch"
    assert snapshot(host) == before
    assert not (host / "drills" / "scratch").exists()
    assert (host / "undone").read_text() == "undone\n"
    assert (host / "settled").read_text() == "settle running\n"
    assert run(status_script(web_root=str(host / "www")), host).stdout == ""


def test_a_second_break_of_the_same_drill_is_refused(host: Path, monkeypatch) -> None:
    drill = scratch_drill(host)
    monkeypatch.setattr("opsfix.drills.script.DRILLS", (drill,))
    script = break_script(drill, web_root=str(host / "www"), by="ana@laptop")
    assert run(script, host).returncode == 0
    again = run(script, host)
    assert again.returncode == 3
    assert "scratch is already broken here (since " in again.stderr


def test_a_fault_already_present_is_refused_and_nothing_recorded(host: Path) -> None:
    (host / "new.conf").write_text("already\n")
    drill = scratch_drill(host)
    done = run(break_script(drill, web_root=str(host / "www"), by="x"), host)
    assert done.returncode == 4
    assert "already shows the fault" in done.stderr
    assert not (host / "drills" / "scratch").exists()


@pytest.mark.parametrize(
    "breaks", ['echo half > "$WEB_ROOT/index.html"; false', 'echo half > "$WEB_ROOT/index.html"']
)
def test_a_break_that_fails_or_does_not_show_is_rolled_back(
    host: Path, breaks: str, monkeypatch
) -> None:
    """Commands that fail, or a fault that does not show: everything is put back at once."""
    drill = scratch_drill(host, breaks=breaks)
    before = snapshot(host)
    done = run(break_script(drill, web_root=str(host / "www"), by="x"), host)
    assert done.returncode == 1
    assert "the fault did not take on this host: nothing is left changed" in done.stderr
    assert snapshot(host) == before
    assert not (host / "drills" / "scratch").exists()
    assert (host / "undone").read_text() == "undone\n"


def test_drills_are_reset_newest_first(host: Path, monkeypatch) -> None:
    """Two drills saving the same file: undone in reverse, the first one's copy wins."""
    first = scratch_drill(
        host,
        name="first",
        saves=(f"{host}/conf",),
        breaks=f'echo one > "{host}/conf"; touch "{host}/new.conf"',
    )
    second = scratch_drill(
        host,
        name="second",
        saves=(f"{host}/conf",),
        breaks=f'echo two > "{host}/conf"',
        broken_when=f'grep -q two "{host}/conf"',
    )
    monkeypatch.setattr("opsfix.drills.script.DRILLS", (first, second))
    before = snapshot(host)
    assert run(break_script(first, web_root=str(host / "www"), by="x"), host).returncode == 0
    assert run(break_script(second, web_root=str(host / "www"), by="x"), host).returncode == 0
    reset = run(reset_script(web_root=str(host / "www")), host)
    assert reset.stdout.splitlines() == ["reset: second", "reset: first"]
    (host / "new.conf").unlink()  # made by the first break but not among its saves
    assert snapshot(host) == before
