#!/bin/sh
# Provision a practice web host: nginx serving the opsfix practice app as a SPA, and an
# `opsfix` user with passwordless sudo. Safe to run more than once.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx curl iproute2 procps sudo python3-jinja2

id opsfix >/dev/null 2>&1 || useradd --create-home --shell /bin/bash opsfix
echo 'opsfix ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/opsfix
chmod 0440 /etc/sudoers.d/opsfix
install -d -m 0700 -o opsfix -g opsfix /home/opsfix/.ssh
if [ -f /home/vagrant/.ssh/authorized_keys ]; then
  install -m 0600 -o opsfix -g opsfix /home/vagrant/.ssh/authorized_keys /home/opsfix/.ssh/
fi

src=/vagrant/templates
install -d /var/www/html
cp "$src"/webapp/* /var/www/html/
render() {  # the same templates opsfix restores from, rendered with jinja2
  python3 -c 'import jinja2, sys
env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]),
                         undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
sys.stdout.write(env.get_template(sys.argv[2]).render(web_root="/var/www/html"))' "$src" "$1"
}
render nginx/nginx.conf.j2 > /etc/nginx/nginx.conf
render nginx/site.conf.j2 > /etc/nginx/sites-available/default
ln -sfn /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
nginx -t
systemctl enable --now nginx
systemctl reload nginx
