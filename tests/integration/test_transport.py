"""The SSH transport and the verify runner against a real sshd on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from opsfix.errors import CommandTimeout, ConnectionFailed, HostKeyError
from opsfix.secret import Secret
from opsfix.transport.connect import open_connection
from opsfix.transport.kinds.local import LocalConnection
from opsfix.transport.spec import ConnectionSpec
from opsfix.transport.ssh import SSHConnection
from opsfix.verify.suite import VerifyTarget, run_suites

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists(),
                       reason="needs root and openssh-server"),
]  # fmt: skip


def _load_helper() -> ModuleType:
    path = Path(__file__).with_name("sshd_fixture.py")
    spec = importlib.util.spec_from_file_location("opsfix_test_sshd_fixture", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


helper = _load_helper()


@pytest.fixture(scope="module")
def sshd() -> Iterator[helper.Sshd]:
    server = helper.start_sshd()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def user() -> Iterator[tuple[str, str]]:
    """A throwaway login user (plain /bin/sh, may sudo with its password), removed afterwards.

    Not root: root's shell here is bash, which sources a heavy ~/.bashrc for every command
    sshd runs (FIELD-NOTES), and sudo with a password needs a user that is not root.
    """
    name, password = f"opsfix{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    sudoers = Path(f"/etc/sudoers.d/{name}")
    subprocess.run(["useradd", "--create-home", "-s", "/bin/sh", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True)
        sudoers.write_text(f"{name} ALL=(ALL) ALL\nDefaults:{name} lecture=never\n")
        sudoers.chmod(0o440)
        yield name, password
    finally:
        sudoers.unlink(missing_ok=True)
        _wait_until_no_processes(name)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", f"/run/sudo/ts/{name}"], check=False)


def _wait_until_no_processes(user: str, timeout: float = 8) -> None:
    """Commands cut off by a test end at their host-side timeout; userdel needs them gone."""
    deadline = time.monotonic() + timeout
    while subprocess.run(["pgrep", "-u", user], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)


@pytest.fixture(scope="module")
def conn(sshd: helper.Sshd, user: tuple[str, str]) -> Iterator[SSHConnection]:
    connection = SSHConnection(sshd.spec(user=user[0]))
    connection.open()
    yield connection
    connection.close()


# --- commands -------------------------------------------------------------------------------


def test_run_returns_stdout_stderr_and_exit_status(conn: SSHConnection) -> None:
    result = conn.run("echo out; echo err >&2; exit 3")
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 3)
    assert result.command == "echo out; echo err >&2; exit 3"
    assert conn.run("true").ok


def test_chatty_command_on_both_streams_does_not_deadlock(conn: SSHConnection) -> None:
    script = "(yes o | head -c 4000000) & (yes e | head -c 4000000 >&2); wait"
    result = conn.run(script, timeout=20)
    assert (len(result.stdout), len(result.stderr)) == (4_000_000, 4_000_000)


def test_timeout_fires_stops_the_command_and_the_connection_stays_usable(
    conn: SSHConnection,
) -> None:
    marker = f"{secrets.randbelow(10**6) + 1000}.5"
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        conn.run(f"sleep {marker}", timeout=0.5)
    assert time.monotonic() - started < 2
    assert "timed out after 0.5s" in str(info.value)
    assert conn.run("echo still-here").stdout == "still-here\n"
    probe = f"pgrep -f 'slee[p] {marker}'"
    deadline = time.monotonic() + 6
    while conn.run(probe).ok and time.monotonic() < deadline:  # the host stops it too
        time.sleep(0.2)
    assert not conn.run(probe).ok


def test_parallel_commands_share_one_connection(conn: SSHConnection) -> None:
    errors: list[BaseException] = []
    outputs: list[str] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                outputs.append(conn.run(f"sleep 0.05; echo {n}-{i}").stdout)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(outputs) == sorted(f"{n}-{i}\n" for n in range(16) for i in range(5))


def test_big_script_goes_by_sftp_and_is_removed(conn: SSHConnection) -> None:
    script = "# " + "x" * 200_000 + '\necho big-ok; echo "$0"'
    result = conn.run(script)
    ok, path = result.stdout.splitlines()
    assert ok == "big-ok" and "opsfix-" in path
    # the uploaded script itself is gone (other files in /tmp are not this test's business)
    assert conn.run(f"test -e {shlex.quote(path)}").exit_status == 1


def test_put_writes_bytes_with_mode(conn: SSHConnection, tmp_path: Path) -> None:
    target = f"/tmp/opsfix-put-{secrets.token_hex(4)}"
    try:
        conn.put(b"hello\x00world", target, 0o640)
        assert Path(target).read_bytes() == b"hello\x00world"
        assert Path(target).stat().st_mode & 0o777 == 0o640
    finally:
        Path(target).unlink(missing_ok=True)


def _commands(pids: list[int]) -> list[str]:
    """The command names of these processes (those still there)."""
    names = []
    for pid in pids:
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    return names


def test_connection_lost_mid_command_raises_connection_failed(user: tuple[str, str]) -> None:
    server = helper.start_sshd()
    connection = SSHConnection(server.spec(user=user[0]))
    try:
        connection.open()
        outcome: list[BaseException] = []

        def long_command() -> None:
            try:
                connection.run("sleep 60", timeout=50)
            except BaseException as e:
                outcome.append(e)

        worker = threading.Thread(target=long_command)
        worker.start()
        # the command runs (a loaded machine may take seconds to get there) ...
        deadline = time.monotonic() + 20
        while "sleep" not in _commands(server.session_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in server.session_pids():  # ... then sshd's side of the connection dies
            os.kill(pid, signal.SIGKILL)
        worker.join(20)
        assert len(outcome) == 1 and isinstance(outcome[0], ConnectionFailed)
        assert "connection lost" in str(outcome[0])
        with pytest.raises(ConnectionFailed, match="connection lost"):
            connection.run("true")
    finally:
        connection.close()
        server.stop()


# --- connecting and host keys ------------------------------------------------------------------


def test_open_connection_uses_tcp_nodelay_quick_acks_and_aes_gcm(sshd: helper.Sshd) -> None:
    import socket

    from opsfix.transport.ssh import _QuickAckSocket

    connection = open_connection(sshd.spec())
    try:
        sock = connection.native_client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert isinstance(sock, _QuickAckSocket)  # else the first command waits ~40 ms
        transport = connection.native_client.get_transport()
        assert transport.local_cipher == transport.remote_cipher == "aes128-gcm@openssh.com"
        assert connection.run("echo first").stdout == "first\n"
    finally:
        connection.close()


def test_unknown_host_key_is_refused_with_its_fingerprint(
    sshd: helper.Sshd, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    spec = sshd.spec(known_hosts_files=(str(known),))
    with pytest.raises(HostKeyError) as info:
        SSHConnection(spec).open()
    assert sshd.fingerprint() in str(info.value)
    assert f"[127.0.0.1]:{sshd.port}" in str(info.value)
    assert not known.exists()


def test_changed_host_key_is_refused_even_with_trust_on_first_use(
    sshd: helper.Sshd, tmp_path: Path
) -> None:
    other = " ".join(helper.keygen(tmp_path / "other").split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    before = (known.read_bytes(), known.stat().st_mtime_ns)
    spec = sshd.spec(known_hosts_files=(str(known),), trust_new_host_keys=True)
    with pytest.raises(HostKeyError, match="CHANGED") as info:
        SSHConnection(spec).open()
    assert sshd.fingerprint() in str(info.value)
    assert (known.read_bytes(), known.stat().st_mtime_ns) == before


def test_trust_on_first_use_records_a_new_key(sshd: helper.Sshd, tmp_path: Path) -> None:
    known = tmp_path / "new" / "known_hosts"
    with SSHConnection(sshd.spec(known_hosts_files=(str(known),), trust_new_host_keys=True)) as c:
        assert c.run("echo ok").stdout == "ok\n"
    assert known.stat().st_mode & 0o777 == 0o600
    line = known.read_text()
    assert line.startswith("|1|") and sshd.host_public_key in line  # hashed host, our key
    with SSHConnection(sshd.spec(known_hosts_files=(str(known),))) as c:  # now simply known
        assert c.run("true").ok
    check = subprocess.run(  # OpenSSH itself finds the recorded entry
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known)], capture_output=True
    )
    assert check.returncode == 0


def test_authentication_failure(sshd: helper.Sshd, tmp_path: Path) -> None:
    helper.keygen(tmp_path / "stranger")
    spec = sshd.spec(key_file=str(tmp_path / "stranger"))
    with pytest.raises(ConnectionFailed, match="authentication failed for user root"):
        SSHConnection(spec).open()


def test_connection_refused() -> None:
    spec = ConnectionSpec(host="gone", hostname="127.0.0.1", port=helper.free_port())
    with pytest.raises(ConnectionFailed, match="connection refused") as info:
        SSHConnection(spec).open()
    assert info.value.host == "gone"


def test_proxy_command_and_proxy_jump(sshd: helper.Sshd) -> None:
    proxy = f'python3 -c "{_NETCAT}" 127.0.0.1 {sshd.port}'
    with SSHConnection(sshd.spec(proxy_command=proxy)) as c:
        assert c.run("echo via-proxy").stdout == "via-proxy\n"
    before = sshd.accepted_logins()
    with SSHConnection(sshd.spec(proxy_jump=f"root@127.0.0.1:{sshd.port}")) as c:
        assert c.run("echo $SSH_CONNECTION").stdout.split()[0] == "127.0.0.1"
    assert sshd.accepted_logins() - before == 2  # the jump host, then the target through it


_NETCAT = (
    "import socket,sys,threading;"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])));"
    "threading.Thread(target=lambda:[s.sendall(b) for b in iter("
    "lambda:sys.stdin.buffer.raw.read(65536),b'')],daemon=True).start();"
    "[sys.stdout.buffer.write(b) or sys.stdout.flush() for b in iter(lambda:s.recv(65536),b'')]"
)


# --- sudo with a password ------------------------------------------------------------------------


def _sudo_spec(sshd: helper.Sshd, user: str, password: str | None) -> ConnectionSpec:
    secret = Secret(password) if password is not None else None
    return sshd.spec(user=user, become=True, become_password=secret)


def test_sudo_with_the_right_password(sshd: helper.Sshd, user: tuple[str, str]) -> None:
    name, password = user
    with SSHConnection(_sudo_spec(sshd, name, password)) as c:
        result = c.run("id -un; cat")  # `cat` proves the script cannot read the password line
        assert result.stdout == "root\n" and result.ok
        assert c.run("id -un", become=False).stdout == f"{name}\n"
        again = c.run("id -un; cat")  # credentials now cached: sudo does not read stdin
        assert again.stdout == "root\n"
        for r in (result, again):
            assert password not in repr(r)


def test_sudo_with_a_wrong_password_is_a_clear_failed_result(
    sshd: helper.Sshd, user: tuple[str, str]
) -> None:
    name, password = user
    wrong = password + "-wrong"
    with SSHConnection(_sudo_spec(sshd, name, wrong)) as c:
        result = c.run("id -un")
    assert not result.ok
    assert result.stderr == "sudo: incorrect password"
    assert wrong not in repr(result) and password not in repr(result)


def test_sudo_without_a_password_says_it_needs_one(
    sshd: helper.Sshd, user: tuple[str, str]
) -> None:
    with SSHConnection(_sudo_spec(sshd, user[0], None)) as c:
        result = c.run("id -un")
    assert (result.ok, result.stderr) == (False, "sudo needs a password")


# --- verify: testinfra over our connections -------------------------------------------------------

SUITE = """
import pytest

