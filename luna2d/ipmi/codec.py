# -*- test-case-name: tests.ipmi.test_codec -*-
"""Wire formats of IPMI over LAN: RMCP, the ASF presence ping, the IPMI 1.5
and IPMI 2.0 (RMCP+) session headers, IPMI messages, and the RMCP+ session
set-up payloads (Open Session, RAKP messages 1-4).

Every structure is a frozen dataclass with ``encode() -> bytes`` and a
``decode(data)`` class method. Anything that is not well formed raises
:class:`DecodeError` and nothing else. The packet layer (``decode``) keeps
every header bit it reads, so ``decode(data).encode() == data`` for every
datagram it accepts; that is what lets the session check an integrity code
over the bytes as they came. Multi-byte IPMI fields are little-endian, ASF
fields big-endian (IPMI v2.0 section 13, DSP0136 for ASF).

No crypto and no state here: the session (``luna2d.ipmi.session``) seals
and opens payloads with ``luna2d.ipmi.crypto``."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "AlgorithmRecord",
    "AsfPacket",
    "AsfPong",
    "DecodeError",
    "Ipmi15Packet",
    "Ipmi20Packet",
    "IpmiRequest",
    "IpmiResponse",
    "OpenSessionRequest",
    "OpenSessionResponse",
    "Packet",
    "Rakp1",
    "Rakp2",
    "Rakp3",
    "Rakp4",
    "RmcpAck",
    "checksum",
    "decode",
    "integrity_pad",
    "split_trailer",
]


class DecodeError(ValueError):
    """The bytes are not a well-formed instance of the structure asked for."""


# -- constants ------------------------------------------------------------------------
RMCP_VERSION = 0x06
RMCP_NO_ACK = 0xFF  # sequence number that asks for no RMCP ACK
CLASS_ASF = 0x06
CLASS_IPMI = 0x07
ASF_IANA = 4542
ASF_PING = 0x80
ASF_PONG = 0x40

AUTH_NONE = 0x00
AUTH_MD2 = 0x01
AUTH_MD5 = 0x02
AUTH_PASSWORD = 0x04
AUTH_OEM = 0x05
AUTH_RMCP_PLUS = 0x06
LEGACY_AUTH_TYPES = (AUTH_NONE, AUTH_MD2, AUTH_MD5, AUTH_PASSWORD, AUTH_OEM)

PAYLOAD_IPMI = 0x00
PAYLOAD_SOL = 0x01
PAYLOAD_OEM = 0x02
PAYLOAD_OPEN_SESSION_REQUEST = 0x10
PAYLOAD_OPEN_SESSION_RESPONSE = 0x11
PAYLOAD_RAKP1 = 0x12
PAYLOAD_RAKP2 = 0x13
PAYLOAD_RAKP3 = 0x14
PAYLOAD_RAKP4 = 0x15

NEXT_HEADER = 0x07  # the one value the RMCP+ session trailer uses

BMC_ADDRESS = 0x20  # responder address of the BMC on IPMB
CONSOLE_SWID = 0x81  # requester address: remote console software ID

MAX_USERNAME = 16


def checksum(data: bytes) -> int:
    """The IPMI 8-bit checksum: the two's complement of the byte sum."""
    return -sum(data) & 0xFF


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise DecodeError(f"{what}: {len(data)} bytes, at least {size} needed")


def _check_range(value: int, bits: int, name: str) -> None:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name}={value!r} does not fit in {bits} bits")


# -- RMCP and ASF -----------------------------------------------------------------------
def _rmcp(message_class: int, sequence: int = RMCP_NO_ACK, ack: bool = False) -> bytes:
    return bytes((RMCP_VERSION, 0, sequence, (0x80 if ack else 0) | message_class))


@dataclass(frozen=True)
class RmcpAck:
    """An RMCP ACK: the 4-byte header alone, with the ACK bit set."""

    message_class: int
    sequence: int

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        return _rmcp(self.message_class, self.sequence, ack=True)


