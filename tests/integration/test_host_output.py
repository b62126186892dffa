"""What a host prints is bounded before anyone holds it: a check command that prints
500 MB leaves the controller and the connection keeper at a small peak memory, and the
host is reported as "could not tell", neither healthy nor unreachable.

Peak memory is the kernel's own high-water mark: the run's is read by a small parent
that waits for it (`ru_maxrss` of its children), the keeper's from `/proc/PID/status`
(`VmHWM`) while it still runs.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from opsfix.lab import Lab
from opsfix.transport.keeper.link import build_tag

from .helpers import (
    DATA,
    PLAYBOOK,
    PLUGINS,
    REPO,
    clean_env,
    opsfix_command,
    opsfix_with_env,
    opsfix_with_state,
)

pytestmark = pytest.mark.integration

CHATTY = DATA / "chatty.yml"  # 500 MB on stdout from web1's only check
PEAK_LIMIT_KB = 160 * 1024  # a run's peak is ~60 MB; 500 MB held would be far past this

_MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
sys.stdout.write(str(done.returncode) + "\\n" + done.stdout)
sys.stderr.write(done.stderr)
"""


def measured_run(env: dict[str, str], *args: str | Path) -> tuple[int, int, str, str]:
    """`opsfix ARGS`: its peak RSS in KiB, exit code, stdout and stderr."""
    argv = [sys.executable, "-c", _MEASURED, opsfix_command(), *map(str, args)]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    peak, code, stdout = done.stdout.split("\n", 2)
    return int(peak), int(code), stdout, done.stderr


def keeper_pid(home: Path) -> int | None:
    path = home / ".local/state/opsfix/control" / f"keeper-{build_tag()}.sock"
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        return int.from_bytes(creds[:4], "little")
    return None


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.parametrize("kept", [True, False], ids=["through the keeper", "in the run"])
def test_a_host_printing_500_mb_is_could_not_tell_with_memory_bounded(lab: Lab, kept: bool) -> None:
    home = Path(tempfile.mkdtemp(prefix="opsfix-output-"))
    env = {**clean_env(home), "OPSFIX_PERSIST": "30" if kept else "0"}
    args = ("check", CHATTY, "--plugins", PLUGINS, "-i", lab.inventory_path, "--limit", "web1")
    try:
        peak, code, stdout, stderr = measured_run(env, *args, "--format", "json")
        pid = keeper_pid(home)
        keeper_peak = peak_kb(pid) if pid else None
    finally:
        opsfix_with_env("connections", "close", env=env)
        shutil.rmtree(home)

    assert code == 2, stderr
    (host,) = json.loads(stdout)["hosts"]
    assert host["status"] == "failed", host  # not unreachable: the host answered
    (step,) = host["steps"]
    assert step["before"]["status"] == "error", step
    assert "more than the output limit" in step["before"]["summary"]
    assert peak < PEAK_LIMIT_KB, f"the run peaked at {peak // 1024} MiB"
    if kept:
        assert keeper_peak is not None, "no keeper served the run"
        assert keeper_peak < PEAK_LIMIT_KB, f"the keeper peaked at {keeper_peak // 1024} MiB"
    else:
        assert keeper_peak is None


# -- escapes: what a host prints, and host names, reach a person escaped ----------------------

EVIL_CONF = (  # nginx quotes the bad directive in its error, raw
    r"printf 'server_tokens off;\n\033[2J\033]8;;http://evil\007pwned;\n'"
    " > /etc/nginx/conf.d/evil.conf"
)
ALIAS = "web4\x1b]0;owned\x07\r\nFORGED HEALTHY"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_shown_escaped(text: str, what: str) -> None:
    """No raw control character, the escaped form there; and no line a host name forged
    (in HTML a newline is only a space, so there it is not looked for)."""
    assert not RAW.search(text), f"{what} holds a raw control character: {text[-2000:]!r}"
    assert "\\x1b[2J" in text, f"{what} lacks the escaped form: {text[-2000:]}"
    if not text.startswith("<!DOCTYPE html>"):
        assert not any(line.startswith("FORGED") for line in text.splitlines()), what


def test_escapes_from_a_host_and_a_host_name_arrive_escaped(clean_lab: Lab, tmp_path: Path) -> None:
    lab = clean_lab
    lab.exec("web3", EVIL_CONF)
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    inventory["all"]["children"]["web"]["hosts"][ALIAS] = {"ansible_host": lab.hosts["web4"]}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    state = tmp_path / "state"
    args = ("check", PLAYBOOK, "-i", path, "--limit", "web3:~^web4.")

    as_json = opsfix_with_state(*args, "--format", "json", state=state)
    assert as_json.returncode == 2, as_json
    assert not RAW.search(as_json.stdout)  # JSON escapes them itself
    assert "\\u001b[2J" in as_json.stdout
    web3 = as_json.host("web3")
    assert "\x1b[2J" in web3["steps"][0]["before"]["summary"]  # decoded: the raw text
    assert as_json.host(ALIAS)["status"] == "healthy"  # the data is the host's own name

    as_text = opsfix_with_state(*args, state=state)
    assert as_text.returncode == 2, as_text
    assert_shown_escaped(as_text.stdout, "text output")
    assert "web4\\x1b]0;owned\\x07\\r\\nFORGED HEALTHY" in as_text.stdout

    run_id = as_json.report["run_id"]
    for what in (("show", run_id), ("report", run_id), ("report", run_id, "--format", "html")):
        shown = opsfix_with_state(*what, state=state)
        assert shown.returncode == 0, shown
        assert_shown_escaped(shown.stdout, " ".join(what))
