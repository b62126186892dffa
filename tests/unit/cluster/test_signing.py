"""The cluster key and task signatures: what a worker accepts and refuses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opsfix.cluster.bundle import TaskRefused
from opsfix.cluster.signing import ClusterKey, load_key
from opsfix.errors import OptionsError

KEY = b"k" * 32
ENVELOPE = {"host": "web1", "bundle_sha256": "ab" * 32, "expires": time.time() + 60}


def test_a_signed_envelope_verifies_and_any_change_is_refused() -> None:
    key = ClusterKey(KEY)
    signature = key.sign(ENVELOPE)
    key.verify(ENVELOPE, signature)
    changed = {**ENVELOPE, "host": "web2"}
    with pytest.raises(TaskRefused, match="signature does not match"):
        key.verify(changed, signature)


def test_another_key_is_refused() -> None:
    signature = ClusterKey(b"o" * 32).sign(ENVELOPE)
    with pytest.raises(TaskRefused, match="signature does not match"):
        ClusterKey(KEY).verify(ENVELOPE, signature)


def test_an_expired_task_is_refused_even_when_its_signature_is_good() -> None:
    key = ClusterKey(KEY)
    old = {**ENVELOPE, "expires": 1000.0}
    with pytest.raises(TaskRefused, match="expired"):
        key.verify(old, key.sign(old))


def test_the_key_never_shows_in_its_text() -> None:
    key = ClusterKey(KEY)
    assert "k" * 8 not in repr(key) and "k" * 8 not in str(key)


def test_a_short_key_is_refused_saying_how_to_make_one() -> None:
    with pytest.raises(OptionsError, match="at least 32"):
        ClusterKey(b"short")


def test_the_key_file_wins_over_the_variable_and_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "cluster.key"
    path.write_bytes(b"f" * 40 + b"\n")
    path.chmod(0o600)
    env = {"OPSFIX_CLUSTER_KEY": "e" * 40}
    from_file = load_key(path, env)
    assert from_file.sign(ENVELOPE) == ClusterKey(b"f" * 40).sign(ENVELOPE)
    assert load_key(None, env).sign(ENVELOPE) == ClusterKey(b"e" * 40).sign(ENVELOPE)
    path.chmod(0o640)
    with pytest.raises(OptionsError, match="others may read it"):
        load_key(None, {"OPSFIX_CLUSTER_KEY_FILE": str(path)})


def test_no_key_at_all_says_where_to_put_one() -> None:
    with pytest.raises(OptionsError, match="OPSFIX_CLUSTER_KEY_FILE"):
        load_key(None, {})
