"""RMCP+ key exchange and session crypto against known vectors.

The vectors follow the IPMI v2.0 key derivations (section 13.31/13.32:
RAKP 2 and 3 codes keyed by Kuid, SIK = HMAC_KG(Rm|Rc|ROLEm|ULENGTHm|UNAMEm),
K1/K2 = HMAC_SIK(0x01/0x02 x 20), the RAKP 4 value truncated to the
integrity length) for fixed inputs. Each value is checked twice: as a
literal, and against an independent computation in this module built
differently (stdlib ``hmac``/``hashlib``, byte order by shifting), so a slip
in either shows. AES-CBC-128 with the IPMI pad is checked against the
``openssl enc`` command. The SHA-1 suite is also proven against OpenIPMI's
ipmi_sim (tests.ipmi.test_simulator) and the SHA-256 suite against
``ipmitool -C 17`` (tests.ipmi.test_fakebmc)."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from typing import Any

from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from luna2d.ipmi import crypto

USER = b"admin"
PASSWORD = b"secret"
ROLE = 0x14  # name-only lookup, administrator
SID_M = 0xA0A1A2A3  # remote console session ID
SID_C = 0x01020304  # managed system (BMC) session ID
R_M = bytes(range(16))
R_C = bytes(range(16, 32))
GUID_C = bytes(range(0xA0, 0xB0))

VECTORS = {
    3: {
        "rakp2": "6d4efea436657f4de8506e9861e7232be258d2af",
        "rakp3": "eb5778f62620ec5e2c050b2d9cd5186c80ff0503",
        "sik": "a39ae2b160a1e5efe017ffd6ec1a4ff8eeac6f54",
        "k1": "58dbc1afa00eb3f9487c9eaef0dc7892cc43e496",
        "k2": "8bd9b8ce0674b5d745ced91e728ac1a51464fcaf",
        "rakp4": "9c9f0bb735e08f2829e133b3",
    },
    17: {
        "rakp2": "d07e1c353647ce0f676d59de9e4f7e87a6c0d787e821e1653487f75b429af121",
        "rakp3": "35e3ebdabf40374b6c78fef8d3a13830e2b86bafbd4d316682af7bc201b8d589",
        "sik": "0c4b7464110cf18fd94ec46aa0242c66ab06157709c02ea7db1653aac04b1023",
        "k1": "b56faef1c37759ee6f92dccb3dfb8a7610c83e064883aa735d3e84c1cb0c5728",
        "k2": "45d88aac4a3d9b6ac2cdf022f1f31a5a82ac0aecfe8d8559b4060eb4a13b4334",
        "rakp4": "5c100b10d65e7e0de9769c8ccb1d7187",
    },
}


def le32(value: int) -> bytes:
    """Little-endian 32 bits, by shifting."""
    return bytes((value >> shift) & 0xFF for shift in (0, 8, 16, 24))


def independent(number: int) -> dict[str, bytes]:
    """The same derivations, written out with the standard library."""
    digest: Any = hashlib.sha1 if number == 3 else hashlib.sha256
    truncate = 12 if number == 3 else 16

    def mac(key: bytes, message: bytearray) -> bytes:
        return hmac.new(key, bytes(message), digest).digest()

    kuid = PASSWORD + b"\x00" * (20 - len(PASSWORD))
    name = bytearray([ROLE, len(USER)]) + USER
    rakp2 = mac(kuid, bytearray(le32(SID_M)) + le32(SID_C) + R_M + R_C + GUID_C + name)
    rakp3 = mac(kuid, bytearray(R_C) + le32(SID_M) + name)
    sik = mac(kuid, bytearray(R_M) + R_C + name)
    k1 = mac(sik, bytearray([1] * 20))
    k2 = mac(sik, bytearray([2] * 20))
    rakp4 = mac(sik, bytearray(R_M) + le32(SID_C) + GUID_C)[:truncate]
    return {"rakp2": rakp2, "rakp3": rakp3, "sik": sik, "k1": k1, "k2": k2, "rakp4": rakp4}


def luna2d(number: int) -> dict[str, bytes]:
    """The same values from luna2d.ipmi.crypto."""
    cs = crypto.suite(number)
    kuid = crypto.user_key(PASSWORD)
    keys = crypto.derive_keys(cs, kuid, R_M, R_C, ROLE, USER)
    return {
        "rakp2": crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_M, R_C, GUID_C, ROLE, USER),
        "rakp3": crypto.rakp3_code(cs, kuid, R_C, SID_M, ROLE, USER),
        "sik": keys.sik,
        "k1": keys.k1,
        "k2": keys.k2,
        "rakp4": crypto.rakp4_code(cs, keys.sik, R_M, SID_C, GUID_C),
    }


class KeyExchangeTests(unittest.TestCase):
    def check(self, number: int) -> None:
        """Both computations give the suite's vectors."""
        ours, theirs = luna2d(number), independent(number)
        for name, expected in VECTORS[number].items():
            self.assertEqual(ours[name].hex(), expected, f"suite {number}: {name}")
            self.assertEqual(theirs[name].hex(), expected, f"suite {number}: {name} (independent)")

    def test_suite_3_vectors(self) -> None:
        """RAKP-HMAC-SHA1: the RAKP 2/3 codes, SIK, K1, K2 and the RAKP 4
        value (HMAC-SHA1-96) match the vectors and the independent computation."""
        self.check(3)

    def test_suite_17_vectors(self) -> None:
        """RAKP-HMAC-SHA256: the same, with 32-byte keys and HMAC-SHA256-128."""
        self.check(17)

    def test_every_input_matters(self) -> None:
        """Changing any one input (user, role, a random number, an ID, the
        GUID) changes the codes that cover it."""
        cs = crypto.suite(3)
        kuid = crypto.user_key(PASSWORD)
        base = crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_M, R_C, GUID_C, ROLE, USER)
        variants = [
            crypto.rakp2_code(cs, kuid, SID_M + 1, SID_C, R_M, R_C, GUID_C, ROLE, USER),
            crypto.rakp2_code(cs, kuid, SID_M, SID_C + 1, R_M, R_C, GUID_C, ROLE, USER),
            crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_C, R_M, GUID_C, ROLE, USER),
            crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_M, R_C, bytes(16), ROLE, USER),
            crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_M, R_C, GUID_C, 0x04, USER),
            crypto.rakp2_code(cs, kuid, SID_M, SID_C, R_M, R_C, GUID_C, ROLE, b"admim"),
            crypto.rakp2_code(
                cs, crypto.user_key(b"secreT"), SID_M, SID_C, R_M, R_C, GUID_C, ROLE, USER
            ),
        ]
        self.assertEqual(len({base, *variants}), len(variants) + 1)

    def test_two_key_login(self) -> None:
        """With a BMC key (KG) the SIK is keyed by KG, not by the password;
        the RAKP codes stay keyed by the password."""
        cs = crypto.suite(3)
        kg = b"0123456789abcdefghij"
        keys = crypto.derive_keys(cs, kg, R_M, R_C, ROLE, USER)
        name = bytes((ROLE, len(USER))) + USER
        self.assertEqual(keys.sik, hmac.new(kg, R_M + R_C + name, hashlib.sha1).digest())

    def test_user_key(self) -> None:
        """Kuid is the password zero-padded to 20 bytes; longer is refused."""
        self.assertEqual(crypto.user_key(b"pw"), b"pw" + bytes(18))
        self.assertEqual(crypto.user_key(b"x" * 20), b"x" * 20)
        with self.assertRaises(ValueError):
            crypto.user_key(b"x" * 21)

    def test_unsupported_suite(self) -> None:
        """Only cipher suites 3 and 17 exist in luna2d."""
        for number in (0, 1, 2, 6, 16, 18):
            with self.assertRaises(crypto.UnsupportedCipherSuite):
                crypto.suite(number)


