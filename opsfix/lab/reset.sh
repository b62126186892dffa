# Bring a practice host's logs and nginx back to pristine; fed to `sh -s` inside the host.
# The controller has already restored /etc/nginx and the web root.
set -eu

find /var/log -mindepth 1 -delete
install -d -m 0755 -o root -g adm /var/log/nginx

pid=$(cat /run/nginx.pid 2>/dev/null || true)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
    # Running: reload, then wait for the old workers to leave, so that whatever answers
    # next serves the pristine config.
    old=$(pgrep -P "$pid" -x nginx || true)
    nginx -s reload
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
fi

# Stopped, or workers left without their master: those would keep port 80.
pkill -KILL -x nginx || true
nginx