def test_reaches_the_right_host(host, opsfix_vars):
    assert host.run("id -un").stdout.strip() == opsfix_vars["expected_user"]
    if "port" in opsfix_vars:  # sudo drops SSH_CONNECTION from the environment
        assert host.run("echo $SSH_CONNECTION").stdout.split()[3] == str(opsfix_vars["port"])
    assert "ansible_become_password" not in opsfix_vars

def test_file(host):
    assert host.file("/etc/passwd").exists

def test_fails(host):
    print("evidence line")
    assert host.file("/nonexistent-opsfix").exists

def test_skipped(host):
    pytest.skip("not today")
"""


def test_run_suites_reuses_our_connections_and_reports_per_host(
    sshd: helper.Sshd,
    user: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two hosts on one address, differing only by port: web2 becomes root with a password."""
    name, password = user
    second = helper.start_sshd()
    connections: list[SSHConnection] = []
    try:
        web1 = sshd.spec(host="web1", user=name)
        web2 = second.spec(host="web2", user=name, become=True, become_password=Secret(password))
        plans = (
            (web1, {"expected_user": name, "port": sshd.port}),
            (web2, {"expected_user": "root", "ansible_become_password": Secret(password)}),
        )
        targets = []
        for spec, variables in plans:
            connection = SSHConnection(spec)
            connection.open()
            connections.append(connection)
            targets.append(VerifyTarget(spec.host, connection, spec, variables))
        logins = [server.accepted_logins() for server in (sshd, second)]
        suite = tmp_path / "suite" / "test_hosts.py"
        suite.parent.mkdir()
        suite.write_text(SUITE)
        junit = tmp_path / "junit.xml"

        results = run_suites([suite.parent], targets, junit_xml=junit)

        for name in ("web1", "web2"):
            outcomes = {o.test: o for o in results[name]}
            assert {t: o.outcome for t, o in outcomes.items()} == {
                "test_hosts.py::test_reaches_the_right_host": "passed",
                "test_hosts.py::test_file": "passed",
                "test_hosts.py::test_fails": "failed",
                "test_hosts.py::test_skipped": "skipped",
            }
            failure = outcomes["test_hosts.py::test_fails"].message
            assert "nonexistent-opsfix" in failure and "evidence line" in failure
        assert [s.accepted_logins() for s in (sshd, second)] == logins  # no second login
        assert "paramiko://web1" in junit.read_text()
        assert password not in junit.read_text() and password not in repr(results)
        assert capsys.readouterr().out == ""

        suite.write_text("def test_changed(host):\n    assert True\n")  # no stale module
        again = run_suites([suite.parent], targets)
        assert [o.test for o in again["web2"]] == ["test_hosts.py::test_changed"]
    finally:
        for connection in connections:
            connection.close()
        second.stop()


