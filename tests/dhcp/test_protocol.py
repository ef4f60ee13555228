"""The DHCP transport: DHCPProtocol over a fake datagram transport (replies
written to the policy's destination, bad datagrams dropped and counted,
failures contained), the LeaseWriter's ordered batches, and DHCPServer on
real UDP sockets bound to the loopback interface answering through the
relay path (giaddr), only once its leases are loaded."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.trial import unittest

from luna2d.counters import Counters
from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.policy import EVENTS, Lease, LeaseChange, Policy, Settings
from luna2d.protocols.dhcp.protocol import (
    COUNTERS,
    READ_BUDGET,
    RECEIVE_BUFFER,
    DHCPProtocol,
    DHCPServer,
    InterfaceError,
    LeaseWriter,
    bound_socket,
    interface_address,
)
from tests.dhcp.fakes import (
    KNOWN_MAC,
    LINK,
    UNKNOWN_MAC,
    index,
    network,
    node,
    request,
)
from tests.integration.test_daemon import DaemonCase, the_reactor


def events(stats: Counters) -> dict[str, int]:
    """The policy outcomes counted so far (those not zero)."""
    return {name: count for name, count in stats.snapshot().items() if name in EVENTS and count}


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[LeaseChange]] = []

    def __call__(self, changes: Any) -> None:
        self.batches.append(list(changes))


class ProtocolTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.index = index()
        self.policy = Policy(lambda: self.index, Settings())
        self.stats = Counters(COUNTERS)
        self.changes = Recorder()
        self.ready = True
        self.protocol = DHCPProtocol(
            LINK, self.policy, self.clock, self.stats, self.changes, lambda: self.ready
        )
        self.transport = FakeDatagramTransport()
        self.protocol.makeConnection(self.transport)  # type: ignore[arg-type]

    def send(self, data: bytes) -> None:
        self.protocol.datagramReceived(data, ("0.0.0.0", 68))

    def test_reply_written(self) -> None:
        """A known node's DISCOVER is answered with an OFFER of at least 300
        octets, broadcast to port 68; counters say so."""
        self.send(request(codec.DISCOVER).encode())
        self.assertEqual(len(self.transport.written), 1)
        data, dest = self.transport.written[0]
        self.assertEqual(dest, ("255.255.255.255", 68))
        self.assertGreaterEqual(len(data), 300)
        reply = codec.decode(data)
        self.assertEqual((reply.message_type, reply.yiaddr), (codec.OFFER, "10.141.0.1"))
        self.assertEqual(
            (self.stats["received"], self.stats["sent"], events(self.stats)), (1, 1, {"offer": 1})
        )

    def test_malformed_dropped(self) -> None:
        """Garbage is dropped and counted as malformed; nothing is written."""
        self.send(b"\x01" * 10)
        self.send(request(codec.DISCOVER).encode()[:200])
        self.assertEqual(self.transport.written, [])
        self.assertEqual((self.stats["received"], self.stats["malformed"]), (2, 2))

    def test_replies_and_silence_ignored(self) -> None:
        """A BOOTREPLY, and a request the policy does not answer, count as ignored."""
        self.send(codec.Message(op=2, xid=1, options=((53, b"\x02"),)).encode())
        self.index = index(networks=[network(dhcp=False)])
        self.send(request(codec.DISCOVER, UNKNOWN_MAC).encode())
        self.assertEqual(self.transport.written, [])
        self.assertEqual(self.stats["ignored"], 2)

    def test_not_ready(self) -> None:
        """Before the leases are loaded nothing is answered."""
        self.ready = False
        self.send(request(codec.DISCOVER).encode())
        self.assertEqual((self.transport.written, self.stats["not_ready"]), ([], 1))

    def test_lease_changes_handed_on(self) -> None:
        """An ACK that binds a lease hands the change to the writer."""
        self.send(
            request(
                codec.DISCOVER,
                UNKNOWN_MAC,
                ((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.201")),),
            ).encode()
        )
        self.send(
            request(
                codec.REQUEST,
                UNKNOWN_MAC,
                ((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.201")),),
            ).encode()
        )
        self.assertEqual(events(self.stats), {"offer": 1, "ack": 1})
        self.assertEqual([[c.address for c in b] for b in self.changes.batches], [["10.141.0.201"]])

    def test_policy_failure_contained(self) -> None:
        """An exception in the policy is logged and counted; the protocol goes on."""

        def broken() -> Any:
            raise RuntimeError("index unavailable")

        self.policy.index = broken
        self.send(request(codec.DISCOVER).encode())
        self.assertEqual(self.stats["errors"], 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.policy.index = lambda: self.index
        self.send(request(codec.DISCOVER).encode())
        self.assertEqual(len(self.transport.written), 1)

    def test_reply_too_large_dropped(self) -> None:
        """A reply the client's own options leave no room for (a long client
        identifier and relay agent information, both echoed) is not sent and
        is counted as oversized, not as an error (no traceback logged); the
        lease it bound still goes to the writer, as the policy holds it."""
        self.send(
            request(
                codec.DISCOVER,
                UNKNOWN_MAC,
                ((codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.201")),),
            ).encode()
        )
        self.transport.written.clear()
        self.send(
            request(
                codec.REQUEST,
                UNKNOWN_MAC,
                (
                    (codec.REQUESTED_ADDRESS, codec.addresses("10.141.0.201")),
                    (codec.CLIENT_ID, b"\x01" * 300),
                    (codec.RELAY_AGENT_INFO, b"\x02" * 300),
                ),
            ).encode()
        )
        self.assertEqual(self.transport.written, [])
        self.assertEqual(
            (self.stats["oversized"], self.stats["errors"], events(self.stats)),
            (1, 0, {"offer": 1}),
        )
        self.assertEqual([[c.address for c in b] for b in self.changes.batches], [["10.141.0.201"]])
        self.assertIn("10.141.0.201", self.policy.leases)

    def test_send_failure_contained(self) -> None:
        """A socket error on write is counted, not raised."""

        class Failing:
            def write(self, data: bytes, addr: Any) -> None:
                raise OSError(101, "Network is unreachable")

        self.protocol.transport = Failing()  # type: ignore[assignment]
        self.send(request(codec.DISCOVER).encode())
        self.assertEqual((self.stats["sent"], self.stats["send_errors"]), (0, 1))


class LeaseWriterTests(unittest.TestCase):
    def setUp(self) -> None:
        self.calls: list[tuple[list[str], defer.Deferred]] = []
        self.stats = Counters(COUNTERS)
        self.writer = LeaseWriter(self.save, self.stats)

    def save(self, batch: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.calls.append(([c.address for c in batch], d))
        return d

    def change(self, address: str) -> LeaseChange:
        return LeaseChange(address, Lease(address, KNOWN_MAC, 1.0))

    def test_batches_in_order(self) -> None:
        """Changes arriving during a write go together into the next one, in order;
        flushed() fires when all are written."""
        self.writer([self.change("a")])
        self.writer([self.change("b")])
        self.writer([self.change("c"), self.change("d")])
        flushed = self.writer.flushed()
        self.assertEqual([c[0] for c in self.calls], [["a"]])
        self.calls[0][1].callback(None)
        self.assertEqual([c[0] for c in self.calls], [["a"], ["b", "c", "d"]])
        self.assertNoResult(flushed)
        self.calls[1][1].callback(None)
        self.successResultOf(flushed)
        self.assertEqual(self.stats["lease_writes"], 2)
        self.successResultOf(self.writer.flushed())

    def test_failure_counted_and_next_written(self) -> None:
        """A failed write is logged and counted; later changes are still written."""
        self.writer([self.change("a")])
        self.writer([self.change("b")])
        self.calls[0][1].errback(RuntimeError("disk full"))
        self.assertEqual(self.stats["lease_write_errors"], 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.calls[1][0], ["b"])


class Listener(protocol.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Any]] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InterfaceTests(unittest.TestCase):
    def test_loopback_address(self) -> None:
        """The address of lo is read from the kernel."""
        self.assertEqual(interface_address("lo"), "127.0.0.1")

    def test_missing_interface(self) -> None:
        """A missing interface, and a name too long to be one, raise InterfaceError."""
        with self.assertRaises(InterfaceError) as caught:
            interface_address("nosuchif0")
        self.assertIn("does not exist", str(caught.exception))
        with self.assertRaises(InterfaceError):
            interface_address("x" * 20)

    def test_receive_buffer(self) -> None:
        """A served socket gets a 4 MiB receive buffer for a boot storm's
        bursts: forced past the kernel's rmem_max when privileged, else as
        much as rmem_max allows (the kernel reports twice what was set)."""
        sock = bound_socket("lo", free_udp_port())
        self.addCleanup(sock.close)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if os.geteuid() == 0:
            self.assertGreaterEqual(got, RECEIVE_BUFFER)
        else:
            cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
            self.assertGreaterEqual(got, min(RECEIVE_BUFFER, cap))

    def test_bind_failure_leaves_nothing(self) -> None:
        """A server whose second interface is missing binds nothing at all."""
        server = DHCPServer(
            the_reactor(),
            ["lo", "nosuchif0"],
            Policy(index),
            lambda: defer.succeed([]),
            lambda changes: defer.succeed(None),
            port=free_udp_port(),
        )
        self.assertRaises(InterfaceError, server.privilegedStartService)
        self.assertEqual(server.ports, [])


class LoopbackServerTests(DaemonCase):
    """DHCPServer on a real socket bound to lo, asked through the relay path."""

    def setUp(self) -> None:
        super().setUp()
        self.reactor = the_reactor()
        self.index = index(
            nodes=[node(address="127.0.0.5", net="loop", gateway="127.0.0.1")],
            networks=[
                network(
                    "loop",
                    "127.0.0.0/8",
                    gateway="127.0.0.1",
                    nameservers=("127.0.0.1",),
                    begin="127.0.0.100",
                    end="127.0.0.110",
                    controller=None,
                )
            ],
        )
        self.listener = Listener()
        self.client = self.reactor.listenUDP(0, self.listener, interface="127.0.0.1")
        self.addCleanup(self.client.stopListening)
        self.settings = Settings(server_port=self.client.getHost().port)
        self.saved: list[list[str]] = []
        self.load: defer.Deferred = defer.Deferred()
        self.server = DHCPServer(
            self.reactor,
            ["lo"],
            Policy(lambda: self.index, self.settings),
            lambda: self.load,
            self.save,
            port=free_udp_port(),
        )
        self.server.privilegedStartService()
        self.server.startService()
        self.addCleanup(self.server.stopService)

    def save(self, changes: Any) -> defer.Deferred:
        self.saved.append([c.address for c in changes])
        return defer.succeed(None)

    async def ask(self, message: codec.Message, expect_reply: bool = True) -> codec.Message | None:
        """Send ``message`` to the server; its reply (None after 0.3 s when none is expected)."""
        before = len(self.listener.received)
        self.client.write(message.encode(), ("127.0.0.1", self.server.port))
        deadline = self.reactor.seconds() + (5 if expect_reply else 0.3)
        while len(self.listener.received) == before and self.reactor.seconds() < deadline:
            await task.deferLater(self.reactor, 0.01, lambda: None)
        if len(self.listener.received) == before:
            if expect_reply:
                self.fail("no reply within 5 s")
            return None
        return codec.decode(self.listener.received[-1][0])

    async def test_relayed_dora(self) -> None:
        """Nothing is answered before the leases are loaded; then a relayed
        DISCOVER and REQUEST of an unknown machine get OFFER and ACK at the
        relay's port, and the lease goes to save; a known node gets its address."""
        relay: dict[str, Any] = {"giaddr": "127.0.0.1", "hops": 1}
        self.assertIsNone(
            await self.ask(request(codec.DISCOVER, UNKNOWN_MAC, **relay), expect_reply=False)
        )
        self.assertEqual(self.server.stats["not_ready"], 1)
        self.assertFalse(self.server.healthy)
        self.load.callback(
            [Lease("127.0.0.100", "02:00:00:00:00:55", self.reactor.seconds() + 600)]
        )
        self.assertTrue(self.server.healthy)
        offer = await self.ask(request(codec.DISCOVER, UNKNOWN_MAC, xid=7, **relay))
        assert offer is not None
        self.assertEqual(
            (offer.message_type, offer.xid, offer.yiaddr), (codec.OFFER, 7, "127.0.0.101")
        )
        self.assertEqual(codec.read_address(offer.option(codec.SERVER_ID)), "127.0.0.1")
        ack = await self.ask(
            request(
                codec.REQUEST,
                UNKNOWN_MAC,
                xid=8,
                options=(
                    (codec.SERVER_ID, codec.addresses("127.0.0.1")),
                    (codec.REQUESTED_ADDRESS, codec.addresses("127.0.0.101")),
                ),
                **relay,
            )
        )
        assert ack is not None
        self.assertEqual((ack.message_type, ack.yiaddr), (codec.ACK, "127.0.0.101"))
        self.assertEqual(self.saved, [["127.0.0.101"]])
        known = await self.ask(request(codec.DISCOVER, KNOWN_MAC, xid=9, **relay))
        assert known is not None
        self.assertEqual((known.yiaddr, known.option(codec.HOSTNAME)), ("127.0.0.5", b"node001"))

    async def test_garbage_survived(self) -> None:
        """Garbage datagrams on the real socket are counted, and the server
        still answers afterwards."""
        self.load.callback([])
        for data in (b"", b"\x00" * 300, b"\x01\x01\x06\x00" + bytes(300)):
            self.client.write(data, ("127.0.0.1", self.server.port))
        reply = await self.ask(request(codec.DISCOVER, KNOWN_MAC, giaddr="127.0.0.1"))
        assert reply is not None
        self.assertEqual(reply.yiaddr, "127.0.0.5")
        self.assertEqual(self.server.stats["malformed"], 3)

    async def test_one_callback_reads_a_bounded_batch(self) -> None:
        """A backlog of 400 datagrams (120 KB) is not read in one reactor
        callback: one read of the real socket takes at most READ_BUDGET
        bytes of them, and the rest wait for the next turn."""
        self.load.callback([])
        port = self.server.ports[0]
        port.stopReading()
        datagram = b"\x00" * 300
        for _ in range(400):
            self.client.write(datagram, ("127.0.0.1", self.server.port))
        await task.deferLater(self.reactor, 0.05, lambda: None)
        port.doRead()
        first = self.server.stats["malformed"]
        self.assertGreater(first, 0)
        self.assertLessEqual(first, READ_BUDGET // len(datagram) + 1)
        port.startReading()
        while self.server.stats["malformed"] < 400:
            await task.deferLater(self.reactor, 0.01, lambda: None)

    async def test_stop_closes_sockets(self) -> None:
        """After stopService the port is free again and nothing answers."""
        self.load.callback([])
        await self.server.stopService()
        self.assertEqual(self.server.ports, [])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
            sock.bind(("0.0.0.0", self.server.port))
        await task.deferLater(self.reactor, 0, lambda: None)

    async def test_health_and_reload(self) -> None:
        """health() says not answering until the leases are loaded, then what
        is served; reload() picks up a changed interface address, which the
        next answer carries as server identifier."""
        ok, text = self.server.health()
        self.assertFalse(ok)
        self.assertIn("not loaded", text)
        self.load.callback([])
        ok, text = self.server.health()
        self.assertTrue(ok)
        self.assertIn("lo (127.0.0.1)", text)
        self.server.stats.incr("oversized", 2)
        self.assertIn("0 malformed, 2 too large to send, 0 errors", self.server.health()[1])
        self.assertIn("addresses unchanged", self.server.reload())
        self.server.address_of = lambda name: "127.0.0.2"
        self.assertIn("lo: 127.0.0.1 -> 127.0.0.2", self.server.reload())
        reply = await self.ask(request(codec.DISCOVER, KNOWN_MAC, giaddr="127.0.0.1"))
        assert reply is not None
        self.assertEqual(codec.read_address(reply.option(codec.SERVER_ID)), "127.0.0.2")