@dataclass(frozen=True)
class AsfPacket:
    """An ASF message over RMCP (class 6): presence ping, pong, and others."""

    message_type: int
    tag: int
    data: bytes = b""
    iana: int = ASF_IANA
    sequence: int = RMCP_NO_ACK

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        if len(self.data) > 255:
            raise ValueError("ASF data is at most 255 bytes")
        return (
            _rmcp(CLASS_ASF, self.sequence)
            + struct.pack(">IBBBB", self.iana, self.message_type, self.tag, 0, len(self.data))
            + self.data
        )

    @classmethod
    def ping(cls, tag: int) -> AsfPacket:
        """A presence ping; the BMC answers with a pong carrying the same tag."""
        return cls(ASF_PING, tag)

    def pong(self) -> AsfPong:
        """The pong's fields; DecodeError if this is not a well-formed pong."""
        if self.message_type != ASF_PONG:
            raise DecodeError(f"ASF message type 0x{self.message_type:02x} is not a pong")
        return AsfPong.decode(self.data)


@dataclass(frozen=True)
class AsfPong:
    """The data of a presence pong: who answers and whether it speaks IPMI."""

    iana: int = ASF_IANA
    oem: int = 0
    entities: int = 0x81  # bit 7: IPMI supported; bits 3:0: ASF version 1.0
    interactions: int = 0x00  # bit 5: RMCP security extensions

    SIZE: ClassVar[int] = 16

    @property
    def ipmi(self) -> bool:
        """The pong says the managed system supports IPMI."""
        return bool(self.entities & 0x80)

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        return struct.pack(">IIBB6x", self.iana, self.oem, self.entities, self.interactions)

    @classmethod
    def decode(cls, data: bytes) -> AsfPong:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        if len(data) != cls.SIZE:
            raise DecodeError(f"ASF pong data: {len(data)} bytes, {cls.SIZE} expected")
        iana, oem, entities, interactions = struct.unpack(">IIBB6x", data)
        return cls(iana, oem, entities, interactions)


# -- IPMI session packets ----------------------------------------------------------------------
@dataclass(frozen=True)
class Ipmi15Packet:
    """An IPMI 1.5 session packet; the message is an encoded IPMI message.
    ``pad`` is the optional legacy pad byte some BMCs append."""

    message: bytes
    auth_type: int = AUTH_NONE
    sequence: int = 0
    session_id: int = 0
    auth_code: bytes = b""
    pad: bytes = b""

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        if self.auth_type not in LEGACY_AUTH_TYPES:
            raise ValueError(f"auth_type 0x{self.auth_type:02x} is not an IPMI 1.5 type")
        if len(self.auth_code) != (0 if self.auth_type == AUTH_NONE else 16):
            raise ValueError("auth_code: 16 bytes with authentication, none without")
        if len(self.message) > 255 or self.pad not in (b"", b"\x00"):
            raise ValueError("message at most 255 bytes; pad empty or one zero byte")
        return (
            _rmcp(CLASS_IPMI)
            + struct.pack("<BII", self.auth_type, self.sequence, self.session_id)
            + self.auth_code
            + bytes((len(self.message),))
            + self.message
            + self.pad
        )

    @classmethod
    def _decode(cls, body: bytes) -> Ipmi15Packet:
        _need(body, 10, "IPMI 1.5 session header")
        auth_type, sequence, session_id = struct.unpack_from("<BII", body)
        offset = 9
        auth_code = b""
        if auth_type != AUTH_NONE:
            _need(body, 26, "IPMI 1.5 session header with authentication code")
            auth_code = body[9:25]
            offset = 25
        length = body[offset]
        offset += 1
        message = body[offset : offset + length]
        if len(message) != length:
            raise DecodeError(f"IPMI 1.5 message length {length} but {len(message)} bytes follow")
        pad = body[offset + length :]
        if pad not in (b"", b"\x00"):
            raise DecodeError(f"IPMI 1.5 packet: {len(pad)} unexpected bytes after the message")
        return cls(message, auth_type, sequence, session_id, auth_code, pad)


