"""The RMCP / ASF / IPMI 1.5 / IPMI 2.0 codec: golden bytes laid out by hand
from the IPMI v2.0 and ASF specifications (and one datagram captured from
OpenIPMI's ipmi_sim), round trips of every structure, and hypothesis fuzzing:
any datagram decodes or raises DecodeError, and what decodes encodes back to
the very same bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from luna2d.ipmi import codec
from luna2d.ipmi.codec import DecodeError

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
seq6 = st.integers(0, 0x3F)


def h(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text.replace(" ", ""))


class GoldenTests(unittest.TestCase):
    def test_presence_ping(self) -> None:
        """An ASF presence ping is RMCP class 6, IANA 4542 big-endian, type
        0x80, the tag, a reserved byte and data length 0."""
        ping = codec.AsfPacket.ping(0x22)
        self.assertEqual(ping.encode(), h("06 00 ff 06  00 00 11 be  80 22 00 00"))
        self.assertEqual(codec.decode(ping.encode()), ping)

    def test_presence_pong(self) -> None:
        """A pong's 16 data bytes give the IANA number, OEM field, supported
        entities (bit 7: IPMI) and interactions."""
        wire = h(
            "06 00 ff 06  00 00 11 be  40 22 00 10  00 00 11 be  00 00 00 00  81 00  00 00 00 "
            "00 00 00"
        )
        packet = codec.decode(wire)
        assert isinstance(packet, codec.AsfPacket)
        pong = packet.pong()
        self.assertEqual((pong.iana, pong.entities, pong.interactions), (4542, 0x81, 0))
        self.assertTrue(pong.ipmi)
        self.assertEqual(packet.encode(), wire)
        with self.assertRaises(DecodeError):
            codec.AsfPacket.ping(1).pong()

    def test_rmcp_ack(self) -> None:
        """An RMCP ACK is the bare header with bit 7 of the class set."""
        packet = codec.decode(h("06 00 05 86"))
        self.assertEqual(packet, codec.RmcpAck(codec.CLASS_ASF, 5))
        self.assertEqual(packet.encode(), h("06 00 05 86"))

    def test_channel_auth_capabilities_request(self) -> None:
        """Get Channel Authentication Capabilities in IPMI 1.5 framing: auth
        type none, sequence and session 0, length, then the message with its
        two checksums (0x20+0x18 -> 0xc8; 0x81+0x04+0x38+0x8e+0x04 -> 0xb1)."""
        message = codec.IpmiRequest(0x06, 0x38, h("8e 04"), rq_seq=1).encode()
        self.assertEqual(message, h("20 18 c8 81 04 38 8e 04 b1"))
        wire = codec.Ipmi15Packet(message).encode()
        self.assertEqual(wire, h("06 00 ff 07  00  00 00 00 00  00 00 00 00  09") + message)
        self.assertEqual(codec.decode(wire), codec.Ipmi15Packet(message))

    def test_channel_auth_capabilities_response(self) -> None:
        """The response swaps the addresses, has an odd netfn (0x07 << 2 =
        0x1c) and a completion code before the data."""
        response = codec.IpmiResponse(0x07, 0x38, 0x00, h("01 86 14 02 00 00 00 00"), rq_seq=1)
        wire = response.encode()
        self.assertEqual(wire[:6], h("81 1c 63 20 04 38"))
        self.assertEqual(codec.checksum(wire[3:-1]), wire[-1])
        self.assertEqual(codec.IpmiResponse.decode(wire), response)

    def test_ipmi15_with_auth_code_and_legacy_pad(self) -> None:
        """With an authentication type the header carries a 16-byte code;
        one trailing zero (the legacy pad) is kept; two are an error."""
        message = codec.IpmiRequest(0x06, 0x01, rq_seq=2).encode()
        wire = (
            h("06 00 ff 07  02  01 00 00 00  78 56 34 12")
            + bytes(range(16))
            + bytes((len(message),))
            + message
            + b"\x00"
        )
        packet = codec.decode(wire)
        assert isinstance(packet, codec.Ipmi15Packet)
        self.assertEqual((packet.auth_type, packet.sequence, packet.session_id), (2, 1, 0x12345678))
        self.assertEqual(packet.auth_code, bytes(range(16)))
        self.assertEqual(packet.pad, b"\x00")
        self.assertEqual(packet.encode(), wire)
        with self.assertRaises(DecodeError):
            codec.decode(wire + b"\x00")

    def test_open_session_request(self) -> None:
        """Open Session Request for cipher suite 3 at administrator level."""
        request = codec.OpenSessionRequest(1, 0xA0A1A2A3, 1, 1, 1, privilege=4)
        payload = h(
            "01 04 00 00  a3 a2 a1 a0  00 00 00 08 01 00 00 00  01 00 00 08 01 00 00 00"
            "  02 00 00 08 01 00 00 00"
        )
        self.assertEqual(request.encode(), payload)
        self.assertEqual(codec.OpenSessionRequest.decode(payload), request)
        wire = codec.Ipmi20Packet(codec.PAYLOAD_OPEN_SESSION_REQUEST, payload).encode()
        self.assertEqual(wire[:16], h("06 00 ff 07  06 10  00 00 00 00  00 00 00 00  20 00"))

    def test_open_session_response_from_ipmi_sim(self) -> None:
        """ipmi_sim refuses cipher suite 17 with a two-byte payload: tag and
        status 0x04 (invalid authentication algorithm)."""
        packet = codec.decode(h("0600ff070611000000000000000002000104"))
        assert isinstance(packet, codec.Ipmi20Packet)
        self.assertEqual(packet.payload_type, codec.PAYLOAD_OPEN_SESSION_RESPONSE)
        response = codec.OpenSessionResponse.decode(packet.payload)
        self.assertEqual(response, codec.OpenSessionResponse(1, 4, None))
        self.assertEqual(response.encode(), h("01 04"))

    def test_open_session_response_full(self) -> None:
        """A successful Open Session Response is 36 bytes with both session
        IDs and the three algorithms the BMC chose."""
        payload = h(
            "07 00 04 00  44 33 22 11  88 77 66 55  00 00 00 08 03 00 00 00  01 00 00 08 04 00 "
            "00 00"
            "  02 00 00 08 01 00 00 00"
        )
        response = codec.OpenSessionResponse.decode(payload)
        self.assertEqual(
            response, codec.OpenSessionResponse(7, 0, 0x11223344, 4, 0x55667788, 3, 4, 1)
        )
        self.assertEqual(response.encode(), payload)
        with self.assertRaises(DecodeError):
            codec.OpenSessionResponse.decode(payload[:35])
        with self.assertRaises(DecodeError):  # the integrity record in the authentication slot
            codec.OpenSessionResponse.decode(
                payload[:12] + payload[20:28] + payload[12:20] + payload[28:]
            )

    def test_rakp1(self) -> None:
        """RAKP Message 1: tag, three reserved bytes, the BMC session ID, Rm,
        the role byte, two reserved bytes, the name length and the name."""
        message = codec.Rakp1(2, 0x01020304, bytes(range(16)), 0x14, b"admin")
        payload = h("02 00 00 00  04 03 02 01") + bytes(range(16)) + h("14 00 00 05") + b"admin"
        self.assertEqual(message.encode(), payload)
        self.assertEqual(codec.Rakp1.decode(payload), message)
        with self.assertRaises(DecodeError):
            codec.Rakp1.decode(payload[:-1])

    def test_rakp2_rakp3_rakp4(self) -> None:
        """RAKP 2 (status, console ID, Rc, GUID, code), RAKP 3 and 4; an error
        RAKP 2 may stop after the console session ID."""
        rakp2 = codec.Rakp2(3, 0, 0x0A0B0C0D, b"\x11" * 16, b"\x22" * 16, b"\x33" * 20)
        self.assertEqual(rakp2.encode()[:8], h("03 00 00 00 0d 0c 0b 0a"))
        self.assertEqual(codec.Rakp2.decode(rakp2.encode()), rakp2)
        self.assertEqual(
            codec.Rakp2.decode(h("03 0d 00 00 0d 0c 0b 0a")), codec.Rakp2(3, 0x0D, 0x0A0B0C0D)
        )
        rakp3 = codec.Rakp3(4, 0, 0x01020304, b"\x44" * 32)
        self.assertEqual(rakp3.encode(), h("04 00 00 00 04 03 02 01") + b"\x44" * 32)
        rakp4 = codec.Rakp4(4, 0, 0x0A0B0C0D, b"\x55" * 12)
        self.assertEqual(codec.Rakp4.decode(rakp4.encode()), rakp4)

    def test_authenticated_packet_trailer(self) -> None:
        """An authenticated packet pads auth type .. next header to a multiple
        of four with 0xff, then pad length, next header 0x07 and the code."""
        payload = bytes(32)
        self.assertEqual(codec.integrity_pad(12 + len(payload)), 2)
        trailer = h("ff ff 02 07") + b"\xaa" * 12
        packet = codec.Ipmi20Packet(0, payload, 0x01020304, 9, True, True, trailer)
        wire = packet.encode()
        self.assertEqual(wire[4:6], h("06 c0"))
        self.assertEqual(codec.decode(wire), packet)
        self.assertEqual(codec.split_trailer(packet.trailer, 12), (h("ff ff"), 7, b"\xaa" * 12))
        self.assertEqual(packet.signed_bytes(12), wire[4:-12])
        self.assertEqual(len(packet.signed_bytes(12)) % 4, 0)
        with self.assertRaises(DecodeError):
            codec.split_trailer(packet.trailer, 16)
        with self.assertRaises(DecodeError):
            codec.split_trailer(h("ff 03 07") + b"\xaa" * 12, 12)

    def test_oem_payload_header(self) -> None:
        """An OEM explicit payload carries the OEM IANA and payload ID."""
        packet = codec.Ipmi20Packet(
            codec.PAYLOAD_OEM, b"xy", 5, 6, oem_iana=0x123456, oem_payload_id=0x0102
        )
        wire = packet.encode()
        self.assertEqual(wire[4:12], h("06 02 56 34 12 00 02 01"))
        self.assertEqual(codec.decode(wire), packet)

    def test_rejects(self) -> None:
        """Wrong version, reserved bits, unknown class or auth type, short
        headers, bad checksums and lengths that lie are all DecodeError."""
        bad = [
            b"",
            h("06 00 ff"),
            h("07 00 ff 07 00"),
            h("06 01 ff 07 00"),
            h("06 00 ff 27 00"),
            h("06 00 ff 08 00"),
            h("06 00 ff 07 03 00 00 00 00 00 00 00 00 00"),
            h("06 00 10 07 00 00 00 00 00 00 00 00 00 00"),
            h("06 00 ff 06 00 00 11 be 80 22 00 01"),
            h("06 00 ff 07 06 00 00 00 00 00 00 00 00 00 05 00 01"),
            h("06 00 ff 07 06 00 00 00 00 00 00 00 00 00 00 00 99"),
            h("06 00 05 86 00"),
        ]
        for data in bad:
            with self.assertRaises(DecodeError, msg=data.hex()):
                codec.decode(data)
        good = codec.IpmiRequest(0x06, 0x38, h("8e 04"), rq_seq=1).encode()
        for broken in (good[:2] + b"\x00" + good[3:], good[:-1] + b"\x00", good[:6]):
            with self.assertRaises(DecodeError):
                codec.IpmiRequest.decode(broken)
        with self.assertRaises(DecodeError):
            codec.IpmiResponse.decode(good)  # a request is not a response


requests = st.builds(
    codec.IpmiRequest,
    netfn=st.integers(0, 31).map(lambda n: n * 2),
    cmd=u8,
    data=st.binary(max_size=40),
    rq_seq=seq6,
    rs_addr=u8,
    rs_lun=st.integers(0, 3),
    rq_addr=u8,
    rq_lun=st.integers(0, 3),
)
responses = st.builds(
    codec.IpmiResponse,
    netfn=st.integers(0, 31).map(lambda n: n * 2 + 1),
    cmd=u8,
    completion_code=u8,
    data=st.binary(max_size=40),
    rq_seq=seq6,
    rq_addr=u8,
    rq_lun=st.integers(0, 3),
    rs_addr=u8,
    rs_lun=st.integers(0, 3),
)
packets = st.one_of(
    st.builds(
        codec.AsfPacket, message_type=u8, tag=u8, data=st.binary(max_size=40), iana=u32, sequence=u8
    ),
    st.builds(codec.RmcpAck, message_class=st.integers(0, 31), sequence=u8),
    st.builds(
        lambda m, seq, sid, pad: codec.Ipmi15Packet(m, 0, seq, sid, b"", pad),
        st.binary(max_size=60),
        u32,
        u32,
        st.sampled_from([b"", b"\x00"]),
    ),
    st.builds(
        lambda t, m, seq, sid, code: codec.Ipmi15Packet(m, t, seq, sid, code),
        st.sampled_from([1, 2, 4, 5]),
        st.binary(max_size=60),
        u32,
        u32,
        st.binary(min_size=16, max_size=16),
    ),
    st.builds(
        lambda t, p, sid, seq, enc, code, pad: codec.Ipmi20Packet(
            t, p, sid, seq, enc, True, b"\xff" * pad + bytes((pad, 7)) + code
        ),
        st.sampled_from([0, 1, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15]),
        st.binary(max_size=80),
        u32,
        u32,
        st.booleans(),
        st.binary(max_size=32),
        st.integers(0, 3),
    ),
    st.builds(
        lambda t, p, sid, seq: codec.Ipmi20Packet(t, p, sid, seq),
        st.integers(0, 63),
        st.binary(max_size=80),
        u32,
        u32,
    ),
)
setup_payloads = st.one_of(
    st.builds(
        codec.OpenSessionRequest,
        tag=u8,
        console_session_id=u32,
        authentication=seq6,
        integrity=seq6,
        confidentiality=seq6,
        privilege=st.integers(0, 15),
    ),
    st.builds(
        codec.OpenSessionResponse, tag=u8, status=st.integers(1, 255), console_session_id=st.none()
    ),
    st.builds(
        codec.OpenSessionResponse,
        tag=u8,
        status=st.integers(1, 255),
        console_session_id=u32,
        privilege=st.integers(0, 15),
    ),
    st.builds(
        codec.OpenSessionResponse,
        tag=u8,
        status=u8,
        console_session_id=u32,
        privilege=st.integers(0, 15),
        bmc_session_id=u32,
        authentication=seq6,
        integrity=seq6,
        confidentiality=seq6,
    ),
    st.builds(
        codec.Rakp1,
        tag=u8,
        bmc_session_id=u32,
        console_random=st.binary(min_size=16, max_size=16),
        role=u8,
        username=st.binary(max_size=16),
    ),
    st.builds(codec.Rakp2, tag=u8, status=u8, console_session_id=u32),
    st.builds(
        codec.Rakp2,
        tag=u8,
        status=u8,
        console_session_id=u32,
        bmc_random=st.binary(min_size=16, max_size=16),
        bmc_guid=st.binary(min_size=16, max_size=16),
        auth_code=st.binary(max_size=32),
    ),
    st.builds(codec.Rakp3, tag=u8, status=u8, bmc_session_id=u32, auth_code=st.binary(max_size=32)),
    st.builds(
        codec.Rakp4,
        tag=u8,
        status=u8,
        console_session_id=u32,
        integrity_check=st.binary(max_size=32),
    ),
)


class RoundTripTests(unittest.TestCase):
    @given(packets)
    @settings(max_examples=300, deadline=None)
    def test_packets(self, packet: codec.Packet) -> None:
        """Every packet the codec can build decodes back to itself."""
        self.assertEqual(codec.decode(packet.encode()), packet)

    @given(st.one_of(requests, responses))
    @settings(max_examples=300, deadline=None)
    def test_messages(self, message: codec.IpmiRequest | codec.IpmiResponse) -> None:
        """IPMI requests and responses survive encode/decode, checksums included."""
        self.assertEqual(type(message).decode(message.encode()), message)

    @given(setup_payloads)
    @settings(max_examples=300, deadline=None)
    def test_setup_payloads(self, payload: Any) -> None:
        """Open Session and RAKP payloads survive encode/decode."""
        self.assertEqual(type(payload).decode(payload.encode()), payload)


class FuzzTests(unittest.TestCase):
    @given(st.binary(max_size=200))
    @settings(max_examples=2000, deadline=None)
    def test_any_datagram(self, data: bytes) -> None:
        """Random bytes decode or raise DecodeError, nothing else; what
        decodes re-encodes to exactly the same bytes."""
        try:
            packet = codec.decode(data)
        except DecodeError:
            return
        self.assertEqual(packet.encode(), data)

    @given(
        st.sampled_from(
            [b"\x06\x00\xff\x07\x06", b"\x06\x00\xff\x07\x00", b"\x06\x00\xff\x06\x00\x00\x11\xbe"]
        ),
        st.binary(max_size=120),
    )
    @settings(max_examples=2000, deadline=None)
    def test_plausible_datagrams(self, prefix: bytes, rest: bytes) -> None:
        """Datagrams that start like real ones (IPMI 2.0, 1.5, ASF) decode or
        raise DecodeError, and round-trip when they decode."""
        data = prefix + rest
        try:
            packet = codec.decode(data)
        except DecodeError:
            return
        self.assertEqual(packet.encode(), data)

    @given(st.binary(max_size=80))
    @settings(max_examples=1000, deadline=None)
    def test_inner_structures(self, data: bytes) -> None:
        """Each payload and message decoder takes any bytes: a value whose
        encoding decodes to an equal value, or DecodeError."""
        decoders: list[Any] = [
            codec.IpmiRequest.decode,
            codec.IpmiResponse.decode,
            codec.OpenSessionRequest.decode,
            codec.OpenSessionResponse.decode,
            codec.Rakp1.decode,
            codec.Rakp2.decode,
            codec.Rakp3.decode,
            codec.Rakp4.decode,
            codec.AsfPong.decode,
        ]
        for decoder in decoders:
            try:
                value: Any = decoder(data)
            except DecodeError:
                continue
            self.assertEqual(type(value).decode(value.encode()), value)

    @given(st.binary(max_size=40), st.sampled_from([12, 16]))
    @settings(max_examples=500, deadline=None)
    def test_trailers(self, trailer: bytes, length: int) -> None:
        """split_trailer takes any bytes: pad, next header and code, or DecodeError."""
        try:
            pad, _, code = codec.split_trailer(trailer, length)
        except DecodeError:
            return
        self.assertEqual(len(code), length)
        self.assertLessEqual(len(pad), 3)
