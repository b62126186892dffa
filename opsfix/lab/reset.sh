# Bring a practice host's logs and nginx back to pristine; fed to `sh -s` inside the host.
# The controller has already restored /etc/nginx and the web root. Whether systemd runs
# is read from the host itself: there, nginx is its unit, enabled and started by systemctl.
set -eu

systemd=
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemd=1; fi

if [ -n "$systemd" ]; then
    # journald keeps its files open: empty the journal through journald, not rm.
    find /var/log -mindepth 1 -maxdepth 1 ! -name journal -exec rm -rf {} +
    journalctl --rotate >/dev/null 2>&1 || true
    journalctl --vacuum-time=1s >/dev/null 2>&1 || true
    if [ "$(systemctl is-enabled nginx 2>/dev/null || true)" != enabled ]; then
        systemctl unmask --quiet nginx
        systemctl enable --quiet nginx
    fi
    # pristine: no unit left failed by what was done to the host before (a killed daemon)
    systemctl reset-failed 2>/dev/null || true
else
    find /var/log -mindepth 1 -delete
fi
install -d -m 0755 -o root -g adm /var/log/nginx

# Reload with `$@`, then wait for the old workers to leave, so that whatever answers next
# serves the pristine config.
reload_and_wait() {
    old=$(pgrep -P "$pid" -x nginx || true)
    "$@"
    for _ in $(seq 250); do
        alive=
        for worker in $old; do
            if kill -0 "$worker" 2>/dev/null; then alive=1; fi
        done
        if [ -z "$alive" ]; then exit 0; fi
        sleep 0.02
    done
    echo "nginx did not reload within 5 s; its error log says:" >&2
    cat /var/log/nginx/error.log >&2 || true
    exit 1
}

pid=$(cat /run/nginx.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
    if [ -z "$systemd" ]; then reload_and_wait nginx -s reload; fi
    if systemctl is-active --quiet nginx; then reload_and_wait systemctl reload nginx; fi
fi

# Stopped, running outside its unit, or workers left without their master: those would
# keep port 80.
if [ -n "$systemd" ]; then systemctl stop nginx 2>/dev/null || true; fi
pkill -KILL -x nginx || true
if [ -n "$systemd" ]; then systemctl start nginx; else nginx; fi
