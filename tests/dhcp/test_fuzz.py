"""Property tests with hypothesis: every input to the codec decodes or raises
DecodeError; what decodes re-encodes to a message that decodes the same;
built messages round-trip, within a size limit too (or raise EncodeError);
and the DHCP protocol survives any datagram, plausible or not, without an
error, answering only with well-formed replies to the request's xid."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.trial import unittest

from luna2d.counters import Counters
from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import DecodeError, EncodeError, Message
from luna2d.protocols.dhcp.policy import Policy, Settings, max_reply_size
from luna2d.protocols.dhcp.protocol import COUNTERS, DHCPProtocol
from tests.dhcp.fakes import (
    KNOWN_MAC,
    LINK,
    UNKNOWN_MAC,
    check_pools,
    index,
    network,
    node,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addresses = st.sampled_from(
    [
        "0.0.0.0",
        "10.141.0.1",
        "10.141.0.200",
        "10.141.0.250",
        "10.149.0.1",
        "192.0.2.7",
        "255.255.255.255",
    ]
) | st.ip_addresses(v=4).map(str)
option_codes = st.integers(1, 254).filter(lambda c: c != codec.OVERLOAD)
option_values = st.binary(max_size=600)
options = st.lists(
    st.tuples(option_codes, option_values), max_size=8, unique_by=lambda o: o[0]
).map(tuple)


def header(op: int, chaddr: bytes, giaddr: str = "0.0.0.0", ciaddr: str = "0.0.0.0") -> bytes:
    import socket

    return codec.HEADER.pack(
        op,
        1,
        6,
        0,
        42,
        0,
        0,
        socket.inet_aton(ciaddr),
        bytes(4),
        bytes(4),
        socket.inet_aton(giaddr),
        chaddr.ljust(16, b"\x00"),
        bytes(64),
        bytes(128),
    )


@st.composite
def messages(draw: st.DrawFn) -> Message:
    return Message(
        op=draw(st.sampled_from([1, 2])),
        xid=draw(st.integers(0, 2**32 - 1)),
        chaddr=draw(st.binary(max_size=16)),
        htype=draw(st.integers(0, 255)),
        hlen=draw(st.integers(0, 16)),
        hops=draw(st.integers(0, 255)),
        secs=draw(st.integers(0, 65535)),
        flags=draw(st.integers(0, 65535)),
        ciaddr=draw(addresses),
        yiaddr=draw(addresses),
        siaddr=draw(addresses),
        giaddr=draw(addresses),
        sname=draw(st.binary(max_size=64)).rstrip(b"\x00"),
        file=draw(st.binary(max_size=128)).rstrip(b"\x00"),
        options=draw(options),
    )


# Options a DHCP client might send, right and wrong.
request_option = st.one_of(
    st.tuples(
        st.just(codec.REQUESTED_ADDRESS),
        st.sampled_from(
            [
                codec.addresses("10.141.0.1"),
                codec.addresses("10.141.0.201"),
                codec.addresses("1.2.3.4"),
                b"\x01\x02",
            ]
        ),
    ),
    st.tuples(
        st.just(codec.SERVER_ID),
        st.sampled_from(
            [codec.addresses(LINK.address), codec.addresses("10.141.0.9"), b"", b"\x00" * 5]
        ),
    ),
    st.tuples(st.just(codec.MAX_MESSAGE_SIZE), st.binary(max_size=3)),
    st.tuples(st.just(codec.CLIENT_ARCH), st.binary(max_size=5)),
    st.tuples(
        st.just(codec.VENDOR_CLASS),
        st.sampled_from(
            [
                b"PXEClient",
                b"PXEClient:Arch:00007:UNDI:003016",
                b"PXEClient:Arch:xx",
                b"HTTPClient",
                b"\xff\xfe",
            ]
        ),
    ),
    st.tuples(
        st.just(codec.USER_CLASS), st.sampled_from([b"iPXE", b"\x04iPXE", b"\x00", b"\x09abc"])
    ),
    st.tuples(st.just(codec.PARAMETER_REQUEST_LIST), st.binary(max_size=20)),
    st.tuples(st.just(codec.HOSTNAME), st.binary(max_size=40)),
    st.tuples(st.just(codec.CLIENT_ID), st.binary(max_size=300)),
    st.tuples(st.just(codec.RELAY_AGENT_INFO), st.binary(max_size=300)),
    st.tuples(option_codes, option_values),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    mac = draw(st.sampled_from([KNOWN_MAC, UNKNOWN_MAC, "02:00:00:00:00:98", "ff:ff:ff:ff:ff:ff"]))
    kind = draw(st.sampled_from([1, 1, 1, 3, 3, 3, 3, 4, 7, 8]) | st.integers(0, 12))
    extra = draw(st.lists(request_option, max_size=6, unique_by=lambda o: o[0]))
    opts = tuple(o for o in extra if o[0] != codec.MESSAGE_TYPE)
    message = Message(
        op=draw(st.sampled_from([1] * 9 + [2])),
        xid=draw(st.integers(0, 2**32 - 1)),
        chaddr=bytes.fromhex(mac.replace(":", "")),
        htype=draw(st.sampled_from([1] * 9 + [6])),
        hlen=draw(st.sampled_from([6] * 9 + [0, 16])),
        flags=draw(st.sampled_from([0, 0x8000])),
        ciaddr=draw(addresses),
        giaddr=draw(st.sampled_from(["0.0.0.0", "0.0.0.0", "10.141.0.250", "10.149.0.1"])),
        options=((codec.MESSAGE_TYPE, bytes([kind])),) + opts if kind else opts,
    )
    data = message.encode()
    if draw(st.integers(0, 3)):
        return data
    # Damage it: cut, flip bytes, append junk.
    cut = draw(st.integers(0, len(data)))
    flips = draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4)
    )
    damaged = bytearray(data[:cut] if draw(st.booleans()) else data)
    for position, value in flips:
        if position < len(damaged):
            damaged[position] = value
    return bytes(damaged) + draw(st.binary(max_size=20))


class CodecFuzzTests(unittest.TestCase):
    @SETTINGS
    @given(st.binary(max_size=1500))
    def test_any_bytes(self, data: bytes) -> None:
        """Arbitrary bytes decode to a Message or raise DecodeError, nothing else."""
        try:
            codec.decode(data)
        except DecodeError:
            pass

    @SETTINGS
    @given(
        st.sampled_from([1, 2]),
        st.binary(min_size=6, max_size=6),
        st.binary(max_size=400),
        st.binary(max_size=128),
        st.binary(max_size=64),
    )
    def test_plausible_bytes(
        self, op: int, chaddr: bytes, body: bytes, file: bytes, sname: bytes
    ) -> None:
        """A valid header and cookie followed by random option bytes (and
        random file and sname fields, with an overload option in front half
        the time) decodes or raises DecodeError; what decodes round-trips."""
        data = bytearray(header(op, chaddr) + codec.MAGIC_COOKIE)
        data[codec.FILE_OFFSET : codec.FILE_OFFSET + len(file)] = file
        data[codec.SNAME_OFFSET : codec.SNAME_OFFSET + len(sname)] = sname
        if body[:1] and body[0] % 2:
            data += bytes([codec.OVERLOAD, 1, body[0] % 4])
        data += body
        try:
            message = codec.decode(bytes(data))
        except DecodeError:
            return
        self.assertEqual(codec.decode(message.encode()), message)

    @SETTINGS
    @given(messages())
    def test_round_trip(self, message: Message) -> None:
        """Any message encodes and decodes back to itself."""
        self.assertEqual(codec.decode(message.encode()), message)

    @SETTINGS
    @given(messages(), st.integers(300, 1500))
    def test_round_trip_limited(self, message: Message, limit: int) -> None:
        """Within a size limit a message either fits (overloading as needed)
        and decodes back to itself, or EncodeError says it cannot."""
        try:
            data = message.encode(max_size=limit)
        except EncodeError:
            return
        self.assertLessEqual(len(data), limit)
        self.assertEqual(codec.decode(data), message)


class ProtocolFuzzTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.index = index(
            nodes=[node(), node("02:00:00:00:00:98", "node002", "10.141.0.2", bootmenu=True)],
            networks=[
                network(),
                network(
                    "ib",
                    "10.149.0.0/16",
                    dhcp=True,
                    begin="10.149.0.10",
                    end="10.149.0.12",
                    controller=None,
                ),
            ],
        )
        self.policy = Policy(lambda: self.index, Settings(lease_time=600))
        self.stats = Counters(COUNTERS)
        self.protocol = DHCPProtocol(
            LINK, self.policy, self.clock, self.stats, lambda changes: None
        )
        self.transport = FakeDatagramTransport()
        self.protocol.makeConnection(self.transport)  # type: ignore[arg-type]

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(requests() | st.binary(max_size=600), min_size=1, max_size=6), st.integers(0, 2000)
    )
    def test_survives_any_datagram(self, datagrams: list[bytes], pause: int) -> None:
        """Sequences of datagrams, well-formed or damaged: no exception, no
        error counted, and every reply written decodes as a BOOTREPLY to the
        request's xid, within the client's size limit, sent to port 67 or 68;
        and the pools' free-address bitmaps always agree with the leases and
        offers on record."""
        for data in datagrams:
            before = len(self.transport.written)
            self.protocol.datagramReceived(data, ("10.141.0.250", 68))
            check_pools(self.policy)  # as of the last packet the policy saw
            self.clock.advance(pause)
            self.assertEqual(self.stats["errors"], 0)
            for reply_data, dest in self.transport.written[before:]:
                reply = codec.decode(reply_data)
                request = codec.decode(data)
                self.assertEqual(reply.op, codec.BOOTREPLY)
                self.assertEqual(reply.xid, request.xid)
                self.assertIn(reply.message_type, (codec.OFFER, codec.ACK, codec.NAK))
                self.assertLessEqual(len(reply_data), max_reply_size(request))
                self.assertIn(dest[1], (67, 68))
