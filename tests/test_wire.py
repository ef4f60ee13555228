"""The one base64 wire rule (luna2d.model.wire): what is read as base64,
what is answered base64, and that every answer reads back as the stored
value, for luna2d itself and for the luna CLI's way of decoding."""

from __future__ import annotations

import base64
import binascii
import os

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from luna2d.model import wire


def cli_shows(value: str) -> str:
    """What the luna CLI shows for a base64 field it reads: the decoded
    text when base64 decoding (validate=True) and UTF-8 both succeed, the
    value itself when either fails; text that is not ASCII makes Python's
    decoder raise a ValueError the CLI does not catch (written here from
    the CLI's behaviour; its code is not copied)."""
    if not value.isascii():
        raise AssertionError(f"the luna CLI stops on plain text that is not ASCII: {value!r}")
    try:
        return base64.b64decode(value.replace("\r", "\\r"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value


# Texts that look like base64 more often than random text does.
b64ish = st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=24)
texts = st.one_of(st.text(max_size=40), b64ish, b64ish.map(lambda t: t + "=="))


class ReadTests(unittest.TestCase):
    def test_canonical_base64_is_decoded(self) -> None:
        """What the CLI sends (canonical base64) is decoded: text fields to
        the UTF-8 text, binary fields to the bytes."""
        self.assertEqual(wire.decode_text("cXVpZXQgY29uc29sZT10dHlTMA=="), "quiet console=ttyS0")
        self.assertEqual(wire.decode_text("LywgL2Jvb3Q="), "/, /boot")
        self.assertEqual(wire.decode_text(base64.b64encode("é ü\n".encode()).decode()), "é ü\n")
        key = os.urandom(1024)
        self.assertEqual(wire.decode_bytes(base64.b64encode(key).decode()), key)

    def test_plain_text_is_kept(self) -> None:
        """Text that is not canonical base64 is taken as it is: spaces,
        '=' in the middle, a wrong length, stray bits, and base64 of bytes
        that are not UTF-8 (for a text field)."""
        for plain in (
            "quiet console=ttyS0",
            "mitigations=off",
            "abc",
            "Default image",
            "/boot",
            "QQ=",
            "QR==",
            "copy",
            "",
        ):
            self.assertEqual(wire.decode_text(plain), plain, plain)
        self.assertEqual(wire.decode_bytes("LICENSE-TEXT"), b"LICENSE-TEXT")
        self.assertEqual(wire.decode_bytes("QR=="), b"QR==")  # stray bits: not canonical

    def test_binary_rule_is_wider(self) -> None:
        """A binary field takes base64 of any bytes: "copy" is canonical
        base64 of 3 bytes that are not UTF-8, so it is plain text in a text
        field and those 3 bytes in a secret's content."""
        self.assertEqual(wire.decode_text("copy"), "copy")
        self.assertEqual(wire.decode_bytes("copy"), base64.b64decode("copy"))

    def test_wrapped_base64(self) -> None:
        """Base64 wrapped as ``base64`` (76) or ``openssl base64`` (64)
        write it is decoded; other wrappings are plain text."""
        key = os.urandom(300)
        text = base64.b64encode(key).decode()
        for width in (64, 76):
            lines = "\n".join(text[i : i + width] for i in range(0, len(text), width)) + "\n"
            self.assertEqual(wire.decode_bytes(lines), key, width)
            self.assertEqual(wire.decode_bytes(lines.replace("\n", "\r\n")), key, width)
        self.assertEqual(wire.wrapped(key).count("\n"), -(-len(text) // 76))
        self.assertEqual(wire.decode_bytes(wire.wrapped(key)), key)
        short = "Passw0rd\nSecret12\n"  # lines of 8: a list of passwords, not base64
        self.assertEqual(wire.decode_bytes(short), short.encode())


class AnswerTests(unittest.TestCase):
    def test_either_answers_plain_unless_ambiguous(self) -> None:
        """In "either" mode a value is answered as it is, unless luna2d or
        the CLI would read it as base64: then it is answered base64."""
        plain = "quiet console=ttyS0"
        self.assertEqual(wire.encode_text(wire.EITHER, plain), plain)
        self.assertEqual(wire.encode_text(wire.EITHER, "copy"), "copy")
        self.assertEqual(wire.encode_text(wire.EITHER, "Müller"), "TcO8bGxlcg==")
        self.assertEqual(wire.encode_text(wire.EITHER, "Zm9v"), base64.b64encode(b"Zm9v").decode())
        # Not canonical (stray bits), so luna2d keeps it as text, but the
        # CLI's decoder reads it as "foob": answered base64 so both agree.
        self.assertIsNone(wire.base64_bytes("Zm9vYh=="))
        self.assertEqual(wire.encode_text(wire.EITHER, "Zm9vYh=="), "Wm05dlloPT0=")

    def test_base64_mode_always_encodes(self) -> None:
        self.assertEqual(wire.encode_text(wire.BASE64, "echo hi"), "ZWNobyBoaQ==")

    def test_bytes(self) -> None:
        """Secret contents: UTF-8 text that cannot be taken for base64 is
        answered as text; binary, NUL or base64-like content as base64."""
        self.assertEqual(wire.encode_bytes(b"LICENSE-TEXT"), "LICENSE-TEXT")
        for raw in (b"\xff\x00munge", b"a\x00b", b"copy", b"Passw0rdPassw0rd"):
            self.assertEqual(base64.b64decode(wire.encode_bytes(raw)), raw, raw)

    @settings(max_examples=400, deadline=None)
    @given(texts)
    @example("04000400===")  # excess padding, which Python's decoder takes
    def test_text_round_trip(self, value: str) -> None:
        """Any stored text, answered in either mode, is read back by luna2d
        as that text, and shown by the CLI as that text."""
        for mode in wire.MODES:
            answered = wire.encode_text(mode, value)
            self.assertEqual(wire.decode_text(answered), value)
            self.assertEqual(cli_shows(answered), value)

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(st.binary(max_size=40), texts.map(lambda t: t.encode())))
    def test_bytes_round_trip(self, raw: bytes) -> None:
        """Any stored content is read back by luna2d as those bytes."""
        self.assertEqual(wire.decode_bytes(wire.encode_bytes(raw)), raw)

    @settings(max_examples=400, deadline=None)
    @given(texts)
    def test_sent_by_the_cli(self, value: str) -> None:
        """Whatever the CLI sends (base64 of the text) is stored as the text."""
        self.assertEqual(wire.decode_text(base64.b64encode(value.encode()).decode()), value)
