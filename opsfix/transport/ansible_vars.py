"""The one place that says what opsfix does with every `ansible_*` variable it meets.

An Ansible user's inventory carries connection and become settings that opsfix must either
honour or refuse out loud: a setting silently ignored (a bastion, a become method) makes a
run reach the wrong host or act as the wrong user. Each name is in HONOURED (with what it
does here; some take effect by being unneeded, e.g. no Python runs on hosts) or in REFUSED
(with why and what to write instead). A variable in neither is refused as unknown. Values
that are honoured only in part (a become method, ssh arguments) are checked where they are
read, with the same message shape: host, variable, why.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from opsfix.errors import InventoryError

_INERT_PYTHON = "nothing to do: opsfix runs POSIX shell on hosts, never Python or modules"
_KEPT = "opsfix keeps its own connections between runs (--persist), like ControlPersist"
_NO_PROGRAM = "opsfix speaks SSH itself (paramiko) and runs no ssh/scp/sftp program"
_NO_PASSWORD = (
    "SSH password logins are not supported: use a key (ansible_ssh_private_key_file) or ssh-agent"
)
_OLD_BECOME = "an old name Ansible keeps for one become method: write ansible_become_{} instead"

HONOURED: dict[str, str] = {
    "ansible_host": "the address to connect to",
    "ansible_ssh_host": "the address to connect to (older name of ansible_host)",
    "ansible_port": "the SSH port",
    "ansible_ssh_port": "the SSH port (older name of ansible_port)",
    "ansible_user": "the login user",
    "ansible_ssh_user": "the login user (older name of ansible_user)",
    "ansible_connection": "the transport: ssh (also smart, paramiko), local, or one an "
    "installed package adds (`opsfix plugins` lists them); any other is refused",
    "ansible_ssh_private_key_file": "the private key (offered alone)",
    "ansible_private_key_file": "the private key (offered alone)",
    "ansible_ssh_common_args": "-o Key=Value, -J, -p, -i, -l, -C are applied; others refused",
    "ansible_ssh_extra_args": "-o Key=Value, -J, -p, -i, -l, -C are applied; others refused",
    "ansible_ssh_args": "-o Key=Value, -J, -p, -i, -l, -C are applied; others refused",
    "ansible_timeout": "the connect timeout, seconds",
    "ansible_ssh_timeout": "the connect timeout, seconds",
    "ansible_host_key_checking": "true is opsfix's only way; false is refused",
    "ansible_ssh_host_key_checking": "true is opsfix's only way; false is refused",
    "ansible_become": "run checks and repairs as the become user",
    "ansible_become_user": "the become user (default root)",
    "ansible_become_method": "sudo, su or doas; others are refused",
    "ansible_become_password": "the become password (kept secret, sent on stdin or the pty)",
    "ansible_become_pass": "the become password (older name)",
    "ansible_shell_type": "sh only: every script opsfix sends is POSIX shell",
    "ansible_shell_executable": "/bin/sh only: every script opsfix sends runs under /bin/sh",
    "ansible_group_priority": "the order group variables merge in, as in Ansible",
    "ansible_python_interpreter": _INERT_PYTHON,
    "ansible_interpreter_python_fallback": _INERT_PYTHON,
    "ansible_facts_modules": _INERT_PYTHON,
    "ansible_module_compression": _INERT_PYTHON,
    "ansible_python_module_rlimit_nofile": _INERT_PYTHON,
    "ansible_no_target_syslog": _INERT_PYTHON,
    "ansible_target_log_info": _INERT_PYTHON,
    "ansible_deprecation_warnings": "nothing to do: an Ansible warning switch",
    "ansible_pipelining": "nothing to do: opsfix sends each script within its command",
    "ansible_ssh_pipelining": "nothing to do: opsfix sends each script within its command",
    "ansible_ssh_transfer_method": "nothing to do: files go over SFTP inside the connection",
    "ansible_sftp_batch_mode": "nothing to do: files go over SFTP inside the connection",
    "ansible_control_path": _KEPT,
    "ansible_control_path_dir": _KEPT,
    "ansible_ssh_use_tty": "nothing to do: a terminal is opened only where su or doas ask",
    "ansible_ssh_verbosity": "nothing to do: opsfix -v shows how each host is reached",
    "ansible_remote_tmp": "nothing to do: long scripts are staged in /tmp, private, and removed",
    "ansible_system_tmpdirs": "nothing to do: long scripts are staged in /tmp",
    "ansible_async_dir": "nothing to do: opsfix runs no async jobs",
    "ansible_admin_users": "nothing to do: opsfix's staged scripts are private to the login",
    "ansible_common_remote_group": "nothing to do: opsfix's staged scripts are private",
    "ansible_shell_allow_world_readable_temp": "nothing to do: staged scripts stay private",
    "ansible_local_become_strip_preamble": "nothing to do: local become reads no prompt",
    "ansible_local_become_success_timeout": "nothing to do: local become reads no prompt",
}

REFUSED: dict[str, str] = {
    "ansible_password": _NO_PASSWORD,
    "ansible_ssh_pass": _NO_PASSWORD,
    "ansible_ssh_password": _NO_PASSWORD,
    "ansible_ssh_password_mechanism": _NO_PASSWORD,
    "ansible_sshpass_prompt": _NO_PASSWORD,
    "ansible_private_key": "a key given inline is not supported: give a key file "
    "(ansible_ssh_private_key_file)",
    "ansible_ssh_private_key": "a key given inline is not supported: give a key file "
    "(ansible_ssh_private_key_file)",
    "ansible_private_key_passphrase": "encrypted keys are not unlocked by opsfix: add the "
    "key to ssh-agent",
    "ansible_ssh_private_key_passphrase": "encrypted keys are not unlocked by opsfix: add "
    "the key to ssh-agent",
    "ansible_ssh_pkcs11_provider": "PKCS#11 keys are not supported: use ssh-agent",
    "ansible_ssh_executable": _NO_PROGRAM,
    "ansible_scp_executable": _NO_PROGRAM,
    "ansible_sftp_executable": _NO_PROGRAM,
    "ansible_scp_extra_args": _NO_PROGRAM,
    "ansible_sftp_extra_args": _NO_PROGRAM,
    "ansible_ssh_retries": "opsfix tries each host once per run; run again or use --retry-failed",
    "ansible_become_exe": "opsfix runs the become method's own program (sudo, su, doas) "
    "from the host's PATH",
    "ansible_become_flags": "opsfix sets the become program's flags itself; flags it "
    "does not know could change who runs the commands",
    "ansible_sudo_exe": "opsfix runs sudo from the host's PATH",
    "ansible_sudo_flags": "opsfix sets sudo's flags itself",
    "ansible_sudo_chdir": "opsfix's scripts do not depend on the working directory",
    "ansible_su_exe": "opsfix runs su from the host's PATH",
    "ansible_su_flags": "opsfix sets su's flags itself",
    "ansible_su_prompt_l10n": "opsfix recognises su's password prompt itself",
    "ansible_sudo_user": _OLD_BECOME.format("user"),
    "ansible_sudo_pass": _OLD_BECOME.format("password"),
    "ansible_su_user": _OLD_BECOME.format("user"),
    "ansible_su_pass": _OLD_BECOME.format("password"),
    "ansible_connection_user": "an internal Ansible variable: set ansible_user",
    "ansible_network_os": "network devices are not supported: opsfix repairs Linux hosts",
    "ansible_docker_extra_args": "no docker transport is built in (`opsfix plugins` lists "
    "the transports this installation has)",
    "ansible_win_async_startup_timeout": "Windows hosts are not supported",
}
_PARAMIKO = "the paramiko connection's own name: write ansible_{} instead"
REFUSED.update(
    {
        "ansible_paramiko_host": _PARAMIKO.format("host"),
        "ansible_paramiko_port": _PARAMIKO.format("port"),
        "ansible_paramiko_user": _PARAMIKO.format("user"),
        "ansible_paramiko_private_key_file": _PARAMIKO.format("ssh_private_key_file"),
        "ansible_paramiko_timeout": _PARAMIKO.format("timeout"),
        "ansible_paramiko_proxy_command": _PARAMIKO.format("ssh_common_args: -o ProxyCommand=..."),
        "ansible_paramiko_pass": _NO_PASSWORD,
        "ansible_paramiko_password": _NO_PASSWORD,
        "ansible_paramiko_host_key_checking": _PARAMIKO.format("host_key_checking"),
        "ansible_paramiko_use_rsa_sha2_algorithms": "opsfix negotiates key algorithms itself",
    }
)

# Set by Ansible while it runs; an inventory that sets them would be read differently.
RESERVED = frozenset(
    {
        "ansible_facts",
        "ansible_version",
        "ansible_limit",
        "ansible_forks",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_batch",
        "ansible_playbook_python",
        "ansible_inventory_sources",
        "ansible_config_file",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_verbosity",
        "ansible_check_mode",
        "ansible_diff_mode",
    }
)


def verdict(name: str) -> tuple[bool, str]:
    """Whether opsfix honours the variable `name`, and what it does or why not."""
    if name in HONOURED:
        return True, HONOURED[name]
    if name.endswith("_interpreter"):  # ansible_<lang>_interpreter
        return True, _INERT_PYTHON
    if name in REFUSED:
        return False, REFUSED[name]
    if name in RESERVED:
        return False, "reserved: Ansible sets it while it runs; an inventory must not"
    close = difflib.get_close_matches(name, [*HONOURED, *REFUSED], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return False, f"unknown to opsfix, so it cannot tell what it would change{hint}"


def check_host_vars(host: str, variables: Mapping[str, Any]) -> None:
    """Refuse the first `ansible_*` variable opsfix does not honour (exit 4, nothing runs)."""
    for name in sorted(variables):
        if name.startswith("ansible_"):
            honoured, why = verdict(name)
            if not honoured:
                raise InventoryError(f"host {host!r}: {name}: refused: {why}")


def refuse(host: str, name: str, why: str) -> InventoryError:
    """The error for a variable whose value opsfix cannot honour, in the one shape."""
    return InventoryError(f"host {host!r}: {name}: refused: {why}")


__all__ = ["HONOURED", "REFUSED", "RESERVED", "check_host_vars", "refuse", "verdict"]
