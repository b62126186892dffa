"""Hostile and malformed input through the real CLI, on lab hosts.

Values that reach remote commands run nothing; malformed input exits 4 (or 5) with a
message and no traceback, before any host is contacted; secrets appear in no output the
CLI produces, nor in its state database; what opsfix writes that is private is 0600.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsfix.lab import Lab

from .helpers import DATA, PLAYBOOK, Run, clean_env, log_marks, log_since, opsfix, opsfix_command
from .test_faults import ADD_USER, FAULT_DIR, FORGET, REMOVE_USER, SUDO_USER, inventory_with

pytestmark = pytest.mark.integration

FAULTS = DATA / "faults"
PWNED = "opsfix-pwned-"
FIND_PWNED = (  # exactly the markers: a folder whose name merely quotes one is data
    f"find /tmp /root /run /var/tmp -regextype posix-extended -regex '.*/{PWNED}[0-9]+' "
    f"2>/dev/null; find / -maxdepth 2 -name '{PWNED}*' 2>/dev/null; true"
)


@pytest.fixture
def hosts(clean_lab: Lab) -> Iterator[Lab]:
    for host in clean_lab.hosts:
        clean_lab.exec(host, f"{FORGET}; rm -rf /tmp/opsfix-hostile /tmp/{PWNED}*")
    yield clean_lab
    for host in clean_lab.hosts:
        clean_lab.exec(host, f"{FORGET}; rm -rf /tmp/opsfix-hostile /tmp/{PWNED}*", check=False)


def pwned_anywhere(lab: Lab) -> list[str]:
    found = [line for h in lab.hosts for line in lab.exec(h, FIND_PWNED).stdout.splitlines()]
    local = subprocess.run(["sh", "-c", FIND_PWNED], capture_output=True, text=True)
    return found + local.stdout.splitlines()


# -- values that reach remote commands --------------------------------------------------------


def test_hostile_values_reach_the_host_as_data_and_run_nothing(hosts: Lab, tmp_path: Path) -> None:
    inventory = inventory_with(
        hosts,
        tmp_path / "inventory.yml",
        {
            f"web1$(touch /tmp/{PWNED}10)": {"ansible_host": hosts.hosts["web1"]},
        },
    )
    cli = ["-e", f'{{"cli": "$(touch /tmp/{PWNED}9); `touch /tmp/{PWNED}11`"}}']
    playbook = FAULTS / "hostile.yml"
    for command in ("check", "apply --check", "apply"):
        run = opsfix(
            *command.split(),
            playbook,
            "-i",
            inventory,
            "--format",
            "json",
            *cli,
            "--limit",
            "web1*",
            timeout=120,
        )
        assert run.returncode == 2, str(run)
        assert "Traceback" not in run.stderr
        names = sorted(h["host"] for h in run.report["hosts"])
        assert names == ["web1", f"web1$(touch /tmp/{PWNED}10)"], str(run)
        for host in run.report["hosts"]:
            assert host["status"] == "failed" and len(host["steps"]) == 8, str(run)
        assert pwned_anywhere(hosts) == [], f"after {command}: {pwned_anywhere(hosts)}"
    # the content went where it was told: a folder whose name is the hostile text
    made = shlex.quote('/tmp/opsfix-hostile/x" ; touch /tmp/opsfix-pwned-7 ; echo "/index.html')
    assert hosts.exec("web1", f"cat {made}").stdout == "release\n"


def test_an_inventory_value_in_a_shell_command_runs_nothing(hosts: Lab, tmp_path: Path) -> None:
    conf_path = f"/tmp/opsfix-hostile/c$(touch /tmp/{PWNED}30); touch /tmp/{PWNED}31 #`id`"
    inventory = inventory_with(
        hosts,
        tmp_path / "inventory.yml",
        {"web1-cmd": {"ansible_host": hosts.hosts["web1"], "conf_path": conf_path}},
    )
    run = opsfix(
        "apply", FAULTS / "hostile_command.yml", "-i", inventory, "--limit", "web1-cmd",
        "--format", "json",
    )  # fmt: skip
    assert run.returncode == 2, str(run)  # nothing named opsfix-nosuch-svc runs afterwards
    assert pwned_anywhere(hosts) == [], pwned_anywhere(hosts)
    # validate and start_command ran, each with the literal value as one argument
    made = shlex.quote(conf_path)
    assert hosts.exec("web1", f"test -d {made} && test -d {made}/started").returncode == 0


# -- malformed input through the CLI ------------------------------------------------------------

LAUGHS = "\n".join(
    [f"  l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
)
MALFORMED_PLAYBOOKS = {
    "not yaml": "hosts: [web\nchecks: {",
    "binary": "\x00\x01\x02\xff",
    "python tag": "hosts: web\nvars:\n  x: !!python/object/apply:os.system\n"
    "    ['touch /tmp/opsfix-pwned-20']\n"
    "checks: [{check: nginx_config}]\n",
    "billion laughs": f"hosts: web\nvars:\n{LAUGHS}\nchecks: [{{check: nginx_config}}]\n",
    "deep nesting": "hosts: web\nvars: {x: " + "[" * 5000 + "]" * 5000 + "}\nchecks: []\n",
    "wrong type": "hosts: web\nchecks: [{check: port_listening, with: {port: http}}]\n",
    "template bomb": "hosts: web\nvars: {x: \"{{ 'x' * 10**10 }}\"}\n"
    "checks: [{check: file_present, with: {root: '{{ x }}'}}]\n",
    "template escape": "hosts: web\nvars: {x: \"{{ ''.__class__.__mro__ }}\"}\n"
    "checks: [{check: file_present, with: {root: '{{ x }}'}}]\n",
    "include passwd": "hosts: web\nvars: {x: \"{% include '/etc/passwd' %}\"}\n"
    "checks: [{check: file_present, with: {root: '{{ x }}'}}]\n",
    "center bomb": "hosts: web\nvars: {x: \"{{ 'x'|center(400000000) }}\"}\n"
    "checks: [{check: file_present, with: {root: '{{ x }}'}}]\n",
    "format bomb": "hosts: web\nchecks: [{check: file_present, with: "
    "{root: \"{{ '{:>400000000}'.format(1) ~ '%0400000000d' % 1 }}\"}}]\n",
    "recursive macro": "hosts: web\nchecks: [{check: file_present, with: "
    "{root: '{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}'}}]\n",
    "huge playbook": "hosts: web\nvars:\n" + "  v: [a, b, c]\n" * 100_000 + "checks: []\n",
    "deep block nesting": "hosts: web\nvars:\n" + "".join("  " * i + "- \n" for i in range(1, 300)),
    "nul character": "hosts: web\nvars: {x: a\x00b}\nchecks: []\n",
}
MALFORMED_INVENTORIES = {
    "ini section": "[web\nweb1\n",
    "yaml list": "- web1\n- web2\n",
    "bad range": "all:\n  hosts:\n    web[3:1]:\n",
    "invalid utf-8": b"all:\n  hosts:\n    w\xff\xfe:\n",
}


@pytest.fixture(scope="module")
def malformed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("malformed")
    for name, text in MALFORMED_PLAYBOOKS.items():
        (folder / f"{name.replace(' ', '_')}.yml").write_text(text, errors="surrogateescape")
    for name, text in MALFORMED_INVENTORIES.items():
        suffix = ".ini" if name.startswith("ini") else ".yml"
        path = folder / f"inv_{name.replace(' ', '_')}{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def assert_refused(run: Run, code: int, lab: Lab, marks: dict[str, int]) -> None:
    assert run.returncode == code, str(run)
    assert run.stderr.startswith("ERROR: ") or "\nERROR: " in run.stderr, str(run)
    assert "Traceback" not in run.stderr and run.stdout == "", str(run)
    assert run.seconds < 10, str(run)
    for host in lab.hosts:
        assert log_since(lab, host, marks) == "", f"{host} was contacted"


@pytest.mark.parametrize("name", list(MALFORMED_PLAYBOOKS))
def test_a_malformed_playbook_exits_4_with_its_place(lab: Lab, malformed: Path, name: str) -> None:
    path = malformed / f"{name.replace(' ', '_')}.yml"
    marks = log_marks(lab)
    run = opsfix("apply", path, "-i", lab.inventory_path, "--format", "json")
    assert_refused(run, 4, lab, marks)
    assert str(path) in run.stderr
    assert "root:x:0:0" not in run.stderr
    assert not Path("/tmp/opsfix-pwned-20").exists()


@pytest.mark.parametrize("name", list(MALFORMED_INVENTORIES))
def test_a_malformed_inventory_exits_4_with_its_place(lab: Lab, malformed: Path, name: str) -> None:
    suffix = ".ini" if name.startswith("ini") else ".yml"
    path = malformed / f"inv_{name.replace(' ', '_')}{suffix}"
    marks = log_marks(lab)
    run = opsfix("check", PLAYBOOK, "-i", path)
    assert_refused(run, 4, lab, marks)
    assert str(path) in run.stderr


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ("novalue", 5),
        ("{a: [}", 4),
        ("[1, 2]", 4),
        ("{x: !!python/name:os.system }", 4),
        ("@/nonexistent/extra.yml", 4),
    ],
)
def test_malformed_extra_vars_exit_4_or_5(lab: Lab, extra: str, code: int) -> None:
    marks = log_marks(lab)
    run = opsfix("check", PLAYBOOK, "-i", lab.inventory_path, "-e", extra)
    assert_refused(run, code, lab, marks)


BAD_CONNECTION_VARS = {
    "undefined user": ({"ansible_user": "{{ nope }}"}, "undefined variable: 'nope' is undefined"),
    "port out of range": ({"ansible_port": 99999}, "99999 is out of range"),
    "negative timeout": ({"ansible_timeout": -5}, "-5 is not a timeout"),
    "nul in user": ({"ansible_user": "ro\0ot"}, "'ro\\x00ot' holds a NUL character"),
}


@pytest.mark.parametrize("name", list(BAD_CONNECTION_VARS))
def test_a_bad_connection_value_exits_4_before_any_host_is_contacted(
    lab: Lab, tmp_path: Path, name: str
) -> None:
    values, message = BAD_CONNECTION_VARS[name]
    path = tmp_path / "inventory.yml"
    inventory_with(lab, path, {"web1-bad": {"ansible_host": lab.hosts["web1"], **values}})
    marks = log_marks(lab)
    run = opsfix("check", PLAYBOOK, "-i", path)
    assert_refused(run, 4, lab, marks)
    assert run.stderr.startswith(f"ERROR: {path}:"), str(run)
    assert f"all.children.web.hosts.web1-bad.{next(iter(values))}: {message}" in run.stderr


# -- secrets ---------------------------------------------------------------------------------

TOKEN = "tok-SECRET-4f9a2c71"  # secret_vars in data/faults/secrets.yml
BECOME = "right-password-17"  # ADD_USER's password, given through the environment


@pytest.fixture
def sudo_host(hosts: Lab) -> Iterator[Lab]:
    hosts.exec("web3", REMOVE_USER, check=False)
    hosts.exec("web3", ADD_USER)
    hosts.exec("web3", f"mkdir -p {FAULT_DIR} && echo old > {FAULT_DIR}/token.conf")
    yield hosts
    hosts.exec("web3", REMOVE_USER, check=False)


def optional_outputs(tmp_path: Path) -> list[str]:
    """Options for every output file this opsfix can write (others add them as they come)."""
    help_text = subprocess.run(
        [opsfix_command(), "apply", "--help"], capture_output=True, text=True
    ).stdout
    found = []
    for option in ("--junit", "--metrics-file", "--report", "--log-file", "--html", "--output"):
        if f"{option} " in help_text or f"{option}=" in help_text:
            found += [option, str(tmp_path / "out" / option.strip("-"))]
    return found


def test_secrets_appear_in_no_output_log_report_or_database(sudo_host: Lab, tmp_path: Path) -> None:
    lab = sudo_host
    inventory = inventory_with(
        lab,
        tmp_path / "inventory.yml",
        {
            "web3-sudo": {
                "ansible_host": lab.hosts["web3"],
                "ansible_user": SUDO_USER,
                "ansible_become": True,
            },
        },
    )
    (tmp_path / "out").mkdir()
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    env = {**clean_env(home), "OPSFIX_BECOME_PASSWORD": BECOME, "OPSFIX_STATE_DIR": str(state)}
    base = [
        opsfix_command(),
        "apply",
        str(FAULTS / "secrets.yml"),
        "-i",
        str(inventory),
        "--limit",
        "web3-sudo",
        "--diff",
        "-vv",
    ]
    outputs: list[str] = []
    runs = [[*base, "--check"], [*base, "--format", "json", *optional_outputs(tmp_path)], base]
    for argv in runs:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        outputs += [done.stdout, done.stderr]
        assert "Traceback" not in done.stderr, done.stderr
    # the run really used both: the file holds the token, written through sudo
    assert lab.exec("web3", f"cat {FAULT_DIR}/token.conf").stdout == f"token={TOKEN}\n"
    assert "********" in "".join(outputs)
    for argv in (
        ["history"],
        ["show", "last"],
        ["show", "last", "--format", "json", "-v"],
        ["report", "last"],
        ["report", "last", "--format", "html"],
        ["report", "last", "--format", "bundle"],
    ):
        done = subprocess.run(
            [opsfix_command(), *argv], env=env, capture_output=True, text=True, timeout=60
        )
        outputs += [done.stdout, done.stderr]
    files = [p for p in [*tmp_path.rglob("*")] if p.is_file() and p.name != "inventory.yml"]
    leaks = [f"output {i}" for i, text in enumerate(outputs) if TOKEN in text or BECOME in text]
    for path in files:
        data = path.read_bytes()
        if TOKEN.encode() in data or BECOME.encode() in data:
            leaks.append(str(path))
    assert leaks == [], leaks
    # the host's own log of what opsfix ran keeps the password off command lines
    assert BECOME not in lab.exec("web3", "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '").stdout
    private = [p for p in state.rglob("*") if p.is_file()]
    assert private, "no state database was written"
    for path in private:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
    assert state.stat().st_mode & 0o077 == 0


def test_keys_and_known_hosts_opsfix_writes_are_private(lab: Lab, tmp_path: Path) -> None:
    assert lab.private_key_path.stat().st_mode & 0o777 == 0o600
    known_hosts = tmp_path / "fresh" / "known_hosts"
    inventory = inventory_with(
        lab,
        tmp_path / "inventory.yml",
        {
            "web4-new": {
                "ansible_host": lab.hosts["web4"],
                "opsfix_known_hosts_file": str(known_hosts),
            },
        },
    )
    run = opsfix("check", PLAYBOOK, "-i", inventory, "--limit", "web4-new", "--trust-new-host-keys")
    assert run.returncode in (0, 2), str(run)
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    assert known_hosts.parent.stat().st_mode & 0o077 == 0