def test_run_suites_on_a_local_host(tmp_path: Path) -> None:
    spec = ConnectionSpec(host="ctl", hostname="localhost", connection="local", become=True)
    suite = tmp_path / "test_local.py"
    suite.write_text(
        "def test_root(host, opsfix_vars):\n"
        "    assert host.run('id -u').stdout.strip() == '0'\n"
        "    assert opsfix_vars == {'role': 'controller'}\n"
    )
    target = VerifyTarget("ctl", LocalConnection(spec), spec, {"role": "controller"})
    results = run_suites([suite], [target])
    assert [(o.test, o.outcome) for o in results["ctl"]] == [("test_local.py::test_root", "passed")]


def test_local_connection_runs_as_another_user_and_times_out() -> None:
    nobody = pwd.getpwnam("nobody").pw_name
    spec = ConnectionSpec(host="ctl", hostname="localhost", connection="local",
                          become=True, become_user=nobody)  # fmt: skip
    connection = LocalConnection(spec)
    assert connection.run("id -un").stdout == "nobody\n"
    with pytest.raises(CommandTimeout):
        connection.run("sleep 5", timeout=0.3)
    assert connection.run("# " + "y" * 200_000 + "\necho big").stdout == "big\n"


# --- the shipped nginx suite, against a real nginx in its own namespaces -----------------------

