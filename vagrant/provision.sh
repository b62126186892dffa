#!/bin/sh
# Provision a practice web host: nginx serving the opsfix practice app as a single-page app,
# and an `opsfix` user with passwordless sudo. Safe to run more than once.
#
#   sh provision.sh [SOURCE]     # SOURCE: a checkout of opsfix (default /vagrant)
#
# The site comes from the same templates opsfix restores from (templates/nginx/*.j2,
# templates/webapp/), rendered with Jinja2 as opsfix renders them. Packages are installed
# only when `dpkg -s` says they are missing, and nginx is controlled through systemd where
# it runs, else with nginx's own signals (containers, opsfix's practice lab).
set -eu
src=${1:-/vagrant}
web_root=/var/www/html
packages="nginx curl iproute2 procps sudo python3 python3-jinja2"

say() { printf 'provision: %s\n' "$*"; }

missing=
for p in $packages; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $missing
else
  say "packages already installed: $packages"
fi

# The opsfix user logs in with the same key as vagrant (Vagrant puts it in place). Its
# password is '*' (none, but not locked): sshd without PAM refuses key logins to locked ones.
if ! id opsfix >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --password '*' opsfix
  say "user opsfix created"
fi
printf 'opsfix ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/opsfix.tmp
chmod 0440 /etc/sudoers.d/opsfix.tmp
visudo -cqf /etc/sudoers.d/opsfix.tmp
mv /etc/sudoers.d/opsfix.tmp /etc/sudoers.d/opsfix
home=$(getent passwd opsfix | cut -d: -f6)
install -d -m 0700 -o opsfix -g opsfix "$home/.ssh"
if [ -f /home/vagrant/.ssh/authorized_keys ]; then
  install -m 0600 -o opsfix -g opsfix /home/vagrant/.ssh/authorized_keys "$home/.ssh/"
fi

# The site and the app, from the templates opsfix restores from.
[ -d "$src/templates/webapp" ] || { say "no $src/templates/webapp: pass a checkout" >&2; exit 1; }
ipv6=false
if [ -e /proc/net/if_inet6 ]; then ipv6=true; fi
render() {  # render TEMPLATE DEST: with the options opsfix's lab uses, written atomically
  python3 - "$src/templates" "$1" "$web_root" "$ipv6" > "$2.opsfix-new" <<'EOF'
import sys
import jinja2
folder, name, web_root, ipv6 = sys.argv[1:]
env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
sys.stdout.write(env.get_template(name).render(web_root=web_root, listen_ipv6=ipv6 == "true"))
EOF
  chmod 0644 "$2.opsfix-new"
  mv "$2.opsfix-new" "$2"
}
install -d -m 0755 "$web_root"
for f in "$src"/templates/webapp/*; do
  install -m 0644 "$f" "$web_root/"
done
install -d -m 0755 /etc/nginx/sites-available /etc/nginx/sites-enabled
render nginx/nginx.conf.j2 /etc/nginx/nginx.conf
render nginx/site.conf.j2 /etc/nginx/sites-available/default
ln -sfn /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
nginx -t

# Running: reload. Stopped: start (and enable at boot, where systemd runs).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl enable --quiet nginx
  if systemctl is-active --quiet nginx; then
    systemctl reload nginx
    say "nginx reloaded (systemd)"
  else
    systemctl start nginx
    say "nginx started (systemd)"
  fi
else
  pid=$(cat /run/nginx.pid 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
    nginx -s reload
    say "nginx reloaded (no systemd)"
  else
    nginx
    say "nginx started (no systemd)"
  fi
fi
