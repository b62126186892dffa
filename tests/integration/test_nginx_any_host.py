"""`playbooks/nginx_recovery.yml` on nginx hosts that are not the practice app's.

Each lab host gets its own sites first, as a user's server has them: a shop on port 8081
with its own index under /var/www/shop, and a second site on 8082. web1 and web2 are laid
out the Debian way (sites-available/ linked from sites-enabled/), web3 and web4 the RHEL
way (no sites-enabled/, everything in conf.d/). web1 and web3 are the hosts under test,
web2 and web4 their peers. The inventory holds none of the practice app's variables.

The stages run in order, both layouts at once, and each reads the hosts' real state:
(a) the first run on never-seen healthy hosts changes no file; (b) a typo in the site's
own file while nginx runs comes back from the host's snapshot by a reload; (c) a never-seen
host with a broken site and nginx stopped gets the file from its peer; (d) with no peer
holding it, the broken file is moved aside (kept), nginx starts, and the run fails so a
person restores it; (e) nginx running and no known-good copy anywhere: nothing changes.

Hosts are driven only with commands that work with and without systemd.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsfix.lab import Lab

from .helpers import (
    ETC_NGINX,
    GENERIC,
    Nginx,
    Run,
    forget_opsfix,
    nginx_processes,
    relative,
    reset_hosts,
    run_playbook,
    tree,
)

pytestmark = pytest.mark.integration

SHOP_ROOT, HELLO_ROOT = "/var/www/shop", "/var/www/hello"
BACKUPS = "/var/backups/opsfix"
WATCHED = (ETC_NGINX, SHOP_ROOT, HELLO_ROOT, "/var/www/html")
SHOP = """server {
\tlisten 8081;
\troot /var/www/shop;
\tindex index.html;
\tlocation / {
\t\ttry_files $uri $uri/ =404;
\t}
}
"""
HELLO = "server {\n\tlisten 8082;\n\troot /var/www/hello;\n}\n"

# nginx as the host runs it: systemd's unit where systemd runs, else nginx's own control
NGINX_CTL = r"""ctl() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then systemctl "$1" nginx
  else case $1 in
    reload) n=0  # a master that has just started may not have written its pid file yet
      while [ ! -s /run/nginx.pid ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
      nginx -s reload ;;
    start) nginx ;;
    stop) nginx -s quit; n=0  # the workers finish their requests first: give them time
      while pgrep -x nginx >/dev/null && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
      ! pgrep -x nginx >/dev/null ;;
  esac; fi
}
"""
SITES = r"""mkdir -p /var/www/shop /var/www/hello
printf '<h1>Our shop</h1>\n' > /var/www/shop/index.html
printf 'hello\n' > /var/www/hello/index.html
"""
DEBIAN = r"""rm -f /etc/nginx/sites-enabled/*
printf '%s' "$SHOP" > /etc/nginx/sites-available/shop
printf '%s' "$HELLO" > /etc/nginx/sites-available/hello
ln -s /etc/nginx/sites-available/shop /etc/nginx/sites-enabled/shop
ln -s /etc/nginx/sites-available/hello /etc/nginx/sites-enabled/hello
"""
RHEL = r"""rm -rf /etc/nginx/sites-enabled /etc/nginx/sites-available
sed -i '/include \/etc\/nginx\/sites-enabled/d' /etc/nginx/nginx.conf
printf '%s' "$SHOP" > /etc/nginx/conf.d/shop.conf
printf '%s' "$HELLO" > /etc/nginx/conf.d/hello.conf
"""
LAYOUTS = {"web1": DEBIAN, "web2": DEBIAN, "web3": RHEL, "web4": RHEL}
PEER = {"web1": "web2", "web3": "web4"}
# the shop's own file, and the file nginx -t names for it
SITE_FILE = {"web1": "/etc/nginx/sites-available/shop", "web3": "/etc/nginx/conf.d/shop.conf"}
NAMED = {"web1": "/etc/nginx/sites-enabled/shop", "web3": "/etc/nginx/conf.d/shop.conf"}
TYPO = "sed -i 's/^\\(\\s*\\)root /\\1rooot /' {0} && grep -q rooot {0}"
TYPO_LINE = 3  # `root` is the shop's third line


def ctl(lab: Lab, host: str, action: str) -> None:
    lab.exec(host, f"{NGINX_CTL}ctl {action}")


def shop_answers(lab: Lab, host: str, port: int = 8081) -> str:
    url = f"http://127.0.0.1:{port}/"
    return lab.exec(host, f"curl -sS -m 5 --noproxy '*' {url}", check=False).stdout


def own_sites(lab: Lab, host: str) -> None:
    """The host's own sites, in its layout; nginx serves them (and not the practice app)."""
    # nginx may be stopped here (a stage before left it so): start it rather than reload,
    # so that stage's own test reports what went wrong, not this set-up
    running = "if pgrep -x nginx >/dev/null; then ctl reload; else ctl start; fi"
    script = f"set -e\nSHOP='{SHOP}'\nHELLO='{HELLO}'\n{SITES}{LAYOUTS[host]}{NGINX_CTL}{running}"
    old_workers = nginx_processes(lab, host).workers
    lab.exec(host, "sh -s", input=script)
    deadline = time.monotonic() + 5  # a reload returns at once; the new workers follow
    while "Our shop" not in shop_answers(lab, host):
        assert time.monotonic() < deadline, f"{host}: the shop does not answer"
        time.sleep(0.05)
    deadline = time.monotonic() + 10  # and the old workers go once their requests are done
    while nginx_processes(lab, host).every & old_workers:
        assert time.monotonic() < deadline, f"{host}: the old workers did not finish"
        time.sleep(0.05)
    assert lab.exec(host, "nginx -t", check=False).returncode == 0


def hashes(lab: Lab, host: str) -> dict[str, str]:
    """Type, mode, owner, link target and sha256 of every path under the watched roots."""
    return tree(lab, host, *WATCHED)


def changed(stage: Stage, host: str) -> set[str]:
    before, after = stage.before[host], stage.after[host]
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def backed_up(lab: Lab, host: str, backups: str) -> dict[str, str]:
    """Every transaction's backups, keyed by "<transaction>:<host path it is a copy of>"."""
    entries = relative(tree(lab, host, backups), backups)
    return {p.replace("/", ":/", 1): v for p, v in entries.items() if "/" in p}


def inventory(lab: Lab, path: Path) -> Path:
    """The lab's hosts in one group, with none of the practice app's variables."""
    data = yaml.safe_load(lab.inventory_path.read_text())
    web = data["all"]["children"]["web"]
    for name in ("practice", "expected_content", "spa_deep_link", "release_dir", "web_root"):
        web["vars"].pop(name, None)
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Stage:
    """One run and the hosts' state around it."""

    run: Run
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    after: dict[str, dict[str, str]] = field(default_factory=dict)
    nginx_before: dict[str, Nginx] = field(default_factory=dict)
    nginx_after: dict[str, Nginx] = field(default_factory=dict)
    shop: dict[str, str] = field(default_factory=dict)  # what 8081 and 8082 answer after
    hello: dict[str, str] = field(default_factory=dict)


@dataclass
class Story:
    stages: dict[str, Stage] = field(default_factory=dict)
    backups: dict[str, dict[str, str]] = field(default_factory=dict)  # after (d), by host


SUBJECTS = ["web1", "web3"]


def staged(lab: Lab, hosts: list[str], go: Any) -> Stage:
    before = {h: hashes(lab, h) for h in hosts}
    nginx_before = {h: nginx_processes(lab, h) for h in hosts}
    run = go()
    stage = Stage(run, before, {h: hashes(lab, h) for h in hosts}, nginx_before)
    stage.nginx_after = {h: nginx_processes(lab, h) for h in hosts}
    stage.shop = {h: shop_answers(lab, h) for h in hosts}
    stage.hello = {h: shop_answers(lab, h, 8082) for h in hosts}
    return stage


@pytest.fixture(scope="module")
def story(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    hosts = list(LAYOUTS)
    inv = inventory(lab, tmp_path_factory.mktemp("any-host") / "hosts.yml")
    story = Story()

    def apply(targets: list[str]) -> Any:
        return lambda: run_playbook(lab, "apply", targets, playbook=GENERIC, inventory=inv)

    try:
        reset_hosts(lab, hosts)
        for host in hosts:
            own_sites(lab, host)
        # (a) never seen, healthy
        story.stages["a"] = staged(lab, SUBJECTS, apply(SUBJECTS))
        # (b) a typo in the site's own file while nginx runs; this host has its snapshot
        for host in SUBJECTS:
            lab.exec(host, TYPO.format(SITE_FILE[host]))
        story.stages["b"] = staged(lab, SUBJECTS, apply(SUBJECTS))
        # (c) never seen, broken site, nginx stopped; the peers are healthy and were seen
        peers = list(PEER.values())
        recorded = apply(peers)()
        assert recorded.returncode == 0, str(recorded)
        for host in SUBJECTS:
            forget_opsfix(lab, host)
            ctl(lab, host, "stop")
            lab.exec(host, TYPO.format(SITE_FILE[host]))
        story.stages["c"] = staged(lab, SUBJECTS, apply(SUBJECTS))
        # (d) the same, but no peer holds a known-good copy
        for host in hosts:
            forget_opsfix(lab, host)
        for host in SUBJECTS:
            ctl(lab, host, "stop")
            lab.exec(host, TYPO.format(SITE_FILE[host]))
        story.stages["d"] = staged(lab, SUBJECTS, apply(SUBJECTS))
        story.backups = {host: backed_up(lab, host, BACKUPS) for host in SUBJECTS}
        # (e) nginx running with a broken file, and no known-good copy anywhere
        for host in SUBJECTS:
            lab.exec(host, "rm -rf /var/backups/opsfix")
            own_sites(lab, host)
            lab.exec(host, TYPO.format(SITE_FILE[host]))
        for host in hosts:
            forget_opsfix(lab, host)
        story.stages["e"] = staged(lab, SUBJECTS, apply(SUBJECTS))
        yield story
    finally:
        reset_hosts(lab, hosts)


def steps(run: Run, host: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run.host(host)["steps"]}


def outcomes(run: Run, host: str) -> list[dict[str, Any]]:
    return steps(run, host)["nginx config is valid"]["remediations"]


@pytest.mark.parametrize("host", SUBJECTS)
def test_a_first_run_on_a_healthy_host_changes_nothing(story: Story, host: str) -> None:
    stage = story.stages["a"]
    assert stage.run.returncode == 0, str(stage.run)
    report = stage.run.host(host)
    assert report["status"] == "healthy", report
    assert all(s["remediations"] == [] for s in report["steps"])
    assert {s["name"] for s in report["steps"]} == {
        "nginx config is valid", "nginx is running", "nginx's sites answer"
    }  # fmt: skip
    assert stage.after[host] == stage.before[host], "the first run changed files"
    assert stage.nginx_after[host] == stage.nginx_before[host], "nginx was reloaded"
    sites = steps(stage.run, host)["nginx's sites answer"]["after"]["evidence"]
    assert "8081" in sites["listens"] and SHOP_ROOT in sites["roots"]
    assert report["verify"] and {v["outcome"] for v in report["verify"]} <= {"passed", "skipped"}


@pytest.mark.parametrize("host", SUBJECTS)
def test_a_typo_while_running_comes_back_from_the_snapshot_by_a_reload(
    lab: Lab, story: Story, host: str
) -> None:
    stage = story.stages["b"]
    assert stage.run.returncode == 0, str(stage.run)
    assert stage.run.host(host)["status"] == "repaired"
    applied = [r for r in outcomes(stage.run, host) if r["status"] == "applied"]
    assert [r["remediation"] for r in applied] == ["nginx_restore_config"]
    assert "from the known-good snapshot" in applied[0]["reason"]
    assert "1 file(s) to write" in applied[0]["reason"]
    before, after = stage.nginx_before[host], stage.nginx_after[host]
    assert after.master == before.master, "nginx was restarted, not reloaded"
    assert after.workers - before.workers, "nginx was not reloaded"
    assert changed(stage, host) == {SITE_FILE[host]}
    assert "Our shop" in stage.shop[host]


@pytest.mark.parametrize("host", SUBJECTS)
def test_a_never_seen_host_gets_the_file_from_a_healthy_peer(
    lab: Lab, story: Story, host: str
) -> None:
    stage = story.stages["c"]
    assert stage.run.returncode == 0, str(stage.run)
    assert stage.run.host(host)["status"] == "repaired"
    tried = outcomes(stage.run, host)
    assert [r["status"] for r in tried] == ["refused", "applied"], tried
    assert tried[0]["reason"].startswith("no known-good snapshot of /etc/nginx")
    assert f"peer {PEER[host]}'s known-good snapshot" in tried[1]["reason"]
    assert changed(stage, host) == {SITE_FILE[host]}
    assert stage.nginx_before[host].master is None and stage.nginx_after[host].master
    assert "Our shop" in stage.shop[host]


@pytest.mark.parametrize("host", SUBJECTS)
def test_without_a_peer_the_broken_site_is_moved_aside_and_nginx_starts(
    lab: Lab, story: Story, host: str
) -> None:
    stage = story.stages["d"]
    assert stage.run.returncode == 2, str(stage.run)
    report = stage.run.host(host)
    assert report["status"] == "failed"
    tried = outcomes(stage.run, host)
    assert [r["status"] for r in tried] == ["refused", "refused", "applied"], tried
    assert "no healthy peer holds" in tried[1]["reason"]
    moved = tried[2]
    assert moved["remediation"] == "nginx_disable_include"
    assert moved["attention"] == report["reason"]
    assert report["reason"].startswith(f"{NAMED[host]} disabled")
    assert NAMED[host] in stage.before[host] and NAMED[host] not in stage.after[host]
    transaction = moved["backup_path"].rpartition("/")[2]
    kept = story.backups[host].get(f"{transaction}:{NAMED[host]}")
    assert kept == stage.before[host][NAMED[host]], "the moved file was not kept"
    assert changed(stage, host) == {NAMED[host]}
    assert stage.nginx_before[host].master is None and stage.nginx_after[host].master
    assert "hello" in stage.hello[host], "the other site did not come back"
    assert "Our shop" not in stage.shop[host]


@pytest.mark.parametrize("host", SUBJECTS)
def test_a_running_nginx_with_no_known_good_copy_is_left_alone(
    lab: Lab, story: Story, host: str
) -> None:
    stage = story.stages["e"]
    assert stage.run.returncode == 2, str(stage.run)
    report = stage.run.host(host)
    assert report["status"] == "failed"
    step = steps(stage.run, host)["nginx config is valid"]
    evidence = step["before"]["evidence"]
    assert (evidence["file"], evidence["line"]) == (NAMED[host], TYPO_LINE)
    assert [r["status"] for r in step["remediations"]] == ["refused"] * 3
    refusal = step["remediations"][2]["reason"]
    assert f"in {NAMED[host]}:{TYPO_LINE}" in refusal and "nginx is running" in refusal
    assert stage.after[host] == stage.before[host], "files changed"
    assert stage.nginx_after[host] == stage.nginx_before[host], "nginx was reloaded"
    assert tree(lab, host, BACKUPS) == {BACKUPS: "absent"}
