# -*- test-case-name: tests.tftp.test_codec -*-
"""TFTP packets on the wire (RFC 1350, OACK from RFC 2347) as frozen
dataclasses. Pure: no sockets, no files, no clock.

Strings (file name, mode, option names and values, error messages) are kept
as ``str`` decoded with latin-1, so every byte maps to one character and a
packet re-encodes to the bytes it came from. Option names keep the case the
peer sent; :func:`options_dict` gives the case-insensitive view RFC 2347
asks for."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

_HEAD = struct.Struct("!HH")
_OPCODE = struct.Struct("!H")


class DecodeError(ValueError):
    """The datagram is not a TFTP packet this codec understands."""


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


_DATA = int(Opcode.DATA)
_pack_head = _HEAD.pack


class ErrorCode(IntEnum):
    """ERROR packet codes: RFC 1350 (0-7) and RFC 2347 (8)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


Options = tuple[tuple[str, str], ...]


def _check_string(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be latin-1 text") from None


def _check_u16(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{what} must be 0..65535, not {value}")


def _check_options(options: Options) -> None:
    for name, value in options:
        if not name:
            raise ValueError("an option name must not be empty")
        _check_string(name, "an option name")
        _check_string(value, "an option value")


def _strings(parts: tuple[str, ...]) -> bytes:
    return b"".join(part.encode("latin-1") + b"\x00" for part in parts)


def _flatten(options: Options) -> tuple[str, ...]:
    return tuple(item for pair in options for item in pair)


@dataclass(frozen=True)
class _Request:
    """What RRQ and WRQ share: a file name, a mode and options."""

    opcode: ClassVar[Opcode]

    filename: str
    mode: str
    options: Options = ()

    def __post_init__(self) -> None:
        _check_string(self.filename, "the file name")
        _check_string(self.mode, "the mode")
        _check_options(self.options)

    def encode(self) -> bytes:
        """The packet's wire bytes."""
        strings = (self.filename, self.mode, *_flatten(self.options))
        return _OPCODE.pack(self.opcode) + _strings(strings)


@dataclass(frozen=True)
class ReadRequest(_Request):
    """RRQ: a client asks to read ``filename``."""

    opcode = Opcode.RRQ


@dataclass(frozen=True)
class WriteRequest(_Request):
    """WRQ: a client asks to write ``filename`` (luna2d refuses)."""

    opcode = Opcode.WRQ


@dataclass(frozen=True)
class Data:
    """DATA: block number ``block`` (16 bits, wraps) carrying ``data``."""

    block: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.block <= 0xFFFF:  # inline: one DATA per block sent
            _check_u16(self.block, "the block number")

    def encode(self) -> bytes:
        """The packet's wire bytes."""
        return _pack_head(_DATA, self.block) + self.data


@dataclass(frozen=True)
class Ack:
    """ACK of block ``block`` (0 acknowledges an OACK)."""

    block: int

    def __post_init__(self) -> None:
        _check_u16(self.block, "the block number")

    def encode(self) -> bytes:
        """The packet's wire bytes."""
        return _HEAD.pack(Opcode.ACK, self.block)


@dataclass(frozen=True)
class Error:
    """ERROR with a numeric ``code`` (see :class:`ErrorCode`) and a message."""

    code: int
    message: str = ""

    def __post_init__(self) -> None:
        _check_u16(self.code, "the error code")
        _check_string(self.message, "the error message")

    def encode(self) -> bytes:
        """The packet's wire bytes."""
        return _HEAD.pack(Opcode.ERROR, self.code) + _strings((self.message,))


@dataclass(frozen=True)
class OptionAck:
    """OACK: the options the server accepted, with the values it chose."""

    options: Options = ()

    def __post_init__(self) -> None:
        _check_options(self.options)

    def encode(self) -> bytes:
        """The packet's wire bytes."""
        return _OPCODE.pack(Opcode.OACK) + _strings(_flatten(self.options))


Packet = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck


def options_dict(options: Options) -> dict[str, str]:
    """Options by lower-cased name; the first of repeated names wins."""
    result: dict[str, str] = {}
    for name, value in options:
        result.setdefault(name.lower(), value)
    return result


def _split_strings(body: bytes, what: str) -> list[str]:
    if not body.endswith(b"\x00"):
        raise DecodeError(f"{what}: the last string is not NUL-terminated")
    return [part.decode("latin-1") for part in body[:-1].split(b"\x00")]


def _pairs(items: list[str], what: str) -> Options:
    # Some clients pad requests with extra NULs: empty trailing strings that
    # would leave a name without a value are padding, not an option.
    while items and items[-1] == "" and (len(items) % 2 == 1 or items[-2] == ""):
        items = items[:-1] if len(items) % 2 == 1 else items[:-2]
    if len(items) % 2:
        raise DecodeError(f"{what}: option {items[-1]!r} has no value")
    if any(not items[i] for i in range(0, len(items), 2)):
        raise DecodeError(f"{what}: an option without a name")
    return tuple((items[i], items[i + 1]) for i in range(0, len(items), 2))


def _request(body: bytes, what: str) -> tuple[str, str, Options]:
    items = _split_strings(body, what)
    if len(items) < 2:
        raise DecodeError(f"{what}: needs a file name and a mode")
    return items[0], items[1], _pairs(items[2:], what)


def decode(datagram: bytes) -> Packet:
    """Decode one TFTP datagram. Raises :class:`DecodeError` (and nothing
    else) when it is not a well-formed packet."""
    if len(datagram) < 2:
        raise DecodeError("shorter than an opcode")
    (opcode,) = _OPCODE.unpack_from(datagram)
    body = datagram[2:]
    if opcode == Opcode.DATA:
        if len(datagram) < 4:
            raise DecodeError("DATA: no block number")
        return Data(_OPCODE.unpack_from(body)[0], bytes(body[2:]))
    if opcode == Opcode.ACK:
        if len(datagram) != 4:
            raise DecodeError(f"ACK: {len(datagram)} bytes, not 4")
        return Ack(_OPCODE.unpack_from(body)[0])
    if opcode == Opcode.RRQ:
        return ReadRequest(*_request(body, "RRQ"))
    if opcode == Opcode.WRQ:
        return WriteRequest(*_request(body, "WRQ"))
    if opcode == Opcode.ERROR:
        if len(datagram) < 4:
            raise DecodeError("ERROR: no error code")
        # A missing terminator is tolerated: the message is what is there.
        message = body[2:].split(b"\x00", 1)[0].decode("latin-1")
        return Error(_OPCODE.unpack_from(body)[0], message)
    if opcode == Opcode.OACK:
        if not body:
            return OptionAck(())
        return OptionAck(_pairs(_split_strings(body, "OACK"), "OACK"))
    raise DecodeError(f"unknown opcode {opcode}")


def encode(packet: Packet) -> bytes:
    """The wire bytes of ``packet`` (the same as ``packet.encode()``)."""
    return packet.encode()
