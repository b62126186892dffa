"""A non-root user who writes the web root cannot make opsfix, running as root, write or
chmod anything outside it: not by a symlinked folder, not by file names that forge records,
not by swapping names while a run is under way.

A watcher inside the host (its own namespaces, bypassing SSH and opsfix) samples the paths
that must not change, all through each run, not only after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsfix import hostfiles
from opsfix.lab import Lab
from opsfix.plugin import RemediationContext
from opsfix.remediations import _nginx
from opsfix.remediations.grant_read_access import GrantReadAccess, GrantReadAccessParams
from opsfix.shell import quote
from opsfix.transport.base import Connection
from opsfix.transport.connect import open_connection
from opsfix.transport.spec import ConnectionSpec

from .helpers import DATA, Run, run_playbook

pytestmark = pytest.mark.integration

HOST = "web1"
WEB_ROOT = "/var/www/html"
PLAYBOOKS = DATA / "hostile_paths"
DEPLOY = "opsdeploy"
STOP, READY = "/run/opsfix-watch-stop", "/run/opsfix-watch-ready"
CONTEXT = RemediationContext(HOST, {}, PLAYBOOKS, lambda name, v: "")
SETUP = f"""
mkdir -p /etc/cron.d && chmod 755 /etc/cron.d
chmod 700 /root && printf 'ls\\n' > /root/.bash_history && chmod 600 /root/.bash_history
id -u {DEPLOY} >/dev/null 2>&1 || useradd -M -d /nonexistent -s /bin/sh {DEPLOY}
"""
TEARDOWN = f"""
pkill -u www-data -x sh; pkill -u {DEPLOY} -x sh; sleep 0.2
rm -rf {WEB_ROOT}/assets /etc/cron.d/site.css /var/lib/opsfix /var/backups/opsfix
chown -R root:root {WEB_ROOT}; userdel {DEPLOY}
[ ! -L /run/lock/opsfix ] || rm -f /run/lock/opsfix; true
"""


@dataclass
class Watch:
    """What the watcher saw: each distinct state of the watched paths, and how often it looked."""

    states: list[str] = field(default_factory=list)
    samples: int = 0


class Watcher:
    """Samples `stat` of `paths` and the listing of `folders` inside the host until stopped."""

    def __init__(self, lab: Lab, paths: list[str], folders: list[str]) -> None:
        look = f"stat -c '%n %a %u:%g %s' -- {' '.join(paths)} 2>&1"
        look += f"; ls -A -- {' '.join(folders)}" if folders else ""
        self.script = (
            f"rm -f {STOP}; n=0; prev=\n"
            f"while [ ! -e {STOP} ]; do\n"
            f"  cur=$({look} 2>&1)\n"
            '  [ "$cur" = "$prev" ] || printf "%s\\n--\\n" "$cur"\n'
            f"  prev=$cur; n=$((n + 1)); [ $n -ne 1 ] || : > {READY}\n"
            f'done\nrm -f {READY}; echo "samples $n"'
        )
        self.lab, self.out = lab, ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.out = self.lab.exec(HOST, self.script, timeout=600).stdout

    def __enter__(self) -> Watcher:
        self.lab.exec(HOST, f"rm -f {STOP} {READY}")
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.lab.exec(HOST, f"test -e {READY}", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the watcher did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.exec(HOST, f": > {STOP}")
        self.thread.join(30)

    @property
    def seen(self) -> Watch:
        *states, last = self.out.split("\n--\n")
        return Watch(states, int(last.split()[-1]) if last.startswith("samples") else 0)


class Attacker:
    """A user's shell loop in the web root, running beside a run until stopped."""

    def __init__(self, lab: Lab, user: str, loop: str) -> None:
        self.lab = lab
        body = f"cd {WEB_ROOT} && while :; do {loop}; done"
        self.start = f"setsid runuser -u {user} -- sh -c '{body}' >/dev/null 2>&1 </dev/null &"
        self.user = user

    def __enter__(self) -> Attacker:
        self.lab.exec(HOST, self.start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.exec(HOST, f"pkill -u {self.user} -x sh; sleep 0.2; true")


@pytest.fixture
def lab(clean_lab: Lab) -> Iterator[Lab]:
    clean_lab.exec(HOST, TEARDOWN + SETUP)
    yield clean_lab
    clean_lab.exec(HOST, TEARDOWN, check=False)
    clean_lab.reset(HOST)


def as_user(lab: Lab, user: str, script: str) -> None:
    lab.exec(HOST, f"runuser -u {user} -- sh -c 'cd {WEB_ROOT} && {script}'")


def apply(lab: Lab, playbook: str) -> Run:
    return run_playbook(lab, "apply", [HOST], playbook=PLAYBOOKS / playbook)


def remediation(run: Run) -> dict[str, str]:
    [step] = run.host(HOST)["steps"]
    [done] = step["remediations"]
    return dict(done)


# -- restore_content and a symlinked folder --------------------------------------------------


def test_restore_content_writes_nothing_through_a_symlinked_folder(lab: Lab) -> None:
    lab.exec(HOST, f"chown -R www-data:www-data {WEB_ROOT}")
    as_user(lab, "www-data", "ln -s /etc/cron.d assets")  # a CMS's uploads, say
    before = lab.exec(HOST, "ls -A /etc/cron.d").stdout
    with Watcher(lab, ["/etc/cron.d"], ["/etc/cron.d"]) as watcher:
        run = apply(lab, "restore.yml")
    assert run.returncode == 2, str(run)
    done = remediation(run)
    assert done["status"] == "refused", str(run)
    assert f"{WEB_ROOT}/assets: a symlink on the host where a folder should be" in done["reason"]
    seen = watcher.seen
    assert seen.samples > 10 and len(seen.states) == 1, seen  # /etc/cron.d never changed
    assert lab.exec(HOST, "ls -A /etc/cron.d").stdout == before


def test_restore_content_against_a_folder_swapped_for_a_symlink_all_the_while(lab: Lab) -> None:
    lab.exec(HOST, f"chown -R www-data:www-data {WEB_ROOT}")
    flip = "rm -rf assets; mkdir assets; rm -rf assets; ln -s /etc/cron.d assets"
    with Watcher(lab, ["/etc/cron.d"], ["/etc/cron.d"]) as watcher, Attacker(lab, "www-data", flip):
        runs = [apply(lab, "restore.yml") for _ in range(4)]
    for run in runs:
        assert run.returncode in (0, 2) and "Traceback" not in run.stderr, str(run)
    seen = watcher.seen
    assert seen.samples > 10 and len(seen.states) == 1, seen
    assert "site.css" not in lab.exec(HOST, "ls -A /etc/cron.d").stdout


# -- grant_read_access and forged names ------------------------------------------------------

FORGED = [  # a record per line would make root chmod /root and its history (cwd: /root)
    "b\\nT 700 0 0 d .",
    "c\\nT 600 0 0 f .bash_history",
    "d\\nT 700 0 0 d 1 .",
    "e\\nT 600 0 0 f 1 .bash_history",
]
SENTINELS = ["/root", "/root/.bash_history"]


def test_grant_read_access_chmods_exactly_the_forged_names_and_nothing_outside(lab: Lab) -> None:
    lab.exec(HOST, f"chown -R {DEPLOY}:{DEPLOY} {WEB_ROOT}")
    names = " ".join(f'"$(printf "{name}")"' for name in FORGED)
    as_user(lab, DEPLOY, f'umask 077; for n in {names}; do printf x > "$n"; done')
    with Watcher(lab, SENTINELS, []) as watcher:
        run = apply(lab, "access.yml")
    assert run.returncode == 0, str(run)
    assert run.host(HOST)["status"] == "repaired", str(run)
    seen = watcher.seen
    assert seen.samples > 10 and len(seen.states) == 1, seen
    assert "/root 700 0:0" in seen.states[0] and "/root/.bash_history 600 0:0" in seen.states[0]
    modes = lab.exec(HOST, f"find {WEB_ROOT} -mindepth 1 -name '[bcde]?*' -printf '%m\\n'")
    assert modes.stdout.split() == ["644"] * len(FORGED)


def test_grant_read_access_against_a_file_swapped_for_a_symlink_all_the_while(lab: Lab) -> None:
    lab.exec(HOST, f"chown -R {DEPLOY}:{DEPLOY} {WEB_ROOT}")
    swap = (
        "umask 077; printf x > p.t; mv -Tf p.t page.html; "
        "ln -sfn /root/.bash_history p.l; mv -Tf p.l page.html"
    )
    with Watcher(lab, SENTINELS, []) as watcher, Attacker(lab, DEPLOY, swap):
        runs = [apply(lab, "access.yml") for _ in range(4)]
    for run in runs:
        assert run.returncode in (0, 2) and "Traceback" not in run.stderr, str(run)
    seen = watcher.seen
    assert seen.samples > 10 and len(seen.states) == 1, seen
    assert "/root/.bash_history 600 0:0" in seen.states[0]


# -- the host lock, in the world-writable /run/lock ------------------------------------------


def test_a_lock_folder_planted_by_another_user_is_refused_and_nothing_written_through_it(
    lab: Lab,
) -> None:
    folder = "/run/lock/opsfix"
    lab.exec(HOST, f"rm -rf {folder}")
    lab.exec(HOST, f"runuser -u www-data -- ln -s /etc/cron.d {folder}")
    page = f"{WEB_ROOT}/page.html"  # a deploy's file www-data cannot read: a repair is due
    lab.exec(HOST, f"printf x > {page} && chmod 600 {page} && chown {DEPLOY} {page}")
    try:
        with Watcher(lab, ["/etc/cron.d"], ["/etc/cron.d"]) as watcher:
            run = apply(lab, "access.yml")
        assert run.returncode == 2, str(run)
        assert f"lock folder {folder} is not a folder of this user: refused" in str(run)
        seen = watcher.seen
        assert seen.samples > 10 and len(seen.states) == 1, seen
    finally:
        lab.exec(HOST, f"rm -f {folder}")
    run = apply(lab, "access.yml")  # with the link gone, root makes the folder its own
    assert run.returncode == 0 and run.host(HOST)["status"] == "repaired", str(run)
    assert lab.exec(HOST, f"stat -c '%U %a %F' {folder}").stdout == "root 700 directory\n"


# -- random names over the real SSH transport --------------------------------------------------

PIECES = [b"a", b"-", b" ", b"\n", b"\t", b"'", b'"', b"*", b"\\", b"%s", b"$(id)", b"\x1b[2J",
          b"\xff", b"\xc3", b"\xc3\xa9", b"T 700 0 0 d 1 ."]  # fmt: skip
NAME_SETS = st.sets(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map(b"".join), min_size=1, max_size=5
)


@pytest.fixture
def conn(lab: Lab) -> Iterator[Connection]:
    spec = ConnectionSpec(
        host=HOST,
        hostname=lab.hosts[HOST],
        user="root",
        key_file=str(lab.private_key_path),
        known_hosts_files=(str(lab.known_hosts_path),),
    )
    connection = open_connection(spec)
    connection.open()
    yield connection
    connection.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=NAME_SETS)