@dataclass(frozen=True)
class Ipmi20Packet:
    """An IPMI 2.0 / RMCP+ session packet.

    ``payload`` is as on the wire (ciphertext when ``encrypted``).
    ``trailer`` is everything after the payload: for an authenticated
    packet the integrity pad, pad length, next header and integrity code
    (see :func:`split_trailer`); empty otherwise."""

    payload_type: int
    payload: bytes
    session_id: int = 0
    sequence: int = 0
    encrypted: bool = False
    authenticated: bool = False
    trailer: bytes = b""
    oem_iana: int = 0
    oem_payload_id: int = 0

    def header(self) -> bytes:
        """The session header: auth type through payload length."""
        _check_range(self.payload_type, 6, "payload_type")
        if len(self.payload) > 0xFFFF:
            raise ValueError("payload is at most 65535 bytes")
        kind = (
            self.payload_type
            | (0x80 if self.encrypted else 0)
            | (0x40 if self.authenticated else 0)
        )
        out = bytes((AUTH_RMCP_PLUS, kind))
        if self.payload_type == PAYLOAD_OEM:
            out += struct.pack("<IH", self.oem_iana, self.oem_payload_id)
        return out + struct.pack("<IIH", self.session_id, self.sequence, len(self.payload))

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        if self.trailer and not self.authenticated:
            raise ValueError("only an authenticated packet has a trailer")
        return _rmcp(CLASS_IPMI) + self.header() + self.payload + self.trailer

    def signed_bytes(self, code_length: int) -> bytes:
        """The bytes an integrity code of ``code_length`` covers: from the
        auth type through the next-header byte."""
        wire = self.encode()
        return wire[4 : len(wire) - code_length]

    @classmethod
    def _decode(cls, body: bytes) -> Ipmi20Packet:
        _need(body, 12, "IPMI 2.0 session header")
        kind = body[1]
        payload_type = kind & 0x3F
        offset = 2
        oem_iana = oem_payload_id = 0
        if payload_type == PAYLOAD_OEM:
            _need(body, 18, "IPMI 2.0 OEM session header")
            oem_iana, oem_payload_id = struct.unpack_from("<IH", body, 2)
            offset = 8
        session_id, sequence, length = struct.unpack_from("<IIH", body, offset)
        offset += 10
        payload = body[offset : offset + length]
        if len(payload) != length:
            raise DecodeError(f"IPMI 2.0 payload length {length} but {len(payload)} bytes follow")
        trailer = body[offset + length :]
        authenticated = bool(kind & 0x40)
        if trailer and not authenticated:
            raise DecodeError(
                f"IPMI 2.0 packet: {len(trailer)} bytes after an unauthenticated payload"
            )
        if authenticated and len(trailer) < 2:
            raise DecodeError("IPMI 2.0 authenticated packet without a session trailer")
        return cls(
            payload_type,
            payload,
            session_id,
            sequence,
            bool(kind & 0x80),
            authenticated,
            trailer,
            oem_iana,
            oem_payload_id,
        )


Packet = AsfPacket | RmcpAck | Ipmi15Packet | Ipmi20Packet


def decode(data: bytes) -> Packet:
    """One UDP datagram as the packet it holds; DecodeError when malformed."""
    if not isinstance(data, (bytes, bytearray)):
        raise DecodeError("a datagram is bytes")
    data = bytes(data)
    _need(data, 4, "RMCP header")
    version, reserved, sequence, class_byte = data[:4]
    if version != RMCP_VERSION:
        raise DecodeError(f"RMCP version 0x{version:02x}, 0x06 expected")
    if reserved != 0 or class_byte & 0x60:
        raise DecodeError("RMCP reserved bits are set")
    message_class = class_byte & 0x1F
    body = data[4:]
    if class_byte & 0x80:
        if body:
            raise DecodeError("an RMCP ACK carries no data")
        return RmcpAck(message_class, sequence)
    if message_class == CLASS_ASF:
        _need(body, 8, "ASF message header")
        iana, message_type, tag, asf_reserved, length = struct.unpack_from(">IBBBB", body)
        if asf_reserved != 0:
            raise DecodeError("ASF reserved byte is set")
        if len(body) != 8 + length:
            raise DecodeError(f"ASF data length {length} but {len(body) - 8} bytes follow")
        return AsfPacket(message_type, tag, body[8:], iana, sequence)
    if message_class != CLASS_IPMI:
        raise DecodeError(f"RMCP class 0x{message_class:02x} is neither ASF nor IPMI")
    if sequence != RMCP_NO_ACK:
        raise DecodeError("IPMI messages use RMCP sequence 0xff")
    _need(body, 1, "IPMI session header")
    if body[0] == AUTH_RMCP_PLUS:
        return Ipmi20Packet._decode(body)
    if body[0] in LEGACY_AUTH_TYPES:
        return Ipmi15Packet._decode(body)
    raise DecodeError(f"unknown IPMI authentication type 0x{body[0]:02x}")


