"""SSH options from the inventory's ssh arguments and from ssh_config: applied or refused.

Ansible passes `ansible_ssh_args`, the inventory's port, key, user and timeout, then
`ansible_ssh_common_args` and `ansible_ssh_extra_args` to ssh in that order, and ssh
keeps the first value it gets for each option, then fills the rest from ssh_config.
opsfix merges them the same way. Every option is applied (APPLIED), has nothing to do in
opsfix's connection (UNNEEDED, with why), or is refused with why (REFUSED, or unknown).
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterable

from opsfix.errors import InventoryError

ARG_VARS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")
FLAGS = {"-J": "proxyjump", "-p": "port", "-i": "identityfile", "-l": "user"}
FLAG_HELP = "-o Key=Value, -J, -p, -i, -l and -C"

APPLIED = frozenset(
    {
        "hostname",
        "port",
        "user",
        "identityfile",
        "proxyjump",
        "proxycommand",
        "userknownhostsfile",
        "globalknownhostsfile",
        "stricthostkeychecking",
        "connecttimeout",
        "compression",
    }
)

_KEYS_ONLY = "opsfix logs in with keys only (given key, else agent and default keys)"
_FORWARDS = "opsfix forwards nothing (agent, X11, ports): its commands need none"
_NO_PROMPT = "opsfix never prompts for SSH"
_KEPT = "opsfix keeps its own connections between runs (--persist), like ControlPersist"
_OWN_ALGORITHMS = "opsfix negotiates with paramiko's algorithms; it cannot restrict them"
_AS_GIVEN = "applied by OpenSSH's own resolution (ssh -G) before opsfix reads the result"
_LOCAL_ONLY = "only affects the ssh program's own output on this machine"

UNNEEDED: dict[str, str] = {
    "identitiesonly": "opsfix offers the given key alone, never the agent's others",
    "batchmode": _NO_PROMPT,
    "passwordauthentication": _KEYS_ONLY,
    "kbdinteractiveauthentication": _KEYS_ONLY,
    "challengeresponseauthentication": _KEYS_ONLY,
    "pubkeyauthentication": _KEYS_ONLY,
    "preferredauthentications": _KEYS_ONLY,
    "gssapiauthentication": _KEYS_ONLY,
    "gssapidelegatecredentials": _KEYS_ONLY,
    "hostbasedauthentication": _KEYS_ONLY,
    "numberofpasswordprompts": _NO_PROMPT,
    "controlmaster": _KEPT,
    "controlpersist": _KEPT,
    "controlpath": _KEPT,
    "forwardagent": _FORWARDS,
    "forwardx11": _FORWARDS,
    "forwardx11trusted": _FORWARDS,
    "forwardx11timeout": _FORWARDS,
    "clearallforwardings": _FORWARDS,
    "exitonforwardfailure": _FORWARDS,
    "gatewayports": _FORWARDS,
    "xauthlocation": _FORWARDS,
    "addkeystoagent": "opsfix loads the key itself and adds nothing to the agent",
    "sendenv": "opsfix sends no environment variables",
    "serveraliveinterval": "every command has its own deadline (--command-timeout)",
    "serveralivecountmax": "every command has its own deadline (--command-timeout)",
    "tcpkeepalive": "every command has its own deadline (--command-timeout)",
    "connectionattempts": "opsfix tries each host once per run (--retry-failed)",
    "hashknownhosts": "opsfix records new keys (--trust-new-host-keys) in its own format",
    "checkhostip": "host keys are checked by the name and port opsfix connects to",
    "updatehostkeys": "opsfix never rewrites known keys",
    "verifyhostkeydns": "host keys are checked against known_hosts only",
    "visualhostkey": _LOCAL_ONLY,
    "fingerprinthash": _LOCAL_ONLY,
    "loglevel": _LOCAL_ONLY,
    "logverbose": _LOCAL_ONLY,
    "syslogfacility": _LOCAL_ONLY,
    "escapechar": _LOCAL_ONLY,
    "enableescapecommandline": _LOCAL_ONLY,
    "requesttty": "a terminal is opened only where su or doas ask for a password",
    "ipqos": "a packet marking with no effect on what runs",
    "rekeylimit": "paramiko re-keys on its own schedule",
    "addressfamily": "the address is connected to as resolved",
    "canonicalizehostname": _AS_GIVEN,
    "canonicaldomains": _AS_GIVEN,
    "canonicalizefallbacklocal": _AS_GIVEN,
    "canonicalizemaxdots": _AS_GIVEN,
    "canonicalizepermittedcnames": _AS_GIVEN,
    "nohostauthenticationforlocalhost": "host keys are checked for every host, localhost too",
    "streamlocalbindmask": _FORWARDS,
    "streamlocalbindunlink": _FORWARDS,
    "permitremoteopen": _FORWARDS,
    "enablesshkeysign": _KEYS_ONLY,
    "requiredrsasize": _OWN_ALGORITHMS,
    "gssapikeyexchange": _KEYS_ONLY,
    "gssapikexalgorithms": _KEYS_ONLY,
    "gssapirenewalforcesrekey": _KEYS_ONLY,
    "gssapitrustdns": _KEYS_ONLY,
    "gssapiclientidentity": _KEYS_ONLY,
    "gssapiserveridentity": _KEYS_ONLY,
    "casignaturealgorithms": "certificates are not used",
    "protocol": "SSH protocol 2 is the only one",
    "sessiontype": "opsfix opens its own sessions",
    "stdinnull": "opsfix opens its own sessions",
    "forkafterauthentication": "opsfix opens its own sessions",
}

_ALGORITHMS = (
    "opsfix negotiates with paramiko's own algorithm lists and cannot honour a restriction"
)
REFUSED: dict[str, str] = {
    "remotecommand": "it would run another command than opsfix's checks and repairs",
    "localcommand": "it runs a command on this machine at every login",
    "permitlocalcommand": "it runs a command on this machine at every login",
    "certificatefile": "certificate logins are not supported: use a plain key",
    "pkcs11provider": "PKCS#11 keys are not supported: use ssh-agent",
    "securitykeyprovider": "security keys are not supported: use ssh-agent",
    "identityagent": "opsfix uses the agent at $SSH_AUTH_SOCK only",
    "hostkeyalias": "host keys are checked by the name and port connected to, not an alias",
    "knownhostscommand": "host keys come from known_hosts files only",
    "bindaddress": "opsfix connects from the default source address",
    "bindinterface": "opsfix connects from the default source address",
    "proxyusefdpass": "ProxyCommand's output is used as the connection itself",
    "localforward": _FORWARDS,
    "remoteforward": _FORWARDS,
    "dynamicforward": _FORWARDS,
    "tunnel": _FORWARDS,
    "tunneldevice": _FORWARDS,
    "setenv": "opsfix sets no environment variables for its commands",
    "ciphers": _ALGORITHMS,
    "macs": _ALGORITHMS,
    "kexalgorithms": _ALGORITHMS,
    "hostkeyalgorithms": _ALGORITHMS,
    "pubkeyacceptedalgorithms": _ALGORITHMS,
    "pubkeyacceptedkeytypes": _ALGORITHMS,
    "hostbasedacceptedalgorithms": _ALGORITHMS,
    "revokedhostkeys": "revoked keys are read from known_hosts (@revoked) only",
    "obscurekeystroketiming": _LOCAL_ONLY,
}

WEAK_CHECKING = (
    "it would accept a changed host key, which opsfix never does; run with "
    "--trust-new-host-keys to accept keys of hosts never seen before (new keys only), "
    "or remove it"
)
WEAK_KNOWN_HOSTS = (
    "it would forget every host key; run with --trust-new-host-keys to accept keys of "
    "hosts never seen before (recorded, new keys only), or remove it"
)


def parse_args(host: str, var: str, text: str) -> list[tuple[str, str]]:
    """(keyword, value) pairs from one ssh argument string, in order; refuses the rest."""
    try:
        words = _split(text)
    except ValueError as e:
        raise _refused(host, var, f"{text!r} cannot be split as a shell would: {e}") from None
    pairs: list[tuple[str, str]] = []
    rest = iter(words)
    for word in rest:
        if word == "-C":
            pairs.append(("compression", "yes"))
            continue
        flag = word[:2]
        if flag != "-o" and flag not in FLAGS:
            raise _refused(host, var, f"{word!r}: opsfix applies only {FLAG_HELP}")
        value = word[2:] or next(rest, None)
        if value is None:
            raise _refused(host, var, f"{flag} needs a value")
        pairs.append(_option(host, var, value) if flag == "-o" else (FLAGS[flag], value))
    return pairs


@functools.lru_cache(maxsize=256)
def _split(text: str) -> tuple[str, ...]:
    """shlex.split, once per distinct text: a group's ssh args are every host's, and
    shlex reads a character at a time in Python (~0.2 ms a host)."""
    return tuple(shlex.split(text))


def _option(host: str, var: str, text: str) -> tuple[str, str]:
    """`Key=Value` or `Key Value`, as ssh -o takes it."""
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.strip().partition(" ")
    if not key.strip() or not value.strip():
        raise _refused(host, var, f"-o {text!r}: expected Key=Value")
    return key.strip().lower(), value.strip()


def check(host: str, where: str, pairs: Iterable[tuple[str, str]], *, trust_new: bool) -> None:
    """Refuse the first option opsfix cannot honour; `where` names its source."""
    for key, value in pairs:
        why = refusal(key, value, trust_new=trust_new)
        if why:
            raise _refused(host, where, f"{key}={value}: {why}" if value else f"{key}: {why}")


def refusal(key: str, value: str, *, trust_new: bool) -> str | None:
    """Why opsfix cannot honour `key value`, or None when it applies it or needs not."""
    lowered = value.strip().lower()
    if key == "stricthostkeychecking" and lowered in ("no", "off", "false"):
        return None if trust_new else WEAK_CHECKING
    if key == "userknownhostsfile" and "/dev/null" in lowered.split():
        return None if trust_new else WEAK_KNOWN_HOSTS
    if key in APPLIED or key in UNNEEDED:
        return None
    return REFUSED.get(key, "an ssh option opsfix does not know, so it cannot honour it")


def _refused(host: str, where: str, why: str) -> InventoryError:
    return InventoryError(f"host {host!r}: {where}: refused: {why}")


__all__ = ["APPLIED", "ARG_VARS", "REFUSED", "UNNEEDED", "check", "parse_args", "refusal"]
