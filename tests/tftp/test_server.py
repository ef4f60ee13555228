"""The TFTP transport without sockets: ``TFTPServer`` and its transfer
protocols on a ``Clock``, with a fake port factory standing in for the
per-transfer sockets, over real files in a temporary root. Pins that each
RRQ gets a port of its own bound to the address the request came to,
retransmission and giving up on the clock's time with no timer left behind,
refusals (WRQ, bad mode, escapes, missing files, too many transfers), a
repeated RRQ not starting a second transfer, bad datagrams dropped and
counted, and (hypothesis) that no sequence of datagrams breaks the server.
Real sockets and real clients are in test_integration."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from luna2d.protocols.tftp import codec
from luna2d.protocols.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    WriteRequest,
)
from luna2d.protocols.tftp.files import TFTPFiles
from luna2d.protocols.tftp.policy import Limits, to_netascii
from luna2d.protocols.tftp.server import TFTPServer, _gso_groups

CLIENT = ("10.1.0.5", 2070)
LOCAL = "10.1.0.1"


def inline(f: Any, *args: Any) -> defer.Deferred:
    return defer.maybeDeferred(f, *args)


class FakePort:
    """What a transfer's socket would do, recorded."""

    def __init__(self, protocol: Any, local: str, peer: tuple[str, int]) -> None:
        self.protocol = protocol
        self.local = local
        self.peer = peer
        self.sent: list[codec.Packet] = []
        self.closed = False
        self.fail_writes: type[OSError] | None = None

    def write(self, datagram: bytes, addr: Any = None) -> None:
        if self.fail_writes is not None:
            raise self.fail_writes()
        self.sent.append(codec.decode(datagram))

    def stopListening(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol.numPorts:
                self.protocol.doStop()

    def deliver(self, packet: codec.Packet | bytes) -> None:
        self.protocol.datagramReceived(
            packet if isinstance(packet, bytes) else packet.encode(), self.peer
        )


class ServerCase(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="luna2d-tftp-server-"))
        self.addCleanup(shutil.rmtree, self.root, True)
        self.data = bytes(i % 253 for i in range(1300))
        (self.root / "file.bin").write_bytes(self.data)
        self.clock = Clock()
        self.ports: list[FakePort] = []
        self.refuse_ports = False
        self.files = TFTPFiles(self.root, self.clock, inline)
        self.server = self.make_server()

    def make_server(self, **limits: Any) -> TFTPServer:
        return TFTPServer(
            self.files, self.clock, Limits(**{"retries": 2, **limits}), open_port=self.open_port
        )

    def open_port(self, reactor: Any, protocol: Any, local: str, peer: tuple[str, int]) -> FakePort:
        if self.refuse_ports:
            raise OSError("no ports left")
        port = FakePort(protocol, local, peer)
        self.ports.append(port)
        protocol.makeConnection(port)
        return port

    def request(self, packet: codec.Packet | bytes, peer: tuple[str, int] = CLIENT) -> None:
        wire = packet if isinstance(packet, bytes) else packet.encode()
        self.server.datagramReceivedOn(wire, peer, LOCAL)


