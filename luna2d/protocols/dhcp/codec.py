# -*- test-case-name: tests.dhcp.test_codec,tests.dhcp.test_fuzz -*-
"""DHCPv4 messages as plain data: ``decode(bytes) -> Message`` and
``Message.encode() -> bytes``.

What the wire format allows and this codec does (RFC 2131, RFC 2132):

- The fixed BOOTP header, the magic cookie and the options field. Pad (0)
  options are skipped; the end option (255) closes a field, and a field that
  stops without one is taken as ended (clients in the wild omit it).
- Option overload (option 52): the ``file`` and/or ``sname`` fields carry
  further options. Decoding reads them in the order options, file, sname;
  encoding spills options into them when the reply would not fit otherwise.
- Long and split options (RFC 3396): every instance of one option code, in the
  aggregate buffer's order, is joined into one value; a value longer than 255
  octets is written as consecutive instances.
- Unknown options are kept, by code, with their raw bytes.

A decoded ``Message`` holds logical content: option 52 is a property of the
encoding, not of the message, so it never appears in ``options``; the
``sname`` and ``file`` fields are empty when they carried options. Every
malformed input raises the one ``DecodeError``; nothing else escapes
``decode``."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

# Operation codes (op).
BOOTREQUEST = 1
BOOTREPLY = 2

# DHCP message types (option 53).
DISCOVER = 1
OFFER = 2
REQUEST = 3
DECLINE = 4
ACK = 5
NAK = 6
RELEASE = 7
INFORM = 8

MESSAGE_TYPE_NAMES = {
    DISCOVER: "DISCOVER",
    OFFER: "OFFER",
    REQUEST: "REQUEST",
    DECLINE: "DECLINE",
    ACK: "ACK",
    NAK: "NAK",
    RELEASE: "RELEASE",
    INFORM: "INFORM",
}

# Option codes luna2d reads or writes.
PAD = 0
SUBNET_MASK = 1
ROUTER = 3
DNS_SERVERS = 6
HOSTNAME = 12
DOMAIN_NAME = 15
BROADCAST_ADDRESS = 28
NTP_SERVERS = 42
VENDOR_SPECIFIC = 43
REQUESTED_ADDRESS = 50
LEASE_TIME = 51
OVERLOAD = 52
MESSAGE_TYPE = 53
SERVER_ID = 54
PARAMETER_REQUEST_LIST = 55
MESSAGE = 56
MAX_MESSAGE_SIZE = 57
RENEWAL_TIME = 58
REBINDING_TIME = 59
VENDOR_CLASS = 60
CLIENT_ID = 61
TFTP_SERVER_NAME = 66
BOOTFILE_NAME = 67
USER_CLASS = 77
RELAY_AGENT_INFO = 82
CLIENT_ARCH = 93
END = 255

MAGIC_COOKIE = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
HEADER_SIZE = HEADER.size  # 236
OPTIONS_OFFSET = HEADER_SIZE + len(MAGIC_COOKIE)  # 240
SNAME_OFFSET = 44
FILE_OFFSET = 108
SNAME_SIZE = 64
FILE_SIZE = 128
BROADCAST_FLAG = 0x8000
ZERO = "0.0.0.0"

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class DecodeError(ValueError):
    """The bytes are not a well-formed DHCPv4 message."""


class EncodeError(ValueError):
    """A message cannot be written within the size it must fit in."""


Options = tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One DHCPv4 message (RFC 2131 section 2), addresses as dotted quads.

    ``chaddr`` is the whole 16-octet client hardware address field;
    ``mac`` gives the Ethernet address within it. ``options`` are
    ``(code, value)`` pairs in the order each code first appeared."""

    op: int
    xid: int
    chaddr: bytes = bytes(16)
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = ZERO
    yiaddr: str = ZERO
    siaddr: str = ZERO
    giaddr: str = ZERO
    sname: bytes = b""
    file: bytes = b""
    options: Options = ()
    _by_code: dict[int, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.chaddr) < 16:
            object.__setattr__(self, "chaddr", self.chaddr + bytes(16 - len(self.chaddr)))
        elif len(self.chaddr) > 16:
            raise ValueError("chaddr: at most 16 octets")
        if len(self.sname) > SNAME_SIZE:
            raise ValueError("sname: at most 64 octets")
        if len(self.file) > FILE_SIZE:
            raise ValueError("file: at most 128 octets")
        by_code: dict[int, bytes] = {}
        for code, value in self.options:
            if not 0 < code < 255 or code == OVERLOAD:
                raise ValueError(f"option {code}: not an option a message may carry")
            if type(value) is not bytes:
                raise ValueError(f"option {code}: value must be bytes")
            if code not in by_code:
                by_code[code] = value
        object.__setattr__(self, "_by_code", by_code)

    # -- reading ------------------------------------------------------------
    def option(self, code: int) -> bytes | None:
        """The value of option ``code``, or None when absent."""
        return self._by_code.get(code)

    @property
    def message_type(self) -> int | None:
        """The DHCP message type (option 53), None for plain BOOTP or a bad value."""
        value = self.option(MESSAGE_TYPE)
        if value is None or len(value) != 1:
            return None
        return value[0]

    @property
    def mac(self) -> str:
        """The client's hardware address as lowercase colon-separated hex."""
        return self.chaddr[: min(self.hlen, 16)].hex(":")

    @property
    def broadcast(self) -> bool:
        """Whether the client asked for broadcast replies (RFC 2131 flags)."""
        return bool(self.flags & BROADCAST_FLAG)

    # -- writing ------------------------------------------------------------
    def encode(self, max_size: int | None = None, min_size: int = 0) -> bytes:
        """The message on the wire.

        With ``max_size`` the message is kept within that many octets (the
        client's maximum message size): options that do not fit in the
        options field go into the unused ``file`` and then ``sname`` fields
        (option overload). ``min_size`` pads with pad options after the end
        option, for BOOTP relays and ROMs that drop short messages."""
        instances = _instances(self.options)
        total = sum(len(i) for i in instances)
        overload = 0
        fields: list[list[bytes]] = [instances, [], []]
        if max_size is not None and OPTIONS_OFFSET + total + 1 > max_size:
            fields, overload = _overload(
                instances, max_size - OPTIONS_OFFSET - 3 - 1, not self.file, not self.sname
            )
        body = bytearray(MAGIC_COOKIE)
        if overload:
            body += bytes((OVERLOAD, 1, overload))
        for chunk in fields[0]:
            body += chunk
        body.append(END)
        file = self.file if not overload & 1 else _field(fields[1], FILE_SIZE)
        sname = self.sname if not overload & 2 else _field(fields[2], SNAME_SIZE)
        header = HEADER.pack(
            self.op,
            self.htype,
            self.hlen,
            self.hops,
            self.xid & 0xFFFFFFFF,
            self.secs,
            self.flags,
            _aton(self.ciaddr),
            _aton(self.yiaddr),
            _aton(self.siaddr),
            _aton(self.giaddr),
            self.chaddr,
            sname,
            file,
        )
        out = header + bytes(body)
        if len(out) < min_size:
            out += bytes(min_size - len(out))
        return out


