"""The practice lab on real namespaces: SSH, HTTP, isolation, exec, reset and down."""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import paramiko
import pytest
import yaml

import opsfix.lab.lab as lab_module
from opsfix.errors import LabError
from opsfix.lab import Lab, down, status, up
from opsfix.lab.plan import neighbour_limits
from opsfix.lab.system import raise_sysctls

from .conftest import LAB_NAME, LAB_SUBNET, side_lab

pytestmark = pytest.mark.integration

WEBAPP_INDEX = Path(__file__).parents[2] / "templates" / "webapp" / "index.html"


def http_get(address: str, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
        return response.status, response.headers.get_content_type(), response.read()


def ssh_client(lab: Lab, address: str) -> paramiko.SSHClient:
    """Connect as the inventory says; RejectPolicy makes an unknown host key fatal."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        address,
        username="root",
        key_filename=str(lab.private_key_path),
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    return client


def test_every_host_answers_ssh_with_the_lab_key_and_known_hosts(clean_lab: Lab) -> None:
    for name, address in clean_lab.hosts.items():
        client = ssh_client(clean_lab, address)
        try:
            _, stdout, _ = client.exec_command("hostname; id -un; cat /etc/hostname")
            assert stdout.read().decode().split() == [name, "root", name]
        finally:
            client.close()


def test_inventory_describes_the_lab(clean_lab: Lab) -> None:
    inventory = yaml.safe_load(clean_lab.inventory_path.read_text())
    web = inventory["all"]["children"]["web"]
    assert {h: v["ansible_host"] for h, v in web["hosts"].items()} == clean_lab.hosts
    assert web["vars"]["ansible_ssh_private_key_file"] == str(clean_lab.private_key_path)
    assert web["vars"]["opsfix_known_hosts_file"] == str(clean_lab.known_hosts_path)
    assert web["vars"]["expected_content"] == "opsfix practice app"
    assert clean_lab.private_key_path.stat().st_mode & 0o777 == 0o600


def test_hostname_is_the_host_name(clean_lab: Lab) -> None:
    for name in clean_lab.hosts:
        assert clean_lab.exec(name, "hostname").stdout.strip() == name


def test_a_host_listens_only_with_its_own_nginx_and_sshd(clean_lab: Lab) -> None:
    address = clean_lab.hosts["web2"]
    lines = clean_lab.exec("web2", "ss -ltnpH").stdout.splitlines()
    listeners = {(line.split()[3], line.split('"')[1]) for line in lines}
    ssh_address = address if clean_lab.kind == "namespace" else "0.0.0.0"  # Debian's sshd
    assert (f"{ssh_address}:22", "sshd") in listeners
    assert ("0.0.0.0:80", "nginx") in listeners
    assert {program for _, program in listeners} == {"nginx", "sshd"}
    init = "sshd" if clean_lab.kind == "namespace" else "systemd"
    assert clean_lab.exec("web2", "ps -o comm= -p 1").stdout.strip() == init


def test_a_deep_link_returns_the_single_page_app(clean_lab: Lab) -> None:
    for address in clean_lab.hosts.values():
        code, kind, body = http_get(address, "/app/deep/link")
        assert (code, kind) == (200, "text/html")
        assert body == WEBAPP_INDEX.read_bytes()
        assert b"opsfix practice app" in body
    assert http_get(clean_lab.hosts["web1"], "/style.css")[1] == "text/css"


def test_files_written_on_a_host_stay_on_that_host(clean_lab: Lab) -> None:
    marker = f"opsfix-lab-test-{uuid.uuid4().hex}"
    paths = [f"/etc/{marker}", f"/tmp/{marker}", f"/var/lib/{marker}", f"/root/{marker}"]
    quoted = shlex.join(paths)
    try:
        clean_lab.exec("web1", f"for p in {quoted}; do echo web1 > $p; done")
        assert clean_lab.exec("web1", f"cat {quoted}").stdout.split() == ["web1"] * 4
        others = clean_lab.exec("web2", f"ls {quoted}", check=False)
        assert others.returncode != 0 and others.stdout == ""
        assert not any(Path(p).exists() for p in paths), "a host's file reached the machine"
    finally:
        clean_lab.exec("web1", f"rm -f {quoted}")


def test_var_log_is_a_small_tmpfs_and_etc_nginx_one_filesystem(clean_lab: Lab) -> None:
    fstype, size = clean_lab.exec("web3", "findmnt -bno FSTYPE,SIZE /var/log").stdout.split()
    assert (fstype, int(size)) == ("tmpfs", 16 * 1024 * 1024)
    assert clean_lab.exec("web3", "test -d /var/log/nginx", check=False).returncode == 0
    # Staged files are renamed into place, so every folder of /etc/nginx is one mount.
    targets = clean_lab.exec(
        "web3", "findmnt -no TARGET -T /etc/nginx/conf.d; findmnt -no TARGET -T /etc/nginx"
    )
    assert targets.stdout.split() == ["/etc/nginx", "/etc/nginx"]
    link = clean_lab.exec("web3", "readlink /etc/nginx/sites-enabled/default").stdout.strip()
    assert link == "/etc/nginx/sites-available/default"


def test_exec_returns_output_and_exit_code(clean_lab: Lab) -> None:
    done = clean_lab.exec("web1", "cat; echo oops >&2; exit 3", check=False, input="hello")
    assert (done.returncode, done.stdout, done.stderr) == (3, "hello", "oops\n")
    with pytest.raises(LabError, match="exit 3"):
        clean_lab.exec("web1", "exit 3")
    with pytest.raises(LabError, match="unknown lab host 'web9'"):
        clean_lab.exec("web9", "true")


def test_reset_repairs_a_broken_stopped_host(clean_lab: Lab) -> None:
    clean_lab.exec(
        "web2",
        # `nginx -s stop` only signals: wait for the master to be gone before looking
        "pid=$(cat /run/nginx.pid); nginx -s stop;"
        " for i in $(seq 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done;"
        " echo 'server { listen 80' > /etc/nginx/conf.d/oops.conf;"
        ": > /etc/nginx/sites-available/default; rm /var/www/html/index.html;"
        "head -c 1000000 /dev/zero > /var/log/junk",
    )
    assert not next(s for s in clean_lab.status() if s.name == "web2").nginx_answering
    assert clean_lab.exec("web2", "nginx -t", check=False).returncode != 0

    clean_lab.reset("web2")

    assert all(s.is_healthy for s in clean_lab.status())
    clean_lab.exec("web2", "nginx -t")
    journal = ["journal"] if clean_lab.kind == "systemd" else []  # journald's, emptied
    assert clean_lab.exec("web2", "ls -A /etc/nginx/conf.d /var/log").stdout.split() == [
        "/etc/nginx/conf.d:",
        "/var/log:",
        *journal,
        "nginx",
    ]
    assert b"opsfix practice app" in http_get(clean_lab.hosts["web2"], "/app/settings")[2]


def test_reset_reloads_a_running_nginx(clean_lab: Lab) -> None:
    clean_lab.exec(
        "web4",
        "mkdir -p /srv/other && echo other site > /srv/other/index.html"
        " && sed -i 's#root /var/www/html;#root /srv/other;#' /etc/nginx/sites-available/default"
        " && nginx -s reload",
    )
    address = clean_lab.hosts["web4"]
    master = clean_lab.exec("web4", "cat /run/nginx.pid").stdout
    try:
        assert lab_module.system.wait_until(lambda: http_get(address, "/")[2] == b"other site\n", 5)
        clean_lab.reset("web4")
        assert http_get(address, "/")[2] == WEBAPP_INDEX.read_bytes()
        assert clean_lab.exec("web4", "cat /run/nginx.pid").stdout == master  # reloaded
    finally:
        clean_lab.exec("web4", "rm -rf /srv/other")


def test_status_and_load_work_from_another_process(clean_lab: Lab) -> None:
    clean_lab.exec("web3", "nginx -s stop")
    script = "import sys, opsfix.lab as L; print([tuple(vars(s).values()) for s in L.status(sys.argv[1])])"  # noqa: E501
    out = subprocess.run(
        [sys.executable, "-c", script, str(clean_lab.state_dir)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    expected = [(name, address, True, name != "web3") for name, address in clean_lab.hosts.items()]
    assert out.strip() == str(expected)
    assert Lab.load(clean_lab.state_dir).hosts == clean_lab.hosts


def test_up_refuses_a_second_lab_in_the_same_dir_or_with_the_same_name(
    lab: Lab, tmp_path: Path
) -> None:
    name, subnet = side_lab("x", 2)
    with pytest.raises(LabError, match="a lab already exists here"):
        up(1, state_dir=lab.state_dir, name=name, subnet=subnet)
    with pytest.raises(LabError, match=f"lab name '{LAB_NAME}' is in use"):
        up(1, state_dir=tmp_path / "other", name=LAB_NAME, subnet=subnet)
    with pytest.raises(LabError, match="overlaps"):
        up(1, state_dir=tmp_path / "other", name=name, subnet=LAB_SUBNET)
    assert not (tmp_path / "other" / "lab.json").exists()


def lab_leftovers(name: str, state_dir: Path, pids: list[int]) -> list[str]:
    """Everything of a lab that should be gone after `down`."""
    found = [n for n in os.listdir("/run/netns") if n.startswith(f"{name}-")]
    found += [n for n in os.listdir("/sys/class/net") if n.startswith(f"{name}-")]
    found += [f"pid {pid}" for pid in pids if Path(f"/proc/{pid}").exists()]
    found += [line for line in Path("/proc/self/mounts").read_text().splitlines()
              if str(state_dir) in line]  # fmt: skip
    return found + ([str(state_dir)] if state_dir.exists() else [])


def test_down_leaves_nothing_behind_and_can_repeat(clean_lab: Lab, tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    name, subnet = side_lab("d", 1)
    small = up(2, state_dir=state_dir, name=name, subnet=subnet)
    inits = list(small._record.pids.values())
    parents = [int(Path(f"/proc/{pid}/stat").read_text().split()[3]) for pid in inits]
    children = [child for pid in inits for child in lab_module.system.child_pids(pid)]
    pids = inits + parents + children
    assert len(children) >= 2  # nginx masters
    assert all(s.is_healthy for s in status(state_dir))

    down(state_dir)
    assert lab_leftovers(name, state_dir, pids) == []
    down(state_dir)  # again: nothing to do, no error
    assert status(state_dir) == []
    with pytest.raises(LabError, match="no lab here"):
        Lab.load(state_dir)
    assert all(s.is_healthy for s in clean_lab.status()), "the session lab was touched"


def test_a_failed_up_removes_what_it_made(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hosts_never_ready(*args: object) -> None:
        raise LabError("simulated: hosts not answering")

    monkeypatch.setattr(lab_module, "_wait_ready", hosts_never_ready)
    state_dir = tmp_path / "lab"
    name, subnet = side_lab("f", 1)
    with pytest.raises(LabError, match="simulated"):
        up(2, state_dir=state_dir, name=name, subnet=subnet)
    assert lab_leftovers(name, state_dir, []) == []


def test_a_lab_on_a_slash_22_raises_the_neighbour_limits_it_needs(
    clean_lab: Lab, tmp_path: Path
) -> None:
    """What a 1,000-host lab needs, at the size of a test: a /22 subnet, and the kernel's
    neighbour table (one for all namespaces) with room for the lab's hosts."""
    name, first = side_lab("w", 12)  # offsets 12-15: a /22 clear of the other side labs
    subnet = str(
        ipaddress.ip_network((ipaddress.ip_network(first).network_address, 22), strict=False)
    )
    wanted = neighbour_limits(1000)  # what `up` of 1,000 hosts raises them to
    raise_sysctls(wanted)
    assert all(int(Path(p).read_text()) >= v for p, v in wanted.items())
    state_dir = tmp_path / "lab"
    wide = up(3, state_dir=state_dir, name=name, subnet=subnet)
    try:
        assert all(s.is_healthy for s in wide.status())
        shown = wide.exec("web3", "ip -4 -o addr show dev eth0").stdout
        assert f"{wide.hosts['web3']}/22" in shown
    finally:
        down(state_dir)
