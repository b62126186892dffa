"""What the end-to-end tests share: the real `opsfix` command, host state, and breakage.

Tests run opsfix as a user does, as a subprocess of the installed console script, and
read each host's real state through `lab.exec` (never through opsfix itself): a tree of
files with their hashes, nginx's master and worker PIDs, what `/` serves.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opsfix.lab import Lab
from opsfix.lab.state import LabPaths

REPO = Path(__file__).parents[2]
PLAYBOOK = REPO / "playbooks" / "practice_app.yml"  # the practice app's
GENERIC = REPO / "playbooks" / "nginx_recovery.yml"  # any nginx host's
DATA = Path(__file__).with_name("data")
PLUGINS = DATA / "plugins"
EXPECTED = "opsfix practice app"

WEB_ROOT = "/var/www/html"
ETC_NGINX = "/etc/nginx"
STATE_ROOTS = ("/var/lib/opsfix", "/var/backups")
SCRATCH_ROOTS = ("/tmp", "/run/lock")
KNOWN_GOOD = "/var/lib/opsfix/known-good/etc_nginx"


def opsfix_command() -> str:
    """The installed console script: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("opsfix")
    found = str(beside) if beside.exists() else shutil.which("opsfix")
    assert found, "no opsfix console script (pip install -e .)"
    return found


# -- running the CLI ---------------------------------------------------------------------


