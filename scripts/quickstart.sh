#!/usr/bin/env bash
# The quick start: install everything, build a 3-host practice lab, break one host, and let
# `opsfix apply playbooks/nginx_recovery.yml` find and repair it.
# With --systemd the hosts run systemd as PID 1 (systemd-nspawn containers), like servers.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=namespace
case "${1:-}" in
  --systemd) kind=systemd ;;
  "") ;;
  *) echo "usage: quickstart.sh [--systemd]" >&2; exit 5 ;;
esac
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$kind" = systemd ]; then
  step "Building a practice lab of 3 systemd hosts (nspawn containers: systemd, sshd, nginx)"
else
  step "Building a practice lab of 3 hosts (sshd + nginx in network namespaces)"
fi
opsfix lab down >/dev/null 2>&1 || true
opsfix lab up --hosts 3 --kind "$kind"
lab=${OPSFIX_LAB_DIR:-/var/lib/opsfix-lab}

step "First run: every host healthy; opsfix remembers each host's known-good config"
opsfix apply playbooks/nginx_recovery.yml

step "Breaking web2: a syntax error in a new conf.d file, an empty index.html, nginx stopped"
addr=$(opsfix inventory --list | python3 -c 'import json,sys; print(json.load(sys.stdin)["_meta"]["hostvars"]["web2"]["ansible_host"])')
ssh -q -i "$lab/id_ed25519" -o UserKnownHostsFile="$lab/known_hosts" -o StrictHostKeyChecking=yes \
  "root@$addr" 'if [ -d /run/systemd/system ]; then systemctl stop nginx; else nginx -s stop; fi; echo "server { listen 80" > /etc/nginx/conf.d/oops.conf; : > /var/www/html/index.html'

step "opsfix check: what is broken (changes nothing)"
opsfix check playbooks/nginx_recovery.yml || echo "(exit $?: some host is failing)"

step "opsfix apply: repair, re-check, verify with testinfra"
opsfix apply playbooks/nginx_recovery.yml

step "Done: web2 recovered. Try 'opsfix apply --check ...', then 'opsfix lab down' to clean up."
