# -*- test-case-name: tests.ipmi.test_crypto -*-
"""RMCP+ cryptography (IPMI v2.0 section 13.28-13.32): the RAKP key
exchange codes, the session integrity key (SIK) and its derived keys K1 and
K2, per-packet integrity codes, and AES-CBC-128 confidentiality with the
IPMI pad.

Cipher suites 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) and 17
(RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) are supported. Every MAC a
peer sends is compared with ``hmac.compare_digest``."""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "SUITES",
    "CipherSuite",
    "CryptoError",
    "SessionKeys",
    "UnsupportedCipherSuite",
    "aes_pad",
    "derive_keys",
    "rakp2_code",
    "rakp3_code",
    "rakp4_code",
    "session_integrity_key",
    "suite",
    "user_key",
]

AUTH_RAKP_HMAC_SHA1 = 0x01
AUTH_RAKP_HMAC_SHA256 = 0x03
INTEGRITY_HMAC_SHA1_96 = 0x01
INTEGRITY_HMAC_SHA256_128 = 0x04
CONFIDENTIALITY_AES_CBC_128 = 0x01

KEY_LENGTH = 20  # user passwords and the K1/K2 constants are 20 bytes
AES_BLOCK = 16
CONST_1 = b"\x01" * KEY_LENGTH
CONST_2 = b"\x02" * KEY_LENGTH


class CryptoError(Exception):
    """A payload that does not decrypt to a well-formed plaintext."""


class UnsupportedCipherSuite(ValueError):
    """luna2d does not implement the cipher suite asked for."""


@dataclass(frozen=True)
class CipherSuite:
    """The three algorithms of an RMCP+ cipher suite and their digests."""

    number: int
    authentication: int
    integrity: int
    confidentiality: int
    digest_name: str  # "sha1" or "sha256": for RAKP codes, SIK, K1, K2 and integrity
    integrity_length: int  # bytes of a truncated integrity code

    def digest(self) -> hashes.HashAlgorithm:
        """The hash the suite uses for every HMAC."""
        return hashes.SHA1() if self.digest_name == "sha1" else hashes.SHA256()


SUITES: dict[int, CipherSuite] = {
    3: CipherSuite(
        3, AUTH_RAKP_HMAC_SHA1, INTEGRITY_HMAC_SHA1_96, CONFIDENTIALITY_AES_CBC_128, "sha1", 12
    ),
    17: CipherSuite(
        17,
        AUTH_RAKP_HMAC_SHA256,
        INTEGRITY_HMAC_SHA256_128,
        CONFIDENTIALITY_AES_CBC_128,
        "sha256",
        16,
    ),
}


def suite(number: int) -> CipherSuite:
    """The cipher suite with this number; UnsupportedCipherSuite otherwise."""
    try:
        return SUITES[number]
    except KeyError:
        raise UnsupportedCipherSuite(
            f"cipher suite {number} is not supported (3 and 17 are)"
        ) from None


def _hmac(cs: CipherSuite, key: bytes, *parts: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, cs.digest())
    for part in parts:
        mac.update(part)
    return mac.finalize()


def user_key(password: bytes) -> bytes:
    """Kuid: the user's password zero-padded to 20 bytes."""
    if len(password) > KEY_LENGTH:
        raise ValueError(f"an IPMI password is at most {KEY_LENGTH} bytes")
    return password.ljust(KEY_LENGTH, b"\x00")


def _name_part(role: int, username: bytes) -> bytes:
    return bytes((role, len(username))) + username


def rakp2_code(
    cs: CipherSuite,
    kuid: bytes,
    console_session_id: int,
    bmc_session_id: int,
    console_random: bytes,
    bmc_random: bytes,
    bmc_guid: bytes,
    role: int,
    username: bytes,
) -> bytes:
    """The key exchange authentication code the BMC puts in RAKP Message 2:
    HMAC_Kuid(SIDm | SIDc | Rm | Rc | GUIDc | ROLEm | ULENGTHm | UNAMEm)."""
    return _hmac(
        cs,
        kuid,
        struct.pack("<II", console_session_id, bmc_session_id),
        console_random,
        bmc_random,
        bmc_guid,
        _name_part(role, username),
    )


