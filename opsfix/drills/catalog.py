"""The drills: each a small declarative definition of one practice fault.

A drill names the paths it changes (`saves`, backed up before anything breaks), the shell
that breaks the host (`breaks`), a shell condition that holds while the fault is there
(`broken_when`), what a reset must do beyond putting the saved paths back (`undo`), and the
playbook that detects and repairs it, with the checks that must fail (`detects`).

Shell snippets run as root under `set -eu` with `$WEB_ROOT` (the host's `web_root`),
`$DRILL_DIR` (the drill's record folder on the host, for its own files) and the helpers
of `opsfix.drills.script` (`nginx_stop`, `nginx_is_running`, ...). Paths in `saves` may
use `{web_root}`.
"""

from __future__ import annotations

from dataclasses import dataclass

NGINX_RECOVERY = "playbooks/practice_app.yml"  # the practice app, declared
DISK_PRESSURE = "playbooks/disk_pressure.yml"
PORT_CONFLICT = "playbooks/port_conflict.yml"
WEB_ROOT_ACCESS = "playbooks/web_root_access.yml"


@dataclass(frozen=True)
class Drill:
    name: str
    title: str  # the fault, in one line
    observe: str  # what a learner sees while it is broken
    playbook: str  # detects and repairs it; relative to the repository (and the package)
    detects: tuple[str, ...]  # checks of that playbook that fail while it is broken
    breaks: str
    broken_when: str
    saves: tuple[str, ...] = ()
    undo: str = ""


DRILLS: tuple[Drill, ...] = (
    Drill(
        name="bad_config",
        title="a missing ';' in /etc/nginx/nginx.conf (nginx keeps serving the old config)",
        observe="the site still answers; `nginx -t` fails with file and line; the next reload "
        "or restart would take the site down",
        playbook=NGINX_RECOVERY,
        detects=("nginx_config",),
        saves=("/etc/nginx/nginx.conf",),
        breaks=r"""f=/etc/nginx/nginx.conf
if grep -q 'worker_connections [0-9]*;' "$f"; then
  sed -i 's/\(worker_connections [0-9]*\);/\1/' "$f"
else
  printf 'keepalive_timeout 65\n' >> "$f"
fi""",
        broken_when="! nginx -t >/dev/null 2>&1",
    ),
    Drill(
        name="broken_include",
        title="conf.d/security-headers.conf includes a snippet that does not exist",
        observe="`nginx -t` fails: open() of /etc/nginx/snippets/security-headers.conf failed; "
        "the running nginx keeps its old config",
        playbook=NGINX_RECOVERY,
        detects=("nginx_config",),
        saves=("/etc/nginx/conf.d/security-headers.conf",),
        breaks="""printf '# security headers for every site\\ninclude %s;\\n' \\
  /etc/nginx/snippets/security-headers.conf > /etc/nginx/conf.d/security-headers.conf""",
        broken_when="! nginx -t >/dev/null 2>&1",
    ),
    Drill(
        name="missing_content",
        title="index.html deleted from the web root (a release that did not finish)",
        observe="nginx runs and its config is valid, but / and every deep link answer 403 or "
        "404; the error log says the index is missing",
        playbook=NGINX_RECOVERY,
        detects=("file_present", "http"),
        saves=("{web_root}/index.html",),
        breaks='rm -f "$WEB_ROOT/index.html"',
        broken_when='[ ! -e "$WEB_ROOT/index.html" ]',
    ),
    Drill(
        name="nginx_stopped",
        title="nginx stopped cleanly (a restart that never came back)",
        observe="nothing listens on port 80; curl is refused; the config is valid",
        playbook=NGINX_RECOVERY,
        detects=("service_running", "port_listening", "http"),
        breaks="nginx_stop",
        broken_when="! nginx_is_running",
    ),
    Drill(
        name="var_log_full",
        title="/var/log filled to 95% with old rotated logs nobody cleaned up",
        observe="`df -h /var/log` shows it nearly full; nginx still serves, until it cannot "
        "write its logs",
        playbook=DISK_PRESSURE,
        detects=("disk_usage",),
        saves=tuple(f"/var/log/nginx/access.log.{i}.gz" for i in range(2, 6)),
        breaks=r"""# four rotated logs of equal size, a month old, bringing /var/log to 95%
set -- $(df -Pk /var/log | awk 'NR == 2 { print $3, $4 }')
need=$(( ($1 + $2) * 95 / 100 - $1 ))
[ "$need" -gt 64 ] || { echo "/var/log is already over 95% full" >&2; exit 1; }
each=$(( need / 4 ))
for i in 2 3 4 5; do
  f=/var/log/nginx/access.log.$i.gz
  fallocate -l "${each}KiB" "$f" 2>/dev/null || head -c "$((each * 1024))" /dev/zero > "$f"
  chown www-data:adm "$f" 2>/dev/null || true
  chmod 0640 "$f"
  touch -d '30 days ago' "$f"
done""",
        broken_when="[ \"$(df -Pk /var/log | awk 'NR == 2 { print $5 + 0 }')\" -ge 95 ]",
    ),
    Drill(
        name="port_conflict",
        title="nginx stopped and another server took port 80",
        observe="port 80 answers, but with the wrong page; `ss -ltnp` names python3 as the "
        "owner of port 80; starting nginx fails with 'Address already in use'",
        playbook=PORT_CONFLICT,
        detects=("port_listening", "http"),
        breaks="""command -v python3 >/dev/null || { echo "needs python3 on the host" >&2; exit 1; }
nginx_stop
mkdir -p "$DRILL_DIR/www"
printf '<h1>Down for maintenance</h1>\\n' > "$DRILL_DIR/www/index.html"
setsid python3 -m http.server 80 --bind 0.0.0.0 --directory "$DRILL_DIR/www" \\
  </dev/null >"$DRILL_DIR/impostor.log" 2>&1 &
echo $! > "$DRILL_DIR/impostor.pid"
n=0
until ss -ltnpH 'sport = :80' | grep -q "pid=$(cat "$DRILL_DIR/impostor.pid")," \\
  || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done""",
        broken_when="ss -ltnpH 'sport = :80' | grep -v '\"nginx\"' | grep -q .",
        undo="""pid=$(cat "$DRILL_DIR/impostor.pid" 2>/dev/null || true)
if [ -n "$pid" ] && grep -qsF "$DRILL_DIR/www" "/proc/$pid/cmdline"; then
  kill "$pid"
  n=0; while [ -e "/proc/$pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
fi""",
    ),
    Drill(
        name="web_root_permissions",
        title="web root deployed with umask 077: folder 0700, files 0600, owned by root",
        observe="nginx runs, files are all there, but every page answers 403 Forbidden; the "
        "error log says (13: Permission denied)",
        playbook=WEB_ROOT_ACCESS,
        detects=("web_root_access", "http"),
        saves=("{web_root}",),
        breaks="""chmod 0700 "$WEB_ROOT"
find "$WEB_ROOT" -mindepth 1 -type d -exec chmod 0700 {} +
find "$WEB_ROOT" -type f -exec chmod 0600 {} +""",
        broken_when="! setpriv --reuid=www-data --regid=www-data --init-groups "
        'test -r "$WEB_ROOT/index.html"',
    ),
)

BY_NAME = {d.name: d for d in DRILLS}
