"""luna2d.store.crypto: the KEYFILE is created private and reused, secret
values round-trip through Fernet and only under their own key, and user
passwords are kept as salted scrypt hashes that verify only the right
password."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.fernet import Fernet
from twisted.trial import unittest

from luna2d.errors import ConfigError
from luna2d.store import crypto


class KeyFileTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)

    def test_created_with_mode_0600(self) -> None:
        """A missing key file is created, with its folder, readable by its owner only."""
        path = self.folder / "sub" / "luna.key"
        key = crypto.load_or_create_key(path)
        self.assertTrue(path.is_file())
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(path.read_bytes().strip(), key)
        Fernet(key)  # a usable Fernet key

    def test_reused_after(self) -> None:
        """A second start reads the same key and leaves the file alone."""
        path = self.folder / "luna.key"
        first = crypto.load_or_create_key(path)
        content = path.read_bytes()
        second = crypto.load_or_create_key(path)
        self.assertEqual(first, second)
        self.assertEqual(path.read_bytes(), content)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_existing_key_used(self) -> None:
        """A key file put there by the admin is used as it is."""
        path = self.folder / "luna.key"
        key = Fernet.generate_key()
        path.write_bytes(key + b"\n")
        self.assertEqual(crypto.load_or_create_key(path), key)

    def test_unusable_key_file(self) -> None:
        """A key file that holds no Fernet key is a ConfigError naming [FILES] KEYFILE."""
        path = self.folder / "luna.key"
        path.write_bytes(b"not a key\n")
        exc = self.assertRaises(ConfigError, crypto.load_or_create_key, path)
        self.assertTrue(str(exc).startswith("[FILES] KEYFILE: "), str(exc))
        self.assertIn(str(path), str(exc))


class EncryptionTests(unittest.TestCase):
    def test_round_trip(self) -> None:
        """decrypt(encrypt(x)) is x, for unicode and multi-line values too."""
        box = crypto.Crypto(Fernet.generate_key())
        for text in ("s3cret", "", "ünïcødé ✓", "line one\nline two\n" * 100):
            token = box.encrypt(text)
            self.assertIsInstance(token, str)
            if text:
                self.assertNotIn(text, token)
            self.assertEqual(box.decrypt(token), text)
            self.assertEqual(box.decrypt(token.encode("ascii")), text)

    def test_ciphertext_is_salted(self) -> None:
        """The same value encrypts differently each time (no equality leaks)."""
        box = crypto.Crypto(Fernet.generate_key())
        self.assertNotEqual(box.encrypt("same"), box.encrypt("same"))

    def test_wrong_key_fails(self) -> None:
        """A value encrypted under one key does not decrypt under another:
        ValueError naming the KEYFILE, not garbage."""
        token = crypto.Crypto(Fernet.generate_key()).encrypt("s3cret")
        other = crypto.Crypto(Fernet.generate_key())
        exc = self.assertRaises(ValueError, other.decrypt, token)
        self.assertIn("KEYFILE", str(exc))

    def test_tampered_token_fails(self) -> None:
        """A modified ciphertext is refused."""
        box = crypto.Crypto(Fernet.generate_key())
        token = box.encrypt("s3cret")
        tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        self.assertRaises(ValueError, box.decrypt, tampered)


class PasswordTests(unittest.TestCase):
    def test_hash_verifies(self) -> None:
        """A hash verifies its own password and rejects others."""
        stored = crypto.hash_password("correct horse")
        self.assertTrue(crypto.check_password("correct horse", stored))
        self.assertFalse(crypto.check_password("correct horsE", stored))
        self.assertFalse(crypto.check_password("", stored))

    def test_hash_is_salted_scrypt(self) -> None:
        """Hashes are scrypt$salt$hash, never hold the password, and differ per call."""
        first = crypto.hash_password("password123")
        second = crypto.hash_password("password123")
        self.assertTrue(first.startswith("scrypt$"))
        self.assertEqual(len(first.split("$")), 3)
        self.assertNotIn("password123", first)
        self.assertNotEqual(first, second)
        self.assertTrue(crypto.check_password("password123", second))

    def test_unusable_hash(self) -> None:
        """The stand-in for a missing user is well formed, matches no
        password (not even empty or its own text) and costs one derivation."""
        self.assertEqual([len(part) for part in crypto.UNUSABLE_HASH.split("$")], [6, 24, 44])
        for password in ("", "password123", crypto.UNUSABLE_HASH):
            self.assertFalse(crypto.check_password(password, crypto.UNUSABLE_HASH))

    def test_every_check_costs_one_derivation(self) -> None:
        """A check against a real hash, the unusable hash or a malformed
        stored value makes exactly one scrypt derivation of the same length."""
        stored = crypto.hash_password("password123")
        calls: list[int] = []
        derive = crypto._derive

        def counted(password: str, salt: bytes, length: int) -> bytes:
            calls.append(length)
            return derive(password, salt, length)

        self.patch(crypto, "_derive", counted)
        for value in (
            stored,
            crypto.UNUSABLE_HASH,
            "",
            "md5$abc$def",
            "scrypt$!!$??",
            "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        ):
            calls.clear()
            crypto.check_password("password123", value)
            self.assertEqual(calls, [32], value)

    def test_malformed_hash_rejects(self) -> None:
        """A stored value that is not a hash never verifies anything."""
        for stored in (
            "",
            "password123",
            "md5$abc$def",
            "scrypt$only",
            "scrypt$!!$??",
            "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        ):
            self.assertFalse(crypto.check_password("password123", stored), stored)