NGINX_LAB = r"""
set -e
ip link set lo up
mount --bind "$LAB/conf" /etc/nginx  # private mount namespace: the host's /etc/nginx is untouched
nginx
exec "$PYTHON" - <<'PY'
import json, os, subprocess
from pathlib import Path
from opsfix.transport.spec import ConnectionSpec
from opsfix.transport.kinds.local import LocalConnection
from opsfix.verify.suite import VerifyTarget, run_suites

suite = [Path(os.environ["SUITE"])]
spec = ConnectionSpec(host="lab", hostname="localhost", connection="local")
target = VerifyTarget(
    "lab", LocalConnection(spec), spec,
    {"expected_content": "opsfix app", "spa_deep_link": "/app/settings"},
)
report = {"healthy": run_suites(suite, [target])["lab"]}
conf = Path(os.environ["LAB"]) / "conf" / "nginx.conf"
conf.write_text(conf.read_text().replace("/index.html;", "=404;"))  # SPA routing broken
master = (Path(os.environ["LAB"]) / "nginx.pid").read_text().strip()
old = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
subprocess.run(["nginx", "-s", "reload"], check=True)
for _ in range(200):  # a reload is asynchronous: old workers may answer until they are gone
    if not any(Path(f"/proc/{pid}").exists() for pid in old):
        break
    __import__("time").sleep(0.05)
report["no_spa_fallback"] = run_suites(suite, [target])["lab"]
subprocess.run(["nginx", "-s", "stop"], check=True)
for _ in range(100):  # the master goes once its workers have
    if subprocess.run(["pgrep", "-x", "nginx"], capture_output=True).returncode == 1:
        break
    __import__("time").sleep(0.05)
report["stopped"] = run_suites(suite, [target])["lab"]
print(json.dumps({k: {o.test.split("::")[1]: o.outcome for o in v} for k, v in report.items()}))
PY
"""