class HmacPrimitiveTests(unittest.TestCase):
    def test_rfc_vectors(self) -> None:
        """The HMACs under the suites give RFC 2202 case 2 (SHA-1) and RFC
        4231 case 2 (SHA-256) for key "Jefe"."""
        message = b"what do ya want for nothing?"
        self.assertEqual(
            crypto._hmac(crypto.suite(3), b"Jefe", message).hex(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        )
        self.assertEqual(
            crypto._hmac(crypto.suite(17), b"Jefe", message).hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        )


class IntegrityTests(unittest.TestCase):
    def test_truncated_codes(self) -> None:
        """HMAC-SHA1-96 is the first 12 bytes of HMAC-SHA1 under K1;
        HMAC-SHA256-128 the first 16 of HMAC-SHA256."""
        data = bytes(range(40))
        for number, digest, size in ((3, hashlib.sha1, 12), (17, hashlib.sha256, 16)):
            keys = crypto.derive_keys(
                crypto.suite(number), crypto.user_key(PASSWORD), R_M, R_C, ROLE, USER
            )
            code = keys.integrity_code(data)
            self.assertEqual(code, hmac.new(keys.k1, data, digest).digest()[:size])
            self.assertTrue(keys.verify(data, code))
            self.assertFalse(keys.verify(data + b"x", code))
            self.assertFalse(keys.verify(data, code[:-1] + bytes((code[-1] ^ 1,))))
            self.assertFalse(keys.verify(data, code[:-1]))


class ConfidentialityTests(unittest.TestCase):
    def keys(self, number: int = 3) -> crypto.SessionKeys:
        """Session keys for the fixed inputs."""
        return crypto.derive_keys(
            crypto.suite(number), crypto.user_key(PASSWORD), R_M, R_C, ROLE, USER
        )

    def test_pad(self) -> None:
        """The IPMI confidentiality pad is 1, 2, .. N then N, filling the last block."""
        self.assertEqual(crypto.aes_pad(15), b"\x00")
        self.assertEqual(crypto.aes_pad(14), b"\x01\x01")
        self.assertEqual(crypto.aes_pad(0), bytes(range(1, 16)) + b"\x0f")
        self.assertEqual(crypto.aes_pad(16), bytes(range(1, 16)) + b"\x0f")
        for length in range(64):
            self.assertEqual((length + len(crypto.aes_pad(length))) % 16, 0)

    async def test_against_openssl(self) -> None:
        """AES-CBC-128 under the first 16 bytes of K2 equals ``openssl enc
        -aes-128-cbc -nopad`` of the plaintext with its IPMI pad, for both suites."""
        for number in (3, 17):
            keys = self.keys(number)
            plaintext = b"\x20\x18\xc8\x81\x04\x38\x8e\x04\xb1" * 3
            iv = bytes(range(0x30, 0x40))
            sealed = keys.encrypt(plaintext, iv)
            with tempfile.NamedTemporaryFile(delete=False) as handle:
                handle.write(plaintext + crypto.aes_pad(len(plaintext)))
            self.addCleanup(os.unlink, handle.name)
            out, err, code = await getProcessOutputAndValue(
                "openssl",
                [
                    "enc",
                    "-aes-128-cbc",
                    "-nopad",
                    "-K",
                    keys.k2[:16].hex(),
                    "-iv",
                    iv.hex(),
                    "-in",
                    handle.name,
                ],
            )
            self.assertEqual(code, 0, err)
            self.assertEqual(sealed, iv + out)
            self.assertEqual(keys.decrypt(sealed), plaintext)

    def test_round_trip_every_length(self) -> None:
        """Every plaintext length from 0 to 70 bytes encrypts and decrypts back."""
        keys = self.keys(17)
        for length in range(71):
            plaintext = os.urandom(length)
            sealed = keys.encrypt(plaintext, os.urandom(16))
            self.assertEqual(len(sealed) % 16, 0)
            self.assertEqual(keys.decrypt(sealed), plaintext)

    def test_rejects(self) -> None:
        """Short payloads, partial blocks, an impossible pad length and pad
        bytes other than 1, 2, 3... are CryptoError."""
        keys = self.keys()
        for payload in (b"", bytes(16), bytes(40)):
            with self.assertRaises(crypto.CryptoError):
                keys.decrypt(payload)
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        def raw(block: bytes) -> bytes:
            iv = bytes(16)
            encryptor = Cipher(algorithms.AES(keys.k2[:16]), modes.CBC(iv)).encryptor()
            return iv + encryptor.update(block) + encryptor.finalize()

        with self.assertRaises(crypto.CryptoError):
            keys.decrypt(raw(bytes(15) + b"\x10"))  # pad length 16
        with self.assertRaises(crypto.CryptoError):
            keys.decrypt(raw(bytes(13) + b"\x01\x03\x02"))  # pad 1, 3 instead of 1, 2
        self.assertEqual(keys.decrypt(raw(b"abcdefghijklm\x01\x02\x02")), b"abcdefghijklm")