def integrity_pad(header_and_payload_length: int) -> int:
    """How many 0xFF pad bytes make auth type .. next header a multiple of 4."""
    return -(header_and_payload_length + 2) % 4


def split_trailer(trailer: bytes, code_length: int) -> tuple[bytes, int, bytes]:
    """(integrity pad, next header, integrity code) of an authenticated
    packet's trailer, given the integrity code length of the session."""
    if len(trailer) < code_length + 2:
        raise DecodeError(
            f"session trailer of {len(trailer)} bytes cannot hold a {code_length}-byte code"
        )
    code = trailer[len(trailer) - code_length :]
    pad_length, next_header = trailer[-code_length - 2], trailer[-code_length - 1]
    pad = trailer[: len(trailer) - code_length - 2]
    if pad_length != len(pad):
        raise DecodeError(f"integrity pad length says {pad_length}, {len(pad)} pad bytes present")
    if pad_length > 3 or pad.strip(b"\xff"):
        raise DecodeError("integrity pad must be at most three 0xff bytes")
    return pad, next_header, code


# -- IPMI messages --------------------------------------------------------------------------------
@dataclass(frozen=True)
class IpmiRequest:
    """A request message from the remote console to the BMC."""

    netfn: int
    cmd: int
    data: bytes = b""
    rq_seq: int = 0
    rs_addr: int = BMC_ADDRESS
    rs_lun: int = 0
    rq_addr: int = CONSOLE_SWID
    rq_lun: int = 0

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        _check_range(self.netfn, 6, "netfn")
        _check_range(self.rq_seq, 6, "rq_seq")
        _check_range(self.rs_lun, 2, "rs_lun")
        _check_range(self.rq_lun, 2, "rq_lun")
        if self.netfn & 1:
            raise ValueError("a request has an even netfn")
        head = bytes((self.rs_addr, self.netfn << 2 | self.rs_lun))
        body = bytes((self.rq_addr, self.rq_seq << 2 | self.rq_lun, self.cmd)) + self.data
        return head + bytes((checksum(head),)) + body + bytes((checksum(body),))

    @classmethod
    def decode(cls, data: bytes) -> IpmiRequest:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        a, fn, b, seq, cmd, payload = _message_fields(data, 7, "IPMI request")
        if (fn >> 2) & 1:
            raise DecodeError("IPMI request with an odd (response) netfn")
        return cls(fn >> 2, cmd, payload, seq >> 2, a, fn & 3, b, seq & 3)


@dataclass(frozen=True)
class IpmiResponse:
    """A response message from the BMC; ``data`` follows the completion code."""

    netfn: int
    cmd: int
    completion_code: int = 0
    data: bytes = b""
    rq_seq: int = 0
    rq_addr: int = CONSOLE_SWID
    rq_lun: int = 0
    rs_addr: int = BMC_ADDRESS
    rs_lun: int = 0

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        _check_range(self.netfn, 6, "netfn")
        _check_range(self.rq_seq, 6, "rq_seq")
        if not self.netfn & 1:
            raise ValueError("a response has an odd netfn")
        head = bytes((self.rq_addr, self.netfn << 2 | self.rq_lun))
        body = (
            bytes((self.rs_addr, self.rq_seq << 2 | self.rs_lun, self.cmd, self.completion_code))
            + self.data
        )
        return head + bytes((checksum(head),)) + body + bytes((checksum(body),))

    @classmethod
    def decode(cls, data: bytes) -> IpmiResponse:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        a, fn, b, seq, cmd, payload = _message_fields(data, 8, "IPMI response")
        if not (fn >> 2) & 1:
            raise DecodeError("IPMI response with an even (request) netfn")
        return cls(fn >> 2, cmd, payload[0], payload[1:], seq >> 2, a, fn & 3, b, seq & 3)