def rakp3_code(
    cs: CipherSuite,
    kuid: bytes,
    bmc_random: bytes,
    console_session_id: int,
    role: int,
    username: bytes,
) -> bytes:
    """The code the console puts in RAKP Message 3:
    HMAC_Kuid(Rc | SIDm | ROLEm | ULENGTHm | UNAMEm)."""
    return _hmac(
        cs, kuid, bmc_random, struct.pack("<I", console_session_id), _name_part(role, username)
    )


def session_integrity_key(
    cs: CipherSuite, kg: bytes, console_random: bytes, bmc_random: bytes, role: int, username: bytes
) -> bytes:
    """SIK = HMAC_KG(Rm | Rc | ROLEm | ULENGTHm | UNAMEm); KG is the BMC key,
    or Kuid when the BMC has none."""
    return _hmac(cs, kg, console_random, bmc_random, _name_part(role, username))


def rakp4_code(
    cs: CipherSuite, sik: bytes, console_random: bytes, bmc_session_id: int, bmc_guid: bytes
) -> bytes:
    """The integrity check value of RAKP Message 4:
    HMAC_SIK(Rm | SIDc | GUIDc), truncated to the suite's integrity length."""
    full = _hmac(cs, sik, console_random, struct.pack("<I", bmc_session_id), bmc_guid)
    return full[: cs.integrity_length]


def aes_pad(length: int) -> bytes:
    """The confidentiality pad after ``length`` plaintext bytes: 1, 2, .. N
    then the pad length N, so that the total is a multiple of 16."""
    count = -(length + 1) % AES_BLOCK
    return bytes(range(1, count + 1)) + bytes((count,))


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one established RMCP+ session."""

    suite: CipherSuite
    sik: bytes
    k1: bytes
    k2: bytes

    def __repr__(self) -> str:  # keys never reach a log
        return f"SessionKeys(suite={self.suite.number})"

    def integrity_code(self, data: bytes) -> bytes:
        """The truncated integrity code of ``data`` under K1."""
        return _hmac(self.suite, self.k1, data)[: self.suite.integrity_length]

    def verify(self, data: bytes, code: bytes) -> bool:
        """Whether ``code`` is the integrity code of ``data`` (constant time)."""
        return hmac.compare_digest(self.integrity_code(data), code)

    def encrypt(self, plaintext: bytes, iv: bytes) -> bytes:
        """IV followed by AES-CBC-128 (key: the first 16 bytes of K2) of the
        plaintext and its IPMI pad."""
        if len(iv) != AES_BLOCK:
            raise ValueError("the IV is 16 bytes")
        encryptor = Cipher(algorithms.AES(self.k2[:16]), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(plaintext + aes_pad(len(plaintext))) + encryptor.finalize()

    def decrypt(self, payload: bytes) -> bytes:
        """The plaintext of an encrypted payload; CryptoError when the length
        or the pad is wrong."""
        if len(payload) < 2 * AES_BLOCK or len(payload) % AES_BLOCK:
            raise CryptoError(
                f"encrypted payload of {len(payload)} bytes is not IV + whole AES blocks"
            )
        decryptor = Cipher(algorithms.AES(self.k2[:16]), modes.CBC(payload[:AES_BLOCK])).decryptor()
        padded = decryptor.update(payload[AES_BLOCK:]) + decryptor.finalize()
        count = padded[-1]
        if count >= AES_BLOCK or count + 1 > len(padded):
            raise CryptoError(f"confidentiality pad length {count} is impossible")
        body = padded[: len(padded) - count - 1]
        if padded[len(body) : -1] != bytes(range(1, count + 1)):
            raise CryptoError("confidentiality pad bytes are not 1, 2, 3, ...")
        return body


def derive_keys(
    cs: CipherSuite, kg: bytes, console_random: bytes, bmc_random: bytes, role: int, username: bytes
) -> SessionKeys:
    """SIK, K1 = HMAC_SIK(0x01 x 20) and K2 = HMAC_SIK(0x02 x 20)."""
    sik = session_integrity_key(cs, kg, console_random, bmc_random, role, username)
    return SessionKeys(cs, sik, _hmac(cs, sik, CONST_1), _hmac(cs, sik, CONST_2))