def _aton(address: str) -> bytes:
    try:
        return socket.inet_aton(address)
    except OSError:
        raise ValueError(f"{address!r} is not an IPv4 address") from None


def _instances(options: Options) -> list[bytes]:
    """Each option as wire instances; values over 255 octets split (RFC 3396)."""
    out = []
    for code, value in options:
        if len(value) <= 255:
            out.append(bytes((code, len(value))) + value)
            continue
        for start in range(0, len(value), 255):
            part = value[start : start + 255]
            out.append(bytes((code, len(part))) + part)
    return out


def _overload(
    instances: list[bytes], options_room: int, file_free: bool, sname_free: bool
) -> tuple[list[list[bytes]], int]:
    """Spread instances over options, file, sname in that order, never going back."""
    rooms = [options_room, FILE_SIZE - 1 if file_free else -1, SNAME_SIZE - 1 if sname_free else -1]
    fields: list[list[bytes]] = [[], [], []]
    which = 0
    for instance in instances:
        while which < 3 and len(instance) > rooms[which]:
            which += 1
        if which == 3:
            raise EncodeError("the options do not fit in the client's maximum message size")
        fields[which].append(instance)
        rooms[which] -= len(instance)
    overload = (1 if fields[1] else 0) | (2 if fields[2] else 0)
    return fields, overload


def _field(instances: list[bytes], size: int) -> bytes:
    data = b"".join(instances) + bytes((END,))
    return data + bytes(size - len(data))


def _parse(
    data: bytes, start: int, end: int, values: dict[int, list[bytes]], order: list[int], where: str
) -> None:
    """Collect the option instances in ``data[start:end]``."""
    i = start
    while i < end:
        code = data[i]
        if code == PAD:
            i += 1
            continue
        if code == END:
            return
        if i + 1 >= end:
            raise DecodeError(f"{where}: option {code} has no length octet")
        length = data[i + 1]
        if i + 2 + length > end:
            raise DecodeError(f"{where}: option {code} runs past the end ({length} octets)")
        value = data[i + 2 : i + 2 + length]
        found = values.get(code)
        if found is None:
            values[code] = [value]
            order.append(code)
        else:
            found.append(value)
        i += 2 + length