@dataclass
class Run:
    """One finished `opsfix` process: exit code, output, and the JSON report if any."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.stdout))
        except json.JSONDecodeError:
            raise AssertionError(f"no JSON report from {self}") from None

    def host(self, name: str) -> dict[str, Any]:
        found = [h for h in self.report["hosts"] if h["host"] == name]
        assert len(found) == 1, f"{name} not in the report of {self}"
        return dict(found[0])

    def __str__(self) -> str:
        return (
            f"`{shlex.join(self.argv)}` exit {self.returncode} after {self.seconds:.1f}s\n"
            f"--- stderr ---\n{self.stderr[-3000:]}\n--- stdout ---\n{self.stdout[-6000:]}"
        )


def clean_env(home: str | Path) -> dict[str, str]:
    """This environment without opsfix's variables, and HOME set (say, to an empty folder,
    so that no ~/.ssh/config or ~/.ssh/known_hosts of the machine takes part). No kept
    connections: a keeper would outlive the test (tests/integration/test_keeper.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSFIX_")}
    env.update(HOME=str(home), LANG="C.UTF-8", OPSFIX_PERSIST="0")
    return env


def start(args: Sequence[str | Path], *, home: str | Path) -> subprocess.Popen[str]:
    """Start `opsfix ARGS` from the repository's folder, as a user would."""
    return subprocess.Popen(
        [opsfix_command(), *map(str, args)],
        cwd=REPO,
        env=clean_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def opsfix(*args: str | Path, home: str | Path | None = None, timeout: float = 120) -> Run:
    """Run `opsfix ARGS` to the end (HOME empty unless given); never raises on its exit."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="opsfix-home-") as empty:
        process = start(args, home=home or empty)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"opsfix {args} ran over {timeout}s:\n{stderr}") from None
    argv = ["opsfix", *map(str, args)]
    return Run(argv, process.returncode, stdout, stderr, time.monotonic() - began)


def opsfix_with_state(*args: str | Path, state: Path) -> Run:
    """The real CLI with HOME and its state database in `state`, as a pipe (no terminal),
    so runs that share `state` share their history."""
    return opsfix_with_env(*args, env={**clean_env(str(state)), "OPSFIX_STATE_DIR": str(state)})


def opsfix_with_env(
    *args: str | Path, env: dict[str, str], timeout: float = 120, cwd: Path = REPO
) -> Run:
    """The real CLI with exactly this environment, as a pipe (no terminal), run from `cwd`."""
    began = time.monotonic()
    done = subprocess.run(
        [opsfix_command(), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    argv = ["opsfix", *map(str, args)]
    return Run(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - began)


def run_playbook(
    lab: Lab,
    command: str,
    hosts: Iterable[str],
    *extra: str | Path,
    playbook: Path = PLAYBOOK,
    inventory: Path | None = None,
    home: str | Path | None = None,
) -> Run:
    """`opsfix COMMAND PLAYBOOK -i INVENTORY --limit h1:h2 --format json EXTRA...`."""
    args: list[str | Path] = [*command.split(), playbook, "-i", inventory or lab.inventory_path]
    args += ["--limit", ":".join(hosts), "--format", "json", *extra]
    return opsfix(*args, home=home)


# -- host state ----------------------------------------------------------------------------

_TREE_SCRIPT = r"""
for r in "$@"; do
  [ -e "$r" ] || [ -L "$r" ] || { printf '%s\tabsent\n' "$r"; continue; }
  find "$r" -printf '%p\t%y %m %u:%g %l\n'
  find "$r" -type f -exec sha256sum {} + | sed 's/^\([0-9a-f]*\)  \(.*\)$/\2\tsha256 \1/'
done
"""


def tree(lab: Lab, host: str, *roots: str) -> dict[str, str]:
    """Every path under `roots` on the host: type, mode, owner, link target, sha256."""
    out = lab.exec(host, "sh -s " + shlex.join(roots), input=_TREE_SCRIPT).stdout
    state: dict[str, str] = {}
    for line in out.splitlines():
        path, _, what = line.partition("\t")
        state[path] = f"{state[path]} {what}" if path in state else what.rstrip()
    return state


def relative(state: dict[str, str], root: str) -> dict[str, str]:
    """The entries below `root`, keyed by their path relative to it."""
    prefix = root.rstrip("/") + "/"
    return {p[len(prefix) :]: v for p, v in state.items() if p.startswith(prefix)}


def watched(lab: Lab, host: str) -> dict[str, str]:
    """All that a run might change or leave behind: config, web root, opsfix's state and
    backups, scratch folders in /tmp, lock files."""
    return tree(lab, host, ETC_NGINX, WEB_ROOT, *STATE_ROOTS, *SCRATCH_ROOTS)


@dataclass(frozen=True)
class Nginx:
    """nginx as the host's process table shows it."""

    master: int | None  # the pid file's process, when it is a live nginx master
    workers: frozenset[int] = frozenset()  # the master's children
    every: frozenset[int] = frozenset()  # every process named nginx (strays too)

    @property
    def has_strays(self) -> bool:
        return self.every != self.workers | {self.master}


_NGINX_SCRIPT = r"""
p=$(cat /run/nginx.pid 2>/dev/null)
if [ -n "$p" ] && grep -qa "master process" "/proc/$p/cmdline" 2>/dev/null; then
  echo "$p" $(pgrep -P "$p" -x nginx)
else
  echo -
fi
echo $(pgrep -x nginx)
"""


def nginx_processes(lab: Lab, host: str) -> Nginx:
    master_line, every_line = lab.exec(host, _NGINX_SCRIPT).stdout.splitlines()
    every = frozenset(int(p) for p in every_line.split())
    if master_line == "-":
        return Nginx(None, every=every)
    master, *workers = (int(p) for p in master_line.split())
    return Nginx(master, frozenset(workers), every)


def http_body(lab: Lab, host: str, path: str = "/") -> str:
    """What nginx answers on the host itself; empty if nothing answers."""
    url = shlex.quote(f"http://127.0.0.1{path}")
    return lab.exec(host, f"curl -sS -m 5 --noproxy '*' {url}", check=False).stdout


def config_ok(lab: Lab, host: str) -> tuple[bool, str]:
    done = lab.exec(host, "nginx -t", check=False)
    return done.returncode == 0, done.stderr


_HAS_SYSTEMD = "[ -d /run/systemd/system ]"


def sshd_log(lab: Lab, host: str) -> str:
    """The host's sshd log, one line per connection: where systemd runs, ssh.service's
    journal; else the boot log (sshd -e, as the namespace host's PID 1, writes there)."""
    journal = "journalctl -u ssh.service -o cat --no-pager"
    out = lab.exec(host, f"if {_HAS_SYSTEMD}; then {journal}; else echo no-journal; fi").stdout
    if out != "no-journal\n":
        return out
    return (LabPaths(lab.state_dir).host(host) / "boot.log").read_text(errors="replace")


def host_public_key(lab: Lab, host: str) -> str:
    """The public host key its sshd serves (the lab's own config, or Debian's)."""
    keys = "/run/opsfix-lab/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub"
    return lab.exec(host, f"for k in {keys}; do [ -f $k ] && exec cat $k; done").stdout


def host_key_fingerprint(lab: Lab, host: str) -> str:
    out = lab.exec(host, "ssh-keygen -lf -", input=host_public_key(lab, host)).stdout
    return out.split()[1]


# -- breaking and resetting hosts ------------------------------------------------------

_STOP_NGINX = (
    "nginx -s quit; n=0; while pgrep -x nginx >/dev/null && [ $n -lt 100 ]; "
    "do sleep 0.05; n=$((n + 1)); done; ! pgrep -x nginx >/dev/null"
)

BREAKS: dict[str, str] = {
    # nginx stopped cleanly; must come before any config breakage (nginx -s needs a valid one)
    "nginx_stopped": _STOP_NGINX,
    # the master killed: its workers keep port 80 and no pid file names them
    # (systemd would stop the workers of its unit's master: there, nginx was started by hand)
    # (a master started just now forks its workers a moment later: wait for them first)
    "master_killed": (
        f"if {_HAS_SYSTEMD}; then systemctl stop nginx && nginx; fi; n=0; "
        'until pgrep -P "$(cat /run/nginx.pid)" -x nginx >/dev/null || [ $n -ge 100 ]; '
        "do sleep 0.05; n=$((n + 1)); done; "
        'kill -KILL "$(cat /run/nginx.pid)"; sleep 0.2; pgrep -x nginx >/dev/null'
    ),
    "nginx_conf_syntax": (
        "sed -i 's/worker_connections 768;/worker_connections 768/' /etc/nginx/nginx.conf"
        " && grep -q 'worker_connections 768$' /etc/nginx/nginx.conf"
    ),
    "conf_d_syntax": "printf 'server {\\n\\tlisten 8081\\n}\\n' > /etc/nginx/conf.d/typo.conf",
    "site_syntax": (
        "sed -i 's/^\\(\\s*\\)root /\\1rooot /' /etc/nginx/sites-available/default"
        " && grep -q rooot /etc/nginx/sites-available/default"
    ),
    "broken_include": (
        "echo 'include /etc/nginx/snippets/missing.conf;' > /etc/nginx/conf.d/extra.conf"
    ),
    "dangling_symlink": (
        "ln -s /etc/nginx/sites-available/staging /etc/nginx/sites-enabled/staging"
    ),
    # the enabled site's file removed: sites-enabled/default now dangles
    "site_removed": "rm /etc/nginx/sites-available/default",
    "index_deleted": f"rm {WEB_ROOT}/index.html",
    "index_emptied": f": > {WEB_ROOT}/index.html",
    # for refusals: nginx -t fails for a reason outside /etc/nginx
    "log_dir_missing": "mv /var/log/nginx /var/log/nginx.moved",
}
CONFIG_BREAKS = {
    "nginx_conf_syntax",
    "conf_d_syntax",
    "site_syntax",
    "broken_include",
    "dangling_symlink",
    "site_removed",
    "log_dir_missing",
}
_ORDER = ["nginx_stopped", "master_killed"]  # process breakage first, while config is valid


def break_host(lab: Lab, host: str, breaks: Iterable[str]) -> None:
    """Apply named breakages; config breakage must make `nginx -t` fail, or the test is void."""
    names = sorted(breaks, key=lambda b: (b not in _ORDER, b))
    for name in names:
        lab.exec(host, BREAKS[name])
    if CONFIG_BREAKS & set(names):
        ok, _ = config_ok(lab, host)
        assert not ok, f"{host}: {names} left a config that passes nginx -t"


def forget_opsfix(lab: Lab, host: str) -> None:
    """No known-good snapshot, no transaction journal, no backups: as before opsfix ever ran."""
    lab.exec(host, "rm -rf /var/lib/opsfix /var/backups/opsfix")


def reset_hosts(lab: Lab, hosts: Iterable[str] | None = None) -> None:
    """Pristine config, web root, logs and nginx, and nothing of opsfix's left."""

    def one(host: str) -> None:
        lab.exec(host, "if [ -d /var/log/nginx.moved ]; then rm -rf /var/log/nginx.moved; fi")
        lab.reset(host)
        forget_opsfix(lab, host)

    with ThreadPoolExecutor(max_workers=len(lab.hosts)) as pool:
        list(pool.map(one, list(hosts or lab.hosts)))


def kill_processes(lab: Lab, host: str, command_line: str) -> None:
    """Kill (by PID) the processes on `host` whose whole command line is `command_line`."""
    pids = lab.exec(host, f"pgrep -x -f {shlex.quote(command_line)}; true").stdout.split()
    if pids:
        lab.exec(host, f"kill {' '.join(pids)}", check=False)


def inventory_copy(
    lab: Lab, path: Path, *, hosts: dict[str, str] | None = None, **group_vars: Any
) -> Path:
    """The lab's inventory with more hosts (name -> address) and group vars, at `path`."""
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    web = inventory["all"]["children"]["web"]
    web["hosts"].update({name: {"ansible_host": a} for name, a in (hosts or {}).items()})
    web["vars"].update(group_vars)
    path.write_text(yaml.safe_dump(inventory))
    return path


def unused_address(lab: Lab) -> str:
    """An address in the lab's subnet that no host has: nothing answers there."""
    prefix = next(iter(lab.hosts.values())).rpartition(".")[0]
    address = f"{prefix}.99"
    assert address not in lab.hosts.values()
    return address


def log_marks(lab: Lab) -> dict[str, int]:
    """Where each host's sshd log ends now; see `log_since`. Taken once the logs stand
    still for 0.2 s: a lab just built still logs its own readiness probes (a TCP connect
    that closes: "kex_exchange_identification: Connection closed by remote host")."""
    marks = {host: len(sshd_log(lab, host)) for host in lab.hosts}
    for _ in range(10):
        time.sleep(0.2)
        now = {host: len(sshd_log(lab, host)) for host in lab.hosts}
        if now == marks:
            break
        marks = now
    return marks


def log_since(lab: Lab, host: str, marks: dict[str, int]) -> str:
    """What the host's sshd logged since `marks` was taken: one line per connection."""
    return sshd_log(lab, host)[marks[host] :]
