#!/usr/bin/env bash
# Install what opsfix and its practice lab need on Debian (run as root): the system
# packages (sshd, nginx, iproute2 …) and a virtual environment in .venv with opsfix in it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (the practice lab builds network namespaces)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  openssh-server openssh-client nginx curl iproute2 procps psmisc util-linux sudo \
  python3 python3-venv ca-certificates logrotate >/dev/null
# become_method doas: tests on lab hosts (hosts see the machine's /usr)
apt-get install -y -qq --no-install-recommends opendoas >/dev/null
# Tests of the practice VMs: `vagrant validate -p`, `ruby -c`, and the provisioning script
# run on a lab host (it renders templates with the system's python3-jinja2).
apt-get install -y -qq --no-install-recommends vagrant ruby python3-jinja2 >/dev/null
# The end-to-end test of `opsfix serve` starts a real Prometheus, Alertmanager and
# blackbox exporter on loopback (each in the foreground; their own services stay off).
apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager prometheus-blackbox-exporter >/dev/null
# The cluster tests (`opsfix apply --cluster`, `opsfix worker`) start their own redis-server
# on a loopback port of their own, in the foreground.
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# systemd lab hosts (`opsfix lab up --systemd`): nspawn containers booting a Debian tree
# that mmdebstrap builds from the same archive apt uses.
apt-get install -y -qq --no-install-recommends systemd-container mmdebstrap >/dev/null
# The lab starts its own sshd and nginx inside namespaces; the machine's own stay off.
for svc in nginx ssh prometheus prometheus-alertmanager prometheus-blackbox-exporter \
  prometheus-node-exporter redis-server; do
  if [ -d /run/systemd/system ]; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
done

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e '.[dev,serve,cluster]'; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup.sh: installing opsfix into .venv failed (output above)" >&2
  exit 1
fi
rm -f "$log"
echo "opsfix installed: $(.venv/bin/opsfix --version)"
# The tree systemd lab hosts boot, built once into /var/cache/opsfix (or $OPSFIX_CACHE_DIR).
start=$(date +%s)
tree=$(.venv/bin/python -c 'from opsfix.lab.rootfs import ensure_rootfs; print(ensure_rootfs())')
echo "systemd lab tree: $tree ($(($(date +%s) - start)) s)"

# The practice VMs under libvirt (tests/integration/test_vagrant_vm.py, `vagrant up
# --provider=libvirt`): libvirt with qemu, and the box built from Debian packages when
# Vagrant has none, or one built by an older vagrant/build-box.sh (the box carries a digest
# of the script). Where systemd does not run, libvirt's daemons are started by hand.
apt-get install -y -qq --no-install-recommends vagrant-libvirt libvirt-daemon-system \
  libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base \
  iptables e2fsprogs >/dev/null
if [ ! -d /run/systemd/system ]; then
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
fi
start=$(date +%s)
bash vagrant/build-box.sh >/dev/null
echo "vagrant box debian/bookworm64 (libvirt): ready ($(($(date +%s) - start)) s)"