def decode(data: bytes) -> Message:
    """Read one DHCPv4 message; raises DecodeError for anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("a message is bytes")
    data = bytes(data)
    if len(data) < OPTIONS_OFFSET:
        raise DecodeError(f"{len(data)} octets is shorter than a DHCP message ({OPTIONS_OFFSET})")
    (
        op,
        htype,
        hlen,
        hops,
        xid,
        secs,
        flags,
        ciaddr,
        yiaddr,
        siaddr,
        giaddr,
        chaddr,
        sname,
        file,
    ) = HEADER.unpack_from(data)
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise DecodeError(f"op {op} is neither BOOTREQUEST nor BOOTREPLY")
    if hlen > 16:
        raise DecodeError(f"hlen {hlen} is longer than the 16-octet chaddr field")
    if data[HEADER_SIZE:OPTIONS_OFFSET] != MAGIC_COOKIE:
        raise DecodeError("no DHCP magic cookie")
    values: dict[int, list[bytes]] = {}
    order: list[int] = []
    _parse(data, OPTIONS_OFFSET, len(data), values, order, "options")
    overload_values = values.pop(OVERLOAD, None)
    if overload_values is not None:
        order.remove(OVERLOAD)
        overload = overload_values[0]
        if len(overload_values) != 1 or len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise DecodeError("option 52 (overload) must be one octet of 1, 2 or 3")
        if overload[0] & 1:
            _parse(file, 0, FILE_SIZE, values, order, "file")
            file = b""
        if overload[0] & 2:
            _parse(sname, 0, SNAME_SIZE, values, order, "sname")
            sname = b""
        # An overload option inside an overloaded field has no meaning.
        if values.pop(OVERLOAD, None) is not None:
            order.remove(OVERLOAD)
    options = tuple(
        (code, values[code][0] if len(values[code]) == 1 else b"".join(values[code]))
        for code in order
    )
    return Message(
        op=op,
        xid=xid,
        chaddr=chaddr,
        htype=htype,
        hlen=hlen,
        hops=hops,
        secs=secs,
        flags=flags,
        ciaddr=socket.inet_ntoa(ciaddr),
        yiaddr=socket.inet_ntoa(yiaddr),
        siaddr=socket.inet_ntoa(siaddr),
        giaddr=socket.inet_ntoa(giaddr),
        sname=sname.rstrip(b"\x00"),
        file=file.rstrip(b"\x00"),
        options=options,
    )


# -- option values --------------------------------------------------------------
def addresses(*items: str) -> bytes:
    """An option value holding IPv4 addresses (router, DNS, NTP...)."""
    return b"".join(_aton(item) for item in items)


def u32(value: int) -> bytes:
    """A 32-bit unsigned option value (lease time, T1, T2)."""
    return _U32.pack(value & 0xFFFFFFFF)


def read_address(value: bytes | None) -> str | None:
    """An option holding exactly one IPv4 address, or None."""
    if value is None or len(value) != 4:
        return None
    return socket.inet_ntoa(value)


def read_addresses(value: bytes | None) -> tuple[str, ...]:
    """An option holding a list of IPv4 addresses; () when absent or malformed."""
    if not value or len(value) % 4:
        return ()
    return tuple(socket.inet_ntoa(value[i : i + 4]) for i in range(0, len(value), 4))


def read_u16(value: bytes | None) -> int | None:
    """A 16-bit unsigned option value, or None."""
    if value is None or len(value) != 2:
        return None
    return int(_U16.unpack(value)[0])


def read_u32(value: bytes | None) -> int | None:
    """A 32-bit unsigned option value, or None."""
    if value is None or len(value) != 4:
        return None
    return int(_U32.unpack(value)[0])


def read_u16_list(value: bytes | None) -> tuple[int, ...]:
    """A list of 16-bit values (option 93, client architectures); () when malformed."""
    if not value or len(value) % 2:
        return ()
    return tuple(_U16.unpack_from(value, i)[0] for i in range(0, len(value), 2))


def user_classes(value: bytes | None) -> tuple[bytes, ...]:
    """The user classes of option 77.

    RFC 3004 writes each class with a length octet in front; some firmware
    (iPXE among it) sends one bare string. So the answer is the classes the
    value parses into, if any, followed by the whole value as one class."""
    if not value:
        return ()
    out = []
    i = 0
    while i < len(value):
        length = value[i]
        if length == 0 or i + 1 + length > len(value):
            return (value,)
        out.append(value[i + 1 : i + 1 + length])
        i += 1 + length
    return tuple(out) + (value,)
