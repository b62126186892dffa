"""Ansible Vault: `!vault` values and encrypted files, decrypted as Ansible does.

Format 1.1 (`$ANSIBLE_VAULT;1.1;AES256`) and 1.2 (`...;1.2;AES256;LABEL`, a vault ID):
the hex body holds a salt, an HMAC and the ciphertext; PBKDF2-HMAC-SHA256 (10000 rounds)
of the password and salt gives the AES-256 key, the HMAC key and the CTR counter. The
HMAC is checked before anything is decrypted. A decrypted value is a `Secret`: masked in
every output, history and report, revealed only where it is used.

The passwords come from the command line (`--vault-password-file`, `--vault-id`,
`--ask-vault-pass`) or `ANSIBLE_VAULT_PASSWORD_FILE`, as with ansible-playbook; they are
read once, when the CLI starts (`configure`), and only when something is encrypted does
anything try them.
"""

from __future__ import annotations

import binascii
import hmac as std_hmac
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsfix.errors import InventoryError, Location, OptionsError
from opsfix.secret import Secret

HEADER = "$ANSIBLE_VAULT"
ENV_PASSWORD_FILE = "ANSIBLE_VAULT_PASSWORD_FILE"
HOW_TO_GIVE = "give --vault-password-file, --vault-id, --ask-vault-pass or $" + ENV_PASSWORD_FILE


class VaultError(ValueError):
    """Encrypted text that cannot be decrypted (no password fits, or it is malformed)."""


@dataclass(frozen=True)
class VaultPassword:
    vault_id: str
    password: bytes = field(repr=False)


_lock = threading.Lock()
_passwords: list[VaultPassword] = []


def configure(passwords: Sequence[VaultPassword]) -> None:
    """The passwords this process decrypts with (the CLI sets them once)."""
    with _lock:
        _passwords[:] = list(passwords)


def passwords_from_options(
    files: Sequence[str],
    vault_ids: Sequence[str],
    ask: bool,
    prompt: Callable[[str], str] | None = None,
    env: dict[str, str] | None = None,
) -> list[VaultPassword]:
    """Every password the options name, in order; `label@source` for a vault ID, where
    source is a file (run when executable, as Ansible does) or `prompt`."""
    found = [_read_source("default", f) for f in files]
    for given in vault_ids:
        label, sep, source = given.partition("@")
        if not sep:
            label, source = "default", given
        found.append(
            _prompted(label, prompt) if source == "prompt" else _read_source(label, source)
        )
    if ask:
        found.append(_prompted("default", prompt))
    env_file = (os.environ if env is None else env).get(ENV_PASSWORD_FILE)
    if env_file and not found:
        found.append(_read_source("default", env_file))
    return found


def _prompted(label: str, prompt: Callable[[str], str] | None) -> VaultPassword:
    import getpass

    ask = prompt or getpass.getpass
    suffix = f" ({label})" if label != "default" else ""
    return VaultPassword(label, ask(f"Vault password{suffix}: ").encode())


def _read_source(label: str, source: str) -> VaultPassword:
    path = Path(source).expanduser()
    try:
        if os.access(path, os.X_OK) and path.is_file():
            done = subprocess.run(
                [str(path), "--vault-id", label], capture_output=True, timeout=60, check=False
            )
            if done.returncode != 0:
                raise OptionsError(f"vault password script {source} exited {done.returncode}")
            data = done.stdout
        else:
            data = path.read_bytes()
    except OSError as exc:
        raise OptionsError(f"vault password file {source}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise OptionsError(f"vault password script {source} gave no answer in 60s") from None
    password = data.strip()
    if not password:
        raise OptionsError(f"vault password file {source} is empty")
    return VaultPassword(label, password)


# --- decrypting -------------------------------------------------------------------------------


def is_encrypted(text: str) -> bool:
    return text.lstrip().startswith(HEADER + ";")


def decrypt(vaulttext: str, passwords: Iterable[VaultPassword] | None = None) -> bytes:
    """The plaintext of one vault envelope; the password whose ID matches is tried first."""
    header, _, body = vaulttext.strip().partition("\n")
    fields = header.strip().split(";")
    if len(fields) < 3 or fields[0] != HEADER or fields[1] not in ("1.1", "1.2"):
        raise VaultError(f"not an Ansible Vault envelope: {header[:40]!r}")
    if fields[2].strip() != "AES256":
        raise VaultError(f"cipher {fields[2]!r} is not supported (AES256 only)")
    label = fields[3].strip() if fields[1] == "1.2" and len(fields) > 3 else ""
    salt, mac, ciphertext = _parts(body)
    with _lock:
        known = list(_passwords) if passwords is None else list(passwords)
    if not known:
        raise VaultError(f"it is encrypted with Ansible Vault: {HOW_TO_GIVE}")
    known.sort(key=lambda p: p.vault_id != label)
    for candidate in known:
        keys = _derive(candidate.password, salt)
        if std_hmac.compare_digest(_mac(keys[32:64], ciphertext), mac):
            return _aes_ctr(keys[:32], keys[64:80], ciphertext)
    tried = ", ".join(dict.fromkeys(p.vault_id for p in known))
    named = f" (vault ID {label!r})" if label else ""
    raise VaultError(f"no vault password given decrypts it{named}; tried vault IDs: {tried}")


def _parts(body: str) -> tuple[bytes, bytes, bytes]:
    try:
        inner = binascii.unhexlify("".join(body.split()))
        salt, mac, ciphertext = inner.split(b"\n", 2)
        return (
            binascii.unhexlify(salt),
            binascii.unhexlify(mac),
            binascii.unhexlify(ciphertext.strip()),
        )
    except (binascii.Error, ValueError):
        raise VaultError("the vault envelope is damaged (not the hex Ansible writes)") from None


def _derive(password: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=10000).derive(
        password
    )


def _mac(key: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes, hmac

    signer = hmac.HMAC(key, hashes.SHA256())
    signer.update(data)
    return signer.finalize()


def _aes_ctr(key: bytes, counter: bytes, ciphertext: bytes) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultError("the vault envelope is damaged (bad padding)") from None


# --- where vaulted data meets the inventory ----------------------------------------------------


def file_text(text: str, where: Location) -> str:
    """A file's text, decrypted first when the whole file is a vault envelope."""
    if not is_encrypted(text):
        return text
    try:
        return decrypt(text).decode("utf-8")
    except VaultError as exc:
        raise InventoryError(f"encrypted file: {exc}", where) from None
    except UnicodeDecodeError:
        raise InventoryError("encrypted file: its plaintext is not UTF-8", where) from None


def as_secrets(data: Any) -> Any:
    """Every string inside an encrypted vars file's data as a Secret (keys stay plain;
    mappings are changed in place, so they keep the positions they were read at)."""
    if isinstance(data, dict):
        for key in list(data):
            data[key] = as_secrets(data[key])
        return data
    if isinstance(data, list):
        return [as_secrets(v) for v in data]
    return Secret(data) if isinstance(data, str) else data


__all__ = [
    "ENV_PASSWORD_FILE",
    "VaultError",
    "VaultPassword",
    "as_secrets",
    "configure",
    "decrypt",
    "file_text",
    "is_encrypted",
    "passwords_from_options",
]