def test_random_names_on_a_lab_host_read_back_as_created_and_are_chmodded_alone(
    lab: Lab, conn: Connection, names: set[bytes]
) -> None:
    folder = f"{WEB_ROOT}/names"
    made = " ".join(quote(f"{folder}/{hostfiles.decode(n)}") for n in names)
    lab.exec(HOST, f"rm -rf {folder} && mkdir -m 700 {folder} && cd {folder} && "
             f"for n in {made}; do printf x > \"$n\" && chmod 600 \"$n\"; done")  # fmt: skip
    tree = _nginx.read_manifest(conn.run(_nginx.manifest_command(folder)), folder)
    assert {hostfiles.encode(rel) for rel in tree} == names
    remediation = GrantReadAccess(GrantReadAccessParams(root=folder), CONTEXT)
    plan = remediation.plan([conn.run(c) for c in remediation.gather()])
    assert plan.refuse is None and conn.run(plan.act[0]).ok, plan
    modes = lab.exec(HOST, f"find {folder} -printf '%m\\n' | sort | uniq -c").stdout.split()
    assert modes == ["1", "755", str(len(names)), "644"] or modes == [
        str(len(names)),
        "644",
        "1",
        "755",
    ], modes
    sentinels = lab.exec(HOST, "stat -c '%a' /root /root/.bash_history").stdout.split()
    assert sentinels == ["700", "600"]
