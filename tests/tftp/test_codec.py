"""The TFTP codec: golden bytes for every packet kind (RFC 1350, the RFC 2347
OACK), round trips, the tolerated oddities of real clients (NUL padding,
an ERROR without its terminator) and, by hypothesis, that any datagram
decodes or raises DecodeError and nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from luna2d.protocols.tftp import codec
from luna2d.protocols.tftp.codec import (
    Ack,
    Data,
    DecodeError,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    WriteRequest,
    decode,
    encode,
    options_dict,
)

GOLDEN = [
    (ReadRequest("undionly.kpxe", "octet"), b"\x00\x01undionly.kpxe\x00octet\x00"),
    (
        ReadRequest("ipxe.efi", "octet", (("blksize", "1432"), ("tsize", "0"))),
        b"\x00\x01ipxe.efi\x00octet\x00blksize\x001432\x00tsize\x000\x00",
    ),
    (WriteRequest("up.bin", "netascii"), b"\x00\x02up.bin\x00netascii\x00"),
    (Data(1, b"hello"), b"\x00\x03\x00\x01hello"),
    (Data(65535, b""), b"\x00\x03\xff\xff"),
    (Ack(0), b"\x00\x04\x00\x00"),
    (Ack(258), b"\x00\x04\x01\x02"),
    (Error(ErrorCode.FILE_NOT_FOUND, "file not found"), b"\x00\x05\x00\x01file not found\x00"),
    (Error(ErrorCode.OPTION_REFUSED, ""), b"\x00\x05\x00\x08\x00"),
    (
        OptionAck((("blksize", "1432"), ("windowsize", "16"))),
        b"\x00\x06blksize\x001432\x00windowsize\x0016\x00",
    ),
    (OptionAck(()), b"\x00\x06"),
]


class GoldenTests(unittest.TestCase):
    def test_encode_golden(self) -> None:
        """Each packet kind encodes to the exact RFC 1350 / RFC 2347 bytes."""
        for packet, wire in GOLDEN:
            self.assertEqual(encode(packet), wire, packet)
            self.assertEqual(packet.encode(), wire, packet)

    def test_decode_golden(self) -> None:
        """The same bytes decode back to the same dataclass."""
        for packet, wire in GOLDEN:
            self.assertEqual(decode(wire), packet, wire)

    def test_latin1_names_round_trip(self) -> None:
        """A name with bytes above 127 survives decode and encode unchanged
        (strings are latin-1, one character per byte)."""
        wire = b"\x00\x01caf\xe9/\xff.bin\x00octet\x00"
        packet = decode(wire)
        assert isinstance(packet, ReadRequest)
        self.assertEqual(packet.filename, "caf\xe9/\xff.bin")
        self.assertEqual(packet.encode(), wire)


class ToleranceTests(unittest.TestCase):
    def test_request_nul_padding_ignored(self) -> None:
        """Extra NULs after the last option (some firmware pads its RRQ) are
        not options; one, two or three of them."""
        base = b"\x00\x01f\x00octet\x00tsize\x000\x00"
        for pad in (b"\x00", b"\x00\x00", b"\x00\x00\x00"):
            packet = decode(base + pad)
            self.assertEqual(packet, ReadRequest("f", "octet", (("tsize", "0"),)), pad)

    def test_option_with_empty_value_kept(self) -> None:
        """An option whose value is empty is an option, not padding."""
        self.assertEqual(
            decode(b"\x00\x01f\x00octet\x00x\x00\x00"), ReadRequest("f", "octet", (("x", ""),))
        )

    def test_error_without_terminator(self) -> None:
        """An ERROR whose message lacks its NUL still decodes, with what is there."""
        self.assertEqual(decode(b"\x00\x05\x00\x00oops"), Error(0, "oops"))

    def test_options_dict_case_insensitive_first_wins(self) -> None:
        """options_dict lower-cases names (RFC 2347) and keeps the first of repeats."""
        self.assertEqual(
            options_dict((("BlkSize", "1432"), ("blksize", "8"), ("TSIZE", "0"))),
            {"blksize": "1432", "tsize": "0"},
        )


class MalformedTests(unittest.TestCase):
    def test_malformed_datagrams_raise_decode_error(self) -> None:
        """Each malformed shape raises DecodeError (never another exception)."""
        for wire in [
            b"",
            b"\x00",
            b"\x00\x07",
            b"\xff\xff",  # too short, unknown opcodes
            b"\x00\x01f\x00octet",  # last string not terminated
            b"\x00\x01f\x00",  # no mode
            b"\x00\x01\x00",  # empty body: one string only
            b"\x00\x01f\x00octet\x00blksize\x00",  # option without value
            b"\x00\x01f\x00octet\x00\x00512\x00",  # option without name
            b"\x00\x03\x00",  # DATA without a block number
            b"\x00\x04\x00",
            b"\x00\x04\x00\x01\x00",  # ACK not 4 bytes
            b"\x00\x05\x00",  # ERROR without a code
            b"\x00\x06blksize",  # OACK not terminated
        ]:
            self.assertRaises(DecodeError, decode, wire)

    def test_constructors_reject_what_cannot_be_encoded(self) -> None:
        """Dataclasses refuse NULs in strings, non-latin-1 text, block numbers
        and codes outside 16 bits and empty option names."""
        self.assertRaises(ValueError, ReadRequest, "a\x00b", "octet")
        self.assertRaises(ValueError, ReadRequest, "\u20ac", "octet")
        self.assertRaises(ValueError, Data, 65536, b"")
        self.assertRaises(ValueError, Ack, -1)
        self.assertRaises(ValueError, Error, 70000, "x")
        self.assertRaises(ValueError, OptionAck, (("", "1"),))


text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=40)
name = text.filter(bool)
options = st.lists(st.tuples(name, text), max_size=5).map(tuple)
u16 = st.integers(0, 0xFFFF)
packets = st.one_of(
    st.builds(ReadRequest, text, text, options),
    st.builds(WriteRequest, text, text, options),
    st.builds(Data, u16, st.binary(max_size=600)),
    st.builds(Ack, u16),
    st.builds(Error, u16, text),
    st.builds(OptionAck, options),
)


class PropertyTests(unittest.TestCase):
    @settings(max_examples=400, deadline=None)
    @given(packets)
    def test_round_trip(self, packet: codec.Packet) -> None:
        """decode(encode(p)) == p for every packet the dataclasses allow
        (options ending in an empty value included)."""
        self.assertEqual(decode(encode(packet)), packet)

    @settings(max_examples=1000, deadline=None)
    @given(st.binary(max_size=200))
    def test_any_bytes_decode_or_decode_error(self, wire: bytes) -> None:
        """Every datagram decodes to a packet or raises DecodeError, and what
        decodes encodes again to a packet that decodes the same."""
        try:
            packet = decode(wire)
        except DecodeError:
            return
        self.assertEqual(decode(encode(packet)), packet)

    @settings(max_examples=500, deadline=None)
    @given(
        st.sampled_from([b"\x00\x01", b"\x00\x02", b"\x00\x05", b"\x00\x06"]),
        st.lists(st.sampled_from([b"\x00", b"a", b"blksize", b"1432", b"\xff"]), max_size=12),
    )
    def test_string_packets_decode_or_decode_error(
        self, opcode: bytes, pieces: list[bytes]
    ) -> None:
        """Request, ERROR and OACK bodies built from NULs and option-like
        words (the shapes random bytes rarely hit) decode or raise DecodeError."""
        try:
            decode(opcode + b"".join(pieces))
        except DecodeError:
            pass