NGINX_CONF = """user www-data;
pid {lab}/nginx.pid;
error_log {lab}/error.log;
events {{}}
http {{
  access_log off;
  server {{
    listen 80;
    root {lab}/www;
    location / {{ try_files $uri $uri/ /index.html; }}
  }}
}}
"""


@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="needs nginx")
def test_nginx_host_suite_passes_on_a_healthy_spa_and_catches_a_broken_one() -> None:
    import json
    import shutil
    import tempfile

    lab = Path(tempfile.mkdtemp(prefix="opsfix-nginx-"))
    try:
        lab.chmod(0o755)
        (lab / "conf").mkdir()
        (lab / "www").mkdir()
        (lab / "conf" / "nginx.conf").write_text(NGINX_CONF.format(lab=lab))
        (lab / "www" / "index.html").write_text("<html>opsfix app</html>\n")
        (lab / "www" / "index.html").chmod(0o644)
        env = {
            **os.environ,
            "LAB": str(lab),
            "PYTHON": sys.executable,
            "SUITE": str(Path(__file__).parents[1] / "host" / "test_nginx.py"),
        }
        done = subprocess.run(  # PID 1 of the namespace exits last: nginx goes with it
            ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
             "sh", "-c", NGINX_LAB],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.splitlines()[-1])
    finally:
        shutil.rmtree(lab, ignore_errors=True)
    assert set(report["healthy"].values()) == {"passed"}
    broken = report["no_spa_fallback"]
    assert broken.pop("test_deep_link_returns_the_app") == "failed"
    assert set(broken.values()) == {"passed"}
    stopped = report["stopped"]
    assert stopped["test_nginx_is_running"] == "failed"
    assert stopped["test_nginx_is_installed"] == "passed"


def test_lab_hosts_pass_the_nginx_suite_over_ssh(
    clean_lab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on lab hosts: inventory -> spec -> verified SSH -> testinfra suite."""
    from opsfix.inventory import load_inventory
    from opsfix.transport.settings import resolve_spec

    monkeypatch.setenv("HOME", str(tmp_path))  # no personal ssh_config or known_hosts
    hosts = list(load_inventory([clean_lab.inventory_path]).hosts.values())[:2]
    connections = [open_connection(resolve_spec(host)) for host in hosts]
    try:
        targets = [
            VerifyTarget(h.name, c, resolve_spec(h), h.vars)
            for h, c in zip(hosts, connections, strict=True)
        ]
        suite = Path(__file__).parents[1] / "host" / "test_nginx.py"
        results = run_suites([suite], targets)
    finally:
        for connection in connections:
            connection.close()
    for host in hosts:
        outcomes = {o.test.split("::")[1]: o.outcome for o in results[host.name]}
        assert set(outcomes.values()) == {"passed"}, results[host.name]
        assert len(outcomes) == 7