class TransferTests(ServerCase):
    def test_rrq_served_from_own_port_to_completion(self) -> None:
        """An RRQ opens a port of its own, bound to the address the request
        was sent to and aimed at the client; the file goes out in lock-step;
        the final ACK closes the port and counts the transfer complete."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        self.assertEqual((port.local, port.peer), (LOCAL, CLIENT))
        self.assertEqual(port.sent, [Data(1, self.data[:512])])
        port.deliver(Ack(1))
        port.deliver(Ack(2))
        self.assertEqual([p.block for p in port.sent], [1, 2, 3])
        self.assertEqual(b"".join(p.data for p in port.sent), self.data)
        port.deliver(Ack(3))
        self.assertTrue(port.closed)
        self.assertEqual(self.server.stats["completed"], 1)
        self.assertEqual(self.server.active, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_options_negotiated(self) -> None:
        """blksize, tsize and windowsize: the OACK first, then after ACK 0 a
        window of DATA of the negotiated size."""
        self.request(
            ReadRequest(
                "file.bin", "octet", (("blksize", "600"), ("tsize", "0"), ("windowsize", "2"))
            )
        )
        [port] = self.ports
        self.assertEqual(
            port.sent, [OptionAck((("blksize", "600"), ("tsize", "1300"), ("windowsize", "2")))]
        )
        port.deliver(Ack(0))
        self.assertEqual(port.sent[1:], [Data(1, self.data[:600]), Data(2, self.data[600:1200])])

    def test_retransmit_then_give_up_on_clock(self) -> None:
        """No ACK: DATA 1 again one second later by the clock, twice (the
        retries), then an ERROR, the port closed, the transfer counted failed,
        and no timer left."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        self.clock.advance(0.9)
        self.assertEqual(len(port.sent), 1)
        self.clock.advance(0.1)
        self.assertEqual(port.sent[-1], Data(1, self.data[:512]))
        self.clock.advance(1.0)
        self.assertEqual(len(port.sent), 3)
        self.clock.advance(1.0)
        self.assertEqual(port.sent[-1], Error(ErrorCode.NOT_DEFINED, "timed out"))
        self.assertTrue(port.closed)
        self.assertEqual(self.server.stats["failed"], 1)
        self.assertEqual(self.server.stats["retransmissions"], 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timer_follows_progress(self) -> None:
        """Progress moves the deadline: ACKs every 0.6 s never cause a retransmission."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        for block in (1, 2):
            self.clock.advance(0.6)
            port.deliver(Ack(block))
        self.clock.advance(0.6)
        self.assertEqual([p.block for p in port.sent], [1, 2, 3])

    def test_repeated_rrq_does_not_start_second_transfer(self) -> None:
        """The same client (address and port) sending its RRQ again while
        served: no second port; another client port is another transfer."""
        self.request(ReadRequest("file.bin", "octet"))
        self.request(ReadRequest("file.bin", "octet"))
        self.assertEqual(len(self.ports), 1)
        self.assertEqual(self.server.stats["duplicates"], 1)
        self.request(ReadRequest("file.bin", "octet"), ("10.1.0.5", 2071))
        self.assertEqual(len(self.ports), 2)

    def test_different_rrq_from_same_port_supersedes(self) -> None:
        """Firmware that asks tsize, then requests again from the same port
        with other options: the first transfer ends silently, the second
        starts on a new port."""
        self.request(ReadRequest("file.bin", "octet", (("tsize", "0"),)))
        self.request(ReadRequest("file.bin", "octet", (("blksize", "1300"),)))
        first, second = self.ports
        self.assertTrue(first.closed)
        self.assertEqual(first.sent, [OptionAck((("tsize", "1300"),))])
        self.assertEqual(second.sent, [OptionAck((("blksize", "1300"),))])
        self.assertEqual(self.server.stats["superseded"], 1)
        second.deliver(Ack(0))
        second.deliver(Ack(1))
        # 1300 bytes in blocks of 1300: an empty one ends it.
        self.assertEqual(second.sent[-1], Data(2, b""))
        second.deliver(Ack(2))
        self.assertEqual(self.server.stats["completed"], 1)
        self.assertEqual(self.server.active, {})

    def test_repeat_while_file_is_looked_up(self) -> None:
        """An RRQ repeated while its file is still being looked up is a
        duplicate; a different one supersedes it and only the latter is served."""
        queued: list[tuple[Any, tuple, defer.Deferred]] = []

        def later(f: Any, *args: Any) -> defer.Deferred:
            d: defer.Deferred = defer.Deferred()
            queued.append((f, args, d))
            return d

        self.files = TFTPFiles(self.root, self.clock, later)
        self.server = self.make_server()
        self.request(ReadRequest("file.bin", "octet"))
        self.request(ReadRequest("file.bin", "octet"))
        self.assertEqual(self.server.stats["duplicates"], 1)
        self.request(ReadRequest("file.bin", "netascii"))
        for f, args, d in queued:
            d.callback(f(*args))
        [port] = self.ports
        # The netascii request's:
        self.assertEqual(port.sent, [Data(1, to_netascii(self.data)[:512])])
        self.assertEqual(self.server.stats["superseded"], 1)

    def test_client_error_ends_transfer(self) -> None:
        """An ERROR from the client ends the transfer at once, with nothing sent."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        port.deliver(Error(0, "cancelled"))
        self.assertEqual(len(port.sent), 1)
        self.assertTrue(port.closed)
        self.assertEqual(self.server.active, {})

    def test_garbage_on_transfer_port_dropped(self) -> None:
        """A datagram that does not decode, on a transfer's port, is dropped
        and counted; the transfer goes on."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        port.deliver(b"\x00\x04\x00")
        self.assertEqual(self.server.stats["dropped"], 1)
        port.deliver(Ack(1))
        self.assertEqual(port.sent[-1].block, 2)

    def test_unreachable_client_ends_transfer(self) -> None:
        """A send refused (ICMP port unreachable) ends the transfer and frees its port."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        port.fail_writes = ConnectionRefusedError
        self.clock.advance(1.0)
        self.assertTrue(port.closed)
        self.assertEqual(self.server.active, {})

    def test_full_send_buffer_is_loss(self) -> None:
        """A send that fails (full buffer) counts as a lost packet: counted,
        and the retransmission timer sends it again."""
        self.request(ReadRequest("file.bin", "octet"))
        [port] = self.ports
        port.fail_writes = BlockingIOError
        port.deliver(Ack(1))
        self.assertEqual(self.server.stats["send_errors"], 1)
        port.fail_writes = None
        self.clock.advance(1.0)
        self.assertEqual(port.sent[-1], Data(2, self.data[512:1024]))

    def test_stop_closes_transfers(self) -> None:
        """Stopping the listening protocol closes every transfer and its timer."""
        self.request(ReadRequest("file.bin", "octet"))
        self.request(ReadRequest("file.bin", "octet"), ("10.1.0.6", 1000))
        self.server.stopProtocol()
        self.assertTrue(all(port.closed for port in self.ports))
        self.assertEqual(self.server.active, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_port_closed_under_a_transfer(self) -> None:
        """A transfer's port closed from outside (the reactor shutting down
        closes every reader): the transfer ends and leaves the table, its
        timer is cancelled, and stopping the server afterwards is clean."""
        self.request(ReadRequest("file.bin", "octet"))
        self.request(ReadRequest("file.bin", "octet"), ("10.1.0.6", 1000))
        first, second = self.ports
        first.stopListening()
        self.assertEqual(list(self.server.active), [("10.1.0.6", 1000)])
        self.assertEqual(len(self.server.admission), 1)
        self.assertEqual(self.server.stats["failed"], 1)
        self.server.stopProtocol()
        self.assertTrue(second.closed)
        self.assertEqual(self.server.active, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])


class RefusalTests(ServerCase):
    def refusal(self) -> codec.Packet:
        port = self.ports[-1]
        self.assertTrue(port.closed, "a refusal's port is closed at once")
        self.assertEqual(len(port.sent), 1)
        return port.sent[0]

    def test_write_request_refused(self) -> None:
        """WRQ: ERROR 2 (access violation): the server is read-only."""
        self.request(WriteRequest("file.bin", "octet"))
        self.assertEqual(self.refusal(), Error(ErrorCode.ACCESS_VIOLATION, "read-only server"))

    def test_escape_and_missing_refused_as_not_found(self) -> None:
        """'..', absolute names and missing files: ERROR 1, the same answer
        (nothing tells whether something exists outside the root)."""
        for name in ("../etc/passwd", "/etc/passwd", "sub/../../x", "missing.bin"):
            self.request(ReadRequest(name, "octet"))
            self.assertEqual(
                self.refusal(), Error(ErrorCode.FILE_NOT_FOUND, "file not found"), name
            )
        self.assertEqual(self.server.active, {})

    def test_mail_mode_refused(self) -> None:
        """Modes other than octet and netascii: ERROR 4; the mode is case-insensitive."""
        self.request(ReadRequest("file.bin", "mail"))
        self.assertEqual(self.refusal().code, ErrorCode.ILLEGAL_OPERATION)
        self.request(ReadRequest("file.bin", "OCTET"), ("10.1.0.9", 9))
        self.assertEqual(self.ports[-1].sent, [Data(1, self.data[:512])])

    def test_too_many_transfers(self) -> None:
        """Beyond max_transfers, when every transfer has been acknowledged,
        an RRQ is answered 'server busy'."""
        self.server = self.make_server(max_transfers=1, max_per_client=1)
        self.request(ReadRequest("file.bin", "octet"))
        self.ports[-1].deliver(Ack(1))
        self.request(ReadRequest("file.bin", "octet"), ("10.1.0.7", 7))
        self.assertEqual(self.refusal(), Error(ErrorCode.NOT_DEFINED, "server busy, try again"))

    def test_no_port_for_transfer(self) -> None:
        """When no port can be opened the client gets an ERROR from the
        listening socket and nothing stays active."""
        sent: list[tuple[bytes, Any]] = []

        class Listening:
            def write(self, data: bytes, addr: Any) -> None:
                sent.append((data, addr))

        self.server.transport = Listening()
        self.refuse_ports = True
        self.request(ReadRequest("file.bin", "octet"))
        self.assertEqual([codec.decode(d) for d, _ in sent], [Error(0, "server busy, try again")])
        self.assertEqual(sent[0][1], CLIENT)
        self.assertEqual(self.server.active, {})

    def test_requests_over_the_rate_dropped(self) -> None:
        """request_rate 2 (bursts of 4): of six WRQs and RRQs at once from
        one address (other ports), four are answered and two dropped with no
        port opened; another address is served; a second later the first
        may ask again (two more)."""
        self.server = self.make_server(request_rate=2)
        for port in range(6):
            packet = WriteRequest("x", "octet") if port % 2 else ReadRequest("file.bin", "octet")
            self.request(packet, (CLIENT[0], 3000 + port))
        self.assertEqual(len(self.ports), 4)
        self.assertEqual(self.server.stats["rate_limited"], 2)
        self.assertEqual(self.server.stats["requests"], 6)
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.77", 1))
        self.assertEqual(len(self.ports), 5)
        self.clock.advance(1.0)
        for port in range(3):
            self.request(ReadRequest("file.bin", "octet"), (CLIENT[0], 4000 + port))
        self.assertEqual(len(self.ports), 7)
        self.assertEqual(self.server.stats["rate_limited"], 3)

    def test_bad_and_stray_datagrams_counted(self) -> None:
        """On the listening port: undecodable datagrams count as dropped,
        valid non-requests (ACK, DATA) as stray; nothing is answered."""
        self.request(b"\x00")
        self.request(b"\x00\x09abc")
        self.request(Ack(1))
        self.request(Data(1, b"x"))
        self.assertEqual((self.server.stats["dropped"], self.server.stats["stray"]), (2, 2))
        self.assertEqual(self.ports, [])


class RoomTests(ServerCase):
    """Who gets a place when the table is full (Admission, through the server)."""

    def test_full_table_evicts_oldest_unanswered(self) -> None:
        """Three places, three silent clients: a fourth client is served,
        and the oldest silent one gets ERROR 0 'server busy, try again' on
        its own port, which closes; the others go on; counted as evicted
        (and failed), not refused."""
        self.server = self.make_server(max_transfers=3, max_per_client=3)
        for i in range(3):
            self.request(ReadRequest("file.bin", "octet"), (f"10.3.0.{i}", 1000))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.9", 1000))
        first, second, third, newcomer = self.ports
        self.assertEqual(first.sent[-1], Error(ErrorCode.NOT_DEFINED, "server busy, try again"))
        self.assertTrue(first.closed)
        self.assertFalse(any(port.closed for port in (second, third, newcomer)))
        self.assertEqual(newcomer.sent, [Data(1, self.data[:512])])
        self.assertEqual(self.server.stats["evicted"], 1)
        self.assertEqual(self.server.stats["failed"], 1)
        self.assertEqual(self.server.stats["refused"], 0)
        self.assertEqual(len(self.server.active), 3)
        newcomer.deliver(Ack(1))
        newcomer.deliver(Ack(2))
        newcomer.deliver(Ack(3))
        self.assertEqual(self.server.stats["completed"], 1)

    def test_answered_transfers_keep_their_places(self) -> None:
        """A transfer whose client acknowledged a block is never evicted:
        with two places, one answered and one silent, two newcomers in turn
        each push out the silent place, never the answered one."""
        self.server = self.make_server(max_transfers=2, max_per_client=2)
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.1", 1000))
        self.ports[0].deliver(Ack(1))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.2", 1000))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.3", 1000))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.4", 1000))
        answered, silent, pushed, last = self.ports
        self.assertFalse(answered.closed)
        self.assertTrue(silent.closed and pushed.closed)
        self.assertFalse(last.closed)
        self.assertEqual(self.server.stats["evicted"], 2)

    def test_oack_answered_by_ack_0(self) -> None:
        """ACK 0 of an OACK is an answer: that transfer keeps its place and a
        newcomer is refused 'server busy' when no place is silent."""
        self.server = self.make_server(max_transfers=1, max_per_client=1)
        self.request(ReadRequest("file.bin", "octet", (("blksize", "600"),)))
        self.ports[0].deliver(Ack(0))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.5", 1))
        self.assertEqual(
            self.ports[-1].sent, [Error(ErrorCode.NOT_DEFINED, "server busy, try again")]
        )
        self.assertFalse(self.ports[0].closed)
        self.assertEqual(self.server.stats["refused"], 1)

    def test_per_client_share(self) -> None:
        """max_per_client 2: a third request from the same address (another
        port) takes the place of that address's oldest silent transfer, even
        though another address's silent transfer is older; once both of its
        places are answered, a further request is refused by name."""
        self.server = self.make_server(max_per_client=2)
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.8", 1))  # another address, older
        for port in (1, 2, 3):
            self.request(ReadRequest("file.bin", "octet"), (CLIENT[0], port))
        other, mine1, mine2, mine3 = self.ports
        self.assertTrue(mine1.closed)
        self.assertFalse(other.closed or mine2.closed or mine3.closed)
        mine2.deliver(Ack(1))
        mine3.deliver(Ack(1))
        self.request(ReadRequest("file.bin", "octet"), (CLIENT[0], 4))
        self.assertEqual(
            self.ports[-1].sent,
            [Error(ErrorCode.NOT_DEFINED, "too many transfers from this address, try again")],
        )
        self.assertEqual(self.server.admission.held_by(CLIENT[0]), 2)

    def test_request_being_looked_up_can_be_evicted(self) -> None:
        """A request whose file is still being looked up holds a silent
        place: a newcomer evicts it; it is sent nothing (it has had no
        answer yet, so a real client asks again), and when its lookup ends
        nothing starts for it."""
        queued: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []

        def later(f: Any, *args: Any) -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = defer.Deferred()
            queued.append((f, args, d))
            return d

        self.files = TFTPFiles(self.root, self.clock, later)
        self.server = self.make_server(max_transfers=1, max_per_client=1)
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.1", 1))
        self.request(ReadRequest("file.bin", "octet"), ("10.3.0.2", 2))
        self.assertEqual(self.ports, [])
        self.assertEqual(self.server.stats["evicted"], 1)
        while queued:
            f, args, d = queued.pop(0)
            d.callback(f(*args))
        [served] = self.ports
        self.assertEqual(served.peer, ("10.3.0.2", 2))
        self.assertEqual(list(self.server.active), [("10.3.0.2", 2)])

    def test_flood_with_long_timeout_on_the_clock(self) -> None:
        """1,000 RRQs asking timeout=255 from 1,000 ports that never answer,
        then a client: it is served at once (not 'server busy'); no OACK
        carries the timeout; on the clock, every silent transfer is over at
        6 s (first_ack_timeout), having sent the OACK 6 times and an ERROR;
        nothing is left: no place, no port, no timer. The log holds 100 of
        the 1,000 unfinished transfers' lines and one summary of the other 900."""
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.server = TFTPServer(self.files, self.clock, Limits(), open_port=self.open_port)
        flood = ReadRequest("file.bin", "octet", (("tsize", "0"), ("timeout", "255")))
        for i in range(1000):
            self.request(flood, (f"10.4.{i // 250}.{i % 250}", 2000 + i))
        self.assertEqual(len(self.server.active), 1000)
        self.request(ReadRequest("file.bin", "octet"))
        client = self.ports[-1]
        self.assertEqual(client.sent, [Data(1, self.data[:512])])
        for block in (1, 2, 3):
            client.deliver(Ack(block))
        self.assertEqual(self.server.stats["completed"], 1)
        oack = OptionAck((("tsize", "1300"),))
        self.assertTrue(all(port.sent == [oack] for port in self.ports[1:-1]))
        self.clock.pump([0.5] * 11)
        self.assertEqual(len(self.server.active), 999)
        self.clock.advance(0.5)
        self.assertEqual(self.server.active, {})
        self.assertEqual(len(self.server.admission), 0)
        self.assertEqual(self.server.stats["unanswered"], 999)
        self.assertEqual(self.server.stats["evicted"], 1)
        for port in self.ports[1:-1]:
            self.assertEqual(port.sent, [oack] * 6 + [Error(ErrorCode.NOT_DEFINED, "timed out")])
        self.assertTrue(all(port.closed for port in self.ports))
        self.clock.advance(10)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        lines = [
            formatEvent(event)
            for event in events
            if event.get("log_namespace", "").endswith("tftp.server")
        ]
        self.assertEqual(sum(" never acknowledged: " in line for line in lines), 100 - 1)
        self.assertEqual(sum(" evicted to make room" in line for line in lines), 1)
        self.assertEqual(sum(" complete: " in line for line in lines), 1)
        [summary] = [line for line in lines if "not logged" in line]
        self.assertIn("900 more refusals and unfinished transfers were not logged", summary)