def _message_fields(data: bytes, minimum: int, what: str) -> tuple[int, int, int, int, int, bytes]:
    data = bytes(data)
    _need(data, minimum, what)
    if checksum(data[:2]) != data[2]:
        raise DecodeError(f"{what}: header checksum mismatch")
    if checksum(data[3:-1]) != data[-1]:
        raise DecodeError(f"{what}: data checksum mismatch")
    return data[0], data[1], data[3], data[4], data[5], data[6:-1]


# -- RMCP+ session set-up -------------------------------------------------------------------------
@dataclass(frozen=True)
class AlgorithmRecord:
    """One of the three algorithm proposals of Open Session (type 0
    authentication, 1 integrity, 2 confidentiality)."""

    kind: int
    algorithm: int

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        _check_range(self.algorithm, 6, "algorithm")
        return bytes((self.kind, 0, 0, 8, self.algorithm, 0, 0, 0))

    @classmethod
    def decode(cls, data: bytes, kind: int) -> AlgorithmRecord:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        if len(data) != 8:
            raise DecodeError(f"algorithm record: {len(data)} bytes, 8 expected")
        if data[0] != kind:
            raise DecodeError(f"algorithm record type {data[0]}, {kind} expected")
        if data[3] != 8:
            raise DecodeError(f"algorithm record length {data[3]}, 8 expected")
        return cls(kind, data[4] & 0x3F)


def _records(data: bytes) -> tuple[AlgorithmRecord, AlgorithmRecord, AlgorithmRecord]:
    return (
        AlgorithmRecord.decode(data[0:8], 0),
        AlgorithmRecord.decode(data[8:16], 1),
        AlgorithmRecord.decode(data[16:24], 2),
    )


@dataclass(frozen=True)
class OpenSessionRequest:
    """RMCP+ Open Session Request (payload type 0x10)."""

    tag: int
    console_session_id: int
    authentication: int
    integrity: int
    confidentiality: int
    privilege: int = 0  # 0: the highest level the proposed algorithms allow

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        return (
            struct.pack("<BBxxI", self.tag, self.privilege, self.console_session_id)
            + AlgorithmRecord(0, self.authentication).encode()
            + AlgorithmRecord(1, self.integrity).encode()
            + AlgorithmRecord(2, self.confidentiality).encode()
        )

    @classmethod
    def decode(cls, data: bytes) -> OpenSessionRequest:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        if len(data) != 32:
            raise DecodeError(f"Open Session Request: {len(data)} bytes, 32 expected")
        tag, privilege, console = struct.unpack_from("<BBxxI", data)
        auth, integrity, conf = _records(data[8:32])
        return cls(
            tag, console, auth.algorithm, integrity.algorithm, conf.algorithm, privilege & 0x0F
        )


@dataclass(frozen=True)
class OpenSessionResponse:
    """RMCP+ Open Session Response (0x11). With a non-zero status the BMC
    may stop after the console session ID, or even after the status byte;
    the missing fields are then None."""

    tag: int
    status: int
    console_session_id: int | None
    privilege: int = 0
    bmc_session_id: int | None = None
    authentication: int | None = None
    integrity: int | None = None
    confidentiality: int | None = None

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        if self.console_session_id is None:
            return bytes((self.tag, self.status))
        head = struct.pack("<BBBxI", self.tag, self.status, self.privilege, self.console_session_id)
        if self.bmc_session_id is None:
            return head
        if self.authentication is None or self.integrity is None or self.confidentiality is None:
            raise ValueError("a full Open Session Response names all three algorithms")
        return (
            head
            + struct.pack("<I", self.bmc_session_id)
            + AlgorithmRecord(0, self.authentication).encode()
            + AlgorithmRecord(1, self.integrity).encode()
            + AlgorithmRecord(2, self.confidentiality).encode()
        )

    @classmethod
    def decode(cls, data: bytes) -> OpenSessionResponse:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        _need(data, 2, "Open Session Response")
        if len(data) == 2 and data[1] != 0:
            return cls(data[0], data[1], None)
        _need(data, 8, "Open Session Response")
        tag, status, privilege, console = struct.unpack_from("<BBBxI", data)
        if len(data) == 8 and status != 0:
            return cls(tag, status, console, privilege & 0x0F)
        if len(data) != 36:
            raise DecodeError(f"Open Session Response: {len(data)} bytes, 36 expected")
        auth, integrity, conf = _records(data[12:36])
        return cls(
            tag,
            status,
            console,
            privilege & 0x0F,
            _u32(data, 8),
            auth.algorithm,
            integrity.algorithm,
            conf.algorithm,
        )


