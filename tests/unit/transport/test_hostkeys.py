"""Host key policy: known accepted, changed always refused, new only under trust on first use."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.hostkeys import HostKeys

from opsfix.errors import HostKeyError
from opsfix.transport import hostkeys
from opsfix.transport.hostkeys import (
    KnownHosts,
    VerifyingPolicy,
    fingerprint,
    known_hosts_name,
    preferred_key_types,
)

NAME = "[192.0.2.10]:2222"


def new_key() -> paramiko.PKey:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


def line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


@pytest.fixture
def key() -> paramiko.PKey:
    return new_key()


def policy(files: list[Path], *, trust: bool) -> VerifyingPolicy:
    return VerifyingPolicy("web1", KnownHosts([str(f) for f in files]), trust_new=trust)


def test_fingerprint_matches_openssh(key: paramiko.PKey, tmp_path: Path) -> None:
    pub = tmp_path / "k.pub"
    pub.write_text(line("", key).strip())
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert fingerprint(key) == out.split()[1]


def test_known_hosts_name() -> None:
    assert known_hosts_name("web1.example", 22) == "web1.example"
    assert known_hosts_name("192.0.2.10", 2222) == NAME


def test_check_known_changed_new(key: paramiko.PKey, tmp_path: Path) -> None:
    f = tmp_path / "known_hosts"
    f.write_text(line(NAME, key) + line("other", new_key()))
    known = KnownHosts([str(f)])
    assert known.check(NAME, key) == "known"
    assert known.check(NAME, new_key()) == "changed"
    assert known.check("192.0.2.10", key) == "new"  # port 22 is another entry
    assert known.check("[192.0.2.10]:2223", key) == "new"


def test_hashed_entries_match(key: paramiko.PKey, tmp_path: Path) -> None:
    f = tmp_path / "known_hosts"
    f.write_text(line(HostKeys.hash_host(NAME), key))
    assert KnownHosts([str(f)]).check(NAME, key) == "known"


def test_any_file_holding_the_key_makes_it_known(key: paramiko.PKey, tmp_path: Path) -> None:
    stale, fresh = tmp_path / "stale", tmp_path / "fresh"
    stale.write_text(line(NAME, new_key()))
    fresh.write_text(line(NAME, key))
    assert (
        KnownHosts([str(stale), str(fresh), str(tmp_path / "missing")]).check(NAME, key) == "known"
    )


def test_corrupt_lines_and_markers_are_skipped(key: paramiko.PKey, tmp_path: Path) -> None:
    f = tmp_path / "known_hosts"
    f.write_text("# comment\n\ngarbage\nh ssh-ed25519 !!!notbase64\n@revoked * ssh-rsa AAAA\n"
                 + line(NAME, key))  # fmt: skip
    assert KnownHosts([str(f)]).check(NAME, key) == "known"


def test_unknown_key_refused_with_fingerprint(key: paramiko.PKey, tmp_path: Path) -> None:
    f = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError) as info:
        policy([f], trust=False).missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    assert info.value.host == "web1"
    assert NAME in info.value.reason and fingerprint(key) in info.value.reason
    assert not f.exists()


def test_changed_key_refused_even_when_trusting_new_keys(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    f = tmp_path / "known_hosts"
    old = new_key()
    f.write_text(line(NAME, old))
    before = f.read_bytes()
    with pytest.raises(HostKeyError, match="CHANGED") as info:
        policy([f], trust=True).missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    assert fingerprint(key) in info.value.reason and fingerprint(old) in info.value.reason
    assert f.read_bytes() == before


def test_trust_on_first_use_records_hashed_in_the_first_file(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    first, second = tmp_path / "new" / "known_hosts", tmp_path / "second"
    second.write_text(line("unrelated", new_key()))
    p = policy([first, second], trust=True)
    p.missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    assert first.stat().st_mode & 0o777 == 0o600
    text = first.read_text()
    assert text.startswith("|1|") and NAME not in text and key.get_base64() in text
    assert p.known.check(NAME, key) == "known"
    p.missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    assert first.read_text() == text  # recorded once


def test_record_keeps_the_file_line_structured(key: paramiko.PKey, tmp_path: Path) -> None:
    f = tmp_path / "known_hosts"
    f.write_text(line("other", new_key()).rstrip("\n"))  # no final newline
    KnownHosts([str(f)]).record(NAME, key)
    assert len(f.read_text().splitlines()) == 2
    assert KnownHosts([str(f)]).check(NAME, key) == "known"


def test_known_key_types_are_preferred() -> None:
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert preferred_key_types(offered, []) == offered
    assert preferred_key_types(offered, ["ssh-rsa"])[:3] == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ]
    assert preferred_key_types(offered, ["ecdsa-sha2-nistp256"])[0] == "ecdsa-sha2-nistp256"
    assert sorted(preferred_key_types(offered, ["ssh-rsa"])) == sorted(offered)


# --- markers and patterns, as OpenSSH reads them -------------------------------------------


def test_a_revoked_key_is_refused_even_where_another_file_knows_it(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    known, revoked = tmp_path / "known_hosts", tmp_path / "revoked"
    known.write_text(line(NAME, key))
    revoked.write_text("@revoked * " + line("", key).strip() + "\n")
    with pytest.raises(HostKeyError, match=r"REVOKED: .* is marked @revoked in .*revoked"):
        policy([known, revoked], trust=True).missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    other = new_key()  # another host's key is not touched by it
    known.write_text(line(NAME, other))
    policy([known, revoked], trust=False).missing_host_key(None, NAME, other)  # type: ignore[arg-type]


def test_a_revocation_for_other_hosts_only_does_not_apply(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(line(NAME, key) + "@revoked web9 " + line("", key).strip() + "\n")
    policy([known], trust=False).missing_host_key(None, NAME, key)  # type: ignore[arg-type]


def test_a_host_only_a_certificate_authority_vouches_for_is_refused_plainly(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("@cert-authority *.example,[192.0.2.*]:2222 " + line("", new_key()).strip())
    with pytest.raises(HostKeyError, match="opsfix does not check host certificates") as refused:
        policy([known], trust=True).missing_host_key(None, NAME, key)  # type: ignore[arg-type]
    assert "@cert-authority" in str(refused.value) and "add the host's own key" in str(
        refused.value
    )
    assert "|1|" not in known.read_text()  # trust on first use recorded nothing
    # its own key on file: accepted, as OpenSSH does
    known.write_text(known.read_text() + "\n" + line(NAME, key))
    policy([known], trust=False).missing_host_key(None, NAME, key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("patterns", "name", "matches"),
    [
        ("web*", "web1", True),
        ("web?", "web12", False),
        ("WEB1", "web1", True),
        ("*,!web2", "web2", False),
        ("*,!web2", "web3", True),
        ("[192.0.2.*]:2222", NAME, True),
        ("[192.0.2.1]:2222", NAME, False),  # brackets are literal, not a character class
    ],
)
def test_host_patterns_match_as_openssh_does(
    key: paramiko.PKey, tmp_path: Path, patterns: str, name: str, matches: bool
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(line(patterns, key))
    assert KnownHosts([str(known)]).check(name, key) == ("known" if matches else "new")


def test_a_hashed_name_matches_its_host_only(key: paramiko.PKey, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(line(HostKeys.hash_host(NAME), key))
    assert KnownHosts([str(known)]).check(NAME, key) == "known"
    assert KnownHosts([str(known)]).check("web1", key) == "new"


def test_a_plain_name_is_found_without_matching_every_line(
    key: paramiko.PKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet's known_hosts has a line per host: looking each host up by scanning every
    line costs n² matches (1.6 s of CPU at 1,000 hosts). Plain names are indexed; only
    wildcard, negated and hashed lines are matched one by one."""
    other = new_key()
    names = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    known = tmp_path / "known_hosts"
    known.write_text("".join(line(n, other) for n in names) + line("web*,!web2", key))
    hosts = KnownHosts([str(known)])
    hosts.check(names[0], other)  # parse the file once
    matched: list[str] = []
    real = hostkeys._pattern_matches
    monkeypatch.setattr(hostkeys, "_pattern_matches", lambda n, p: matched.append(p) or real(n, p))
    assert hosts.check(names[-1], other) == "known"
    assert hosts.check("10.9.9.9", other) == "new"
    assert len(matched) <= 4  # the wildcard line's two patterns, per lookup
    assert hosts.check("web1", key) == "known" and hosts.check("web2", key) == "new"


def test_lookups_keep_the_file_order_across_plain_and_pattern_lines(
    key: paramiko.PKey, tmp_path: Path
) -> None:
    first, last = new_key(), new_key()
    known = tmp_path / "known_hosts"
    known.write_text(line("web*", first) + line("WEB1,db1", key) + line("web?", last))
    found = KnownHosts([str(known)]).keys_for("web1")
    assert [k.key for k in found] == [first, key, last]
    assert [k.key for k in KnownHosts([str(known)]).keys_for("db1")] == [key]