class SegmentationGroupTests(unittest.TestCase):
    def test_groups(self) -> None:
        """Windows are cut into groups one segmented send carries: equal
        sizes with a shorter last one closing its group, at most 64
        datagrams and 65,000 bytes each, order kept."""
        a, b, short = b"a" * 100, b"b" * 100, b"c" * 10
        self.assertEqual(_gso_groups([a, b, short, a]), [[a, b, short], [a]])
        self.assertEqual(_gso_groups([short, a]), [[short], [a]])
        self.assertEqual(_gso_groups([]), [])
        many = [bytes([i]) * 100 for i in range(130)]
        self.assertEqual([len(g) for g in _gso_groups(many)], [64, 64, 2])
        big = [b"x" * 1472] * 64
        groups = _gso_groups(big)
        self.assertEqual([len(g) for g in groups], [44, 20])
        self.assertTrue(all(sum(map(len, g)) <= 65000 for g in groups))
        self.assertEqual(b"".join(b"".join(g) for g in groups), b"".join(big))


valid_rrq = st.sampled_from(
    [
        ReadRequest("file.bin", "octet").encode(),
        ReadRequest("file.bin", "octet", (("blksize", "600"),)).encode(),
    ]
)
datagram = st.one_of(
    valid_rrq,
    valid_rrq,
    st.binary(max_size=64),
    st.builds(lambda b: Ack(b).encode(), st.integers(0, 6)),
    st.builds(
        lambda name, opts: ReadRequest(name, "octet", opts).encode(),
        st.sampled_from(["file.bin", "../x", "nope", "/file.bin", "file.bin\\..\\.."]),
        st.lists(
            st.tuples(
                st.sampled_from(["blksize", "tsize", "windowsize", "timeout", "x"]),
                st.sampled_from(["0", "8", "512", "99999", "-1", "a", ""]),
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.just(WriteRequest("file.bin", "octet").encode()),
    st.just(Error(0, "bye").encode()),
)
step = st.tuples(
    st.sampled_from(["listen", "listen", "transfer", "tick"]), st.integers(0, 5), datagram
)


class FuzzTests(ServerCase):
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(step, max_size=30))
    def test_server_survives_any_datagrams(self, steps: list) -> None:
        """Any sequence of datagrams to the listening port and to transfer
        ports, from six clients on three addresses, with a table of three
        places (two per address) and time passing: no exception escapes;
        the table and the admission bookkeeping always agree and stay
        within bounds; once the clock has run past every timeout no
        transfer, place, port or timer is left."""
        self.ports.clear()
        server = self.make_server(max_transfers=3, max_per_client=2)
        for where, who, wire in steps:
            peer = (f"10.2.0.{who % 3}", 1000 + who)
            if where == "listen":
                server.datagramReceivedOn(wire, peer, LOCAL)
            elif where == "transfer":
                for port in [p for p in self.ports if p.peer == peer and not p.closed]:
                    port.protocol.datagramReceived(wire, peer)
            else:
                self.clock.advance(0.7)
            self.assertEqual(len(server.active), len(server.admission))
            self.assertTrue(all(peer in server.admission for peer in server.active))
            self.assertLessEqual(len(server.active), 3)
        for _ in range(60):
            self.clock.advance(5)
        self.assertEqual(server.active, {})
        self.assertEqual(len(server.admission), 0)
        self.assertTrue(all(port.closed for port in self.ports))
        self.assertEqual(self.clock.getDelayedCalls(), [])
