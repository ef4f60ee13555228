"""Secrets at rest and password hashes.

Secret values (node and group secrets, BMC passwords, SNMP write
communities) are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
key kept in the ini's KEYFILE, created with mode 0600 on first start.
User passwords are kept only as salted scrypt hashes; hashing is slow on
purpose, so callers run it in a thread."""

from __future__ import annotations

import base64
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

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | bytes) -> str:
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise ValueError("a stored secret does not decrypt with this KEYFILE") from None


def hash_password(password: str) -> str:
    """A salted scrypt hash, as ``scrypt$salt$hash`` (slow: run in a thread)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    """Compare ``password`` with a stored hash in constant time (slow)."""
    try:
        scheme, salt64, digest64 = stored.split("$")
        salt = base64.b64decode(salt64)
        expected = base64.b64decode(digest64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=len(expected), **_SCRYPT)
    return hmac.compare_digest(digest, expected)