@dataclass(frozen=True)
class Rakp1:
    """RAKP Message 1 (0x12): the console's random number, role and user name."""

    tag: int
    bmc_session_id: int
    console_random: bytes
    role: int
    username: bytes

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        if len(self.console_random) != 16 or len(self.username) > MAX_USERNAME:
            raise ValueError("console_random is 16 bytes, username at most 16")
        return (
            struct.pack("<BxxxI", self.tag, self.bmc_session_id)
            + self.console_random
            + bytes((self.role, 0, 0, len(self.username)))
            + self.username
        )

    @classmethod
    def decode(cls, data: bytes) -> Rakp1:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        _need(data, 28, "RAKP Message 1")
        tag, bmc = struct.unpack_from("<BxxxI", data)
        length = data[27]
        if length > MAX_USERNAME or len(data) != 28 + length:
            raise DecodeError(
                f"RAKP Message 1: user name length {length} does not match {len(data) - 28} bytes"
            )
        return cls(tag, bmc, data[8:24], data[24], data[28:])


@dataclass(frozen=True)
class Rakp2:
    """RAKP Message 2 (0x13): the BMC's random number, GUID and key
    exchange authentication code. Fields after the status are empty when
    the BMC reports an error and stops early."""

    tag: int
    status: int
    console_session_id: int
    bmc_random: bytes = b""
    bmc_guid: bytes = b""
    auth_code: bytes = b""

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        head = struct.pack("<BBxxI", self.tag, self.status, self.console_session_id)
        if not self.bmc_random and not self.bmc_guid and not self.auth_code:
            return head
        if len(self.bmc_random) != 16 or len(self.bmc_guid) != 16:
            raise ValueError("bmc_random and bmc_guid are 16 bytes")
        return head + self.bmc_random + self.bmc_guid + self.auth_code

    @classmethod
    def decode(cls, data: bytes) -> Rakp2:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        _need(data, 8, "RAKP Message 2")
        tag, status, console = struct.unpack_from("<BBxxI", data)
        if len(data) == 8:
            return cls(tag, status, console)
        _need(data, 40, "RAKP Message 2")
        return cls(tag, status, console, data[8:24], data[24:40], data[40:])


@dataclass(frozen=True)
class Rakp3:
    """RAKP Message 3 (0x14): the console's key exchange authentication code
    (or an error status that tells the BMC to drop the session)."""

    tag: int
    status: int
    bmc_session_id: int
    auth_code: bytes = b""

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        return struct.pack("<BBxxI", self.tag, self.status, self.bmc_session_id) + self.auth_code

    @classmethod
    def decode(cls, data: bytes) -> Rakp3:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        _need(data, 8, "RAKP Message 3")
        tag, status, bmc = struct.unpack_from("<BBxxI", data)
        return cls(tag, status, bmc, data[8:])


@dataclass(frozen=True)
class Rakp4:
    """RAKP Message 4 (0x15): the BMC's integrity check value over the session."""

    tag: int
    status: int
    console_session_id: int
    integrity_check: bytes = b""

    def encode(self) -> bytes:
        """The structure as wire bytes (ValueError for fields that do not fit)."""
        return (
            struct.pack("<BBxxI", self.tag, self.status, self.console_session_id)
            + self.integrity_check
        )

    @classmethod
    def decode(cls, data: bytes) -> Rakp4:
        """Parse ``data``; DecodeError unless it is exactly one such structure."""
        _need(data, 8, "RAKP Message 4")
        tag, status, console = struct.unpack_from("<BBxxI", data)
        return cls(tag, status, console, data[8:])
