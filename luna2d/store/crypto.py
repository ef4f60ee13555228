# -*- test-case-name: tests.test_crypto,tests.test_api_auth -*-
"""Secrets at rest and password hashes.

Secret values (node and group secrets, BMC passwords, SNMP write
communities) are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
key kept in the ini's KEYFILE, created with mode 0600 on first start.
User passwords are kept only as salted scrypt hashes; hashing is slow on
purpose, so callers run it in a thread. Every password check, whether the
name is the ini admin, a store user or nobody, costs one scrypt derivation
with the same parameters: ``UNUSABLE_HASH`` stands in for a missing user."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from luna2d.errors import ConfigError

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def load_or_create_key(path: Path) -> bytes:
    """Read the Fernet key at ``path``, creating it (mode 0600) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        return key
    try:
        key = path.read_bytes().strip()
        Fernet(key)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[FILES] KEYFILE: {path} is not a usable key file ({exc})") from None
    return key


class Crypto:
    """Encrypts and decrypts secret values with one key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str | bytes) -> str:
        """A token for ``plaintext`` (a text is encrypted as its UTF-8)."""
        raw = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        return self._fernet.encrypt(raw).decode("ascii")

    def decrypt(self, token: str | bytes) -> str:
        return self.decrypt_bytes(token).decode("utf-8")

    def decrypt_bytes(self, token: str | bytes) -> bytes:
        """The bytes a token holds (a secret's content may be binary)."""
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise ValueError("a stored secret does not decrypt with this KEYFILE") from None


def _derive(password: str, salt: bytes, length: int) -> bytes:
    """The one scrypt derivation every hash and check goes through."""
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=length, **_SCRYPT)


def _encode(salt: bytes, digest: bytes) -> str:
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def hash_password(password: str) -> str:
    """A salted scrypt hash, as ``scrypt$salt$hash`` (slow: run in a thread)."""
    salt = os.urandom(16)
    return _encode(salt, _derive(password, salt, 32))


def check_password(password: str, stored: str) -> bool:
    """Compare ``password`` with a stored hash in constant time (slow). A
    stored value that is not a luna2d scrypt hash matches nothing, after
    the same work as one that is."""
    usable = True
    try:
        scheme, salt64, digest64 = stored.split("$")
        salt = base64.b64decode(salt64, validate=True)
        expected = base64.b64decode(digest64, validate=True)
        usable = scheme == "scrypt" and len(expected) == 32
    except (ValueError, binascii.Error):
        usable = False
    if not usable:
        salt, expected = _UNUSABLE
    digest = _derive(password, salt, 32)
    return hmac.compare_digest(digest, expected) and usable


# A well-formed hash that no password matches (its digest is random, not
# derived): checked against when the name is unknown, so that an unknown
# name costs the same scrypt work as a known one.
_UNUSABLE = (os.urandom(16), os.urandom(32))
UNUSABLE_HASH = _encode(*_UNUSABLE)
