"""The real TFTP server (``TFTPService`` on a free loopback port) under a
flood of requests that are never acknowledged, as a hostile or broken
machine on the provisioning network sends them, and a real client
(curl, tftp-hpa) asking for a file right after.

Pins what luna2d promises (docs/BOOT.md, "Room for every client"): one
burst of 1,000 RRQs asking ``timeout=255``, from 1,000 source ports on 250
addresses, fills the transfer table but does not keep curl and tftp-hpa
out, even for a moment; the ``timeout`` option is declined; every attacking
transfer is gone within ``first_ack_timeout`` (6 s), having sent at most
seven datagrams. And the per-address limit: one address flooding holds at
most its share of places while a client on another address is served,
its own newest request still gets in, and an address whose places are all
acknowledged is refused by name. Every socket is the test's own, on
127.0.0.0/8 addresses picked here; everything is closed at the end."""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import task

from luna2d.protocols.tftp.codec import (
    Ack,
    Error,
    OptionAck,
    Packet,
    ReadRequest,
    decode,
)
from luna2d.protocols.tftp.policy import BUSY, CLIENT_BUSY, Limits
from tests.tftp.test_integration import TFTP, ClientCase

ATTACK_HOSTS = [f"127.0.1.{i}" for i in range(1, 251)]
PORTS_PER_HOST = 4
LONG_TIMEOUT = ReadRequest(
    "boot.kpxe", "octet", (("blksize", "1432"), ("tsize", "0"), ("timeout", "255"))
)


class Silent:
    """UDP sockets bound to the given loopback addresses, non-blocking,
    outside the reactor: they send requests and never answer, but stay open
    (a closed port would draw an ICMP error that ends the transfer)."""

    def __init__(self, hosts: list[str], per_host: int) -> None:
        self.sockets: list[socket.socket] = []
        for host in hosts:
            for _ in range(per_host):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.bind((host, 0))
                self.sockets.append(sock)

    def send(self, packet: Packet, port: int) -> None:
        wire = packet.encode()
        for sock in self.sockets:
            sock.sendto(wire, ("127.0.0.1", port))

    def received(self) -> list[list[Packet]]:
        """What each socket has received so far, decoded, in order."""
        result = []
        for sock in self.sockets:
            got: list[Packet] = []
            while True:
                try:
                    got.append(decode(sock.recv(65536)))
                except BlockingIOError:
                    break
            result.append(got)
        return result

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


class FloodCase(ClientCase):
    timeout = 60

    def silent(self, hosts: list[str], per_host: int) -> Silent:
        attacker = Silent(hosts, per_host)
        self.addCleanup(attacker.close)
        return attacker

    async def until(self, condition: Any, within: float, what: str) -> float:
        """Wait on the reactor until ``condition()`` holds; the seconds it took."""
        start = self.reactor.seconds()
        while not condition():
            if self.reactor.seconds() - start > within:
                self.fail(f"not within {within} s: {what}")
            await task.deferLater(self.reactor, 0.02, lambda: None)
        return float(self.reactor.seconds() - start)

    def held_by(self, hosts: set[str]) -> int:
        return sum(1 for peer in self.service.server.active if peer[0] in hosts)


class SilentFloodTests(FloodCase):
    async def test_flood_does_not_shut_out_a_real_client(self) -> None:
        """1,000 RRQs with timeout=255 that never ACK fill the table (1,000
        places, the default); curl (blksize, tsize) and then tftp-hpa
        (plain RFC 1350) still get the file at once, each taking the place
        of the oldest silent request. The OACKs leave ``timeout`` out;
        every attacking transfer ends within 6 s of the flood, none sent
        more than 7 datagrams, and the counters add up."""
        data = self.put("boot.kpxe", os.urandom(80_000))
        attacker = self.silent(ATTACK_HOSTS, PORTS_PER_HOST)
        flood = len(attacker.sockets)
        self.assertEqual(flood, 1000)
        started = self.reactor.seconds()
        attacker.send(LONG_TIMEOUT, self.port)
        sent_in = self.reactor.seconds() - started
        await self.until(lambda: self.stats["started"] >= flood, 10, "the flood is served")
        full_at = self.reactor.seconds()  # every attacking transfer has sent its first packet
        self.assertEqual(len(self.service.server.active), flood, "the table is full")

        before = self.reactor.seconds()
        got = await self.curl_fetch("boot.kpxe", "curl.bin", "--tftp-blksize", "1432")
        self.assertEqual(got, data)
        text, code = await self.client(
            TFTP, "-m", "binary", "127.0.0.1", str(self.port), "-c", "get", "boot.kpxe", "hpa.bin"
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("hpa.bin"), data)
        both_in = self.reactor.seconds() - before
        self.assertLess(both_in, 3.0, "both clients served at once")
        # curl took the oldest silent place; tftp-hpa then had curl's, freed.
        self.assertEqual(self.stats["evicted"], 1)

        attackers = set(ATTACK_HOSTS)
        gone = await self.until(
            lambda: self.held_by(attackers) == 0, 10, "every attacking transfer ends"
        )
        # Each ends 6 s after its first packet (the last of which went out
        # by full_at); without the bound, 25 minutes.
        self.assertLessEqual(
            self.reactor.seconds() - full_at,
            6.0 + 1.0,
            f"bounded by first_ack_timeout (flood sent in {sent_in:.3f} s, "
            f"served in {full_at - started:.2f} s, gone {gone:.1f} s after "
            "the clients)",
        )
        self.assertEqual(self.stats["completed"], 2)
        self.assertEqual(self.stats["unanswered"] + self.stats["evicted"], flood)
        self.assertEqual(self.stats["failed"], flood)
        seen = attacker.received()
        oack = OptionAck((("blksize", "1432"), ("tsize", str(len(data)))))
        # Timed out: the OACK, again every second (the server's own 1 s), then
        # the ERROR at 6 s. Evicted: told 'server busy', or nothing when it
        # was evicted before its first packet.
        timed_out = [got for got in seen if got == [oack] * 6 + [Error(0, "timed out")]]
        evicted = [got for got in seen if got[-1:] in ([], [Error(0, BUSY)])]
        self.assertEqual(len(timed_out), self.stats["unanswered"])
        self.assertEqual(len(evicted), self.stats["evicted"])
        self.assertEqual(len(timed_out) + len(evicted), flood)


class RequestRateTests(FloodCase):
    async def test_one_address_over_its_rate_is_dropped(self) -> None:
        """2,000 RRQs from 2,000 ports of one address in one burst: the
        default rate (200 a second, bursts of 400) lets 400 through (a few
        more as the bucket refills while the burst is read), which the
        address's share (32) turns over; the other 1,600 are dropped before
        the table: no answer, no socket. curl from another address is served
        at once; two seconds later the address may ask again."""
        data = self.put("boot.kpxe", os.urandom(20_000))
        attacker = self.silent(["127.0.2.9"], 2000)
        attacker.send(LONG_TIMEOUT, self.port)
        await self.until(lambda: self.stats["requests"] >= 2000, 10, "the flood is read")
        # 400 at once, and 200 a second more while the burst is being read.
        admitted = 2000 - self.stats["rate_limited"]
        self.assertTrue(400 <= admitted <= 600, admitted)
        self.assertEqual(self.stats["evicted"], admitted - 32)
        self.assertEqual(self.held_by({"127.0.2.9"}), 32)
        got = await self.curl_fetch("boot.kpxe", "got.bin")
        self.assertEqual(got, data)
        seen = attacker.received()
        self.assertGreaterEqual(
            sum(1 for got in seen if not got), 2000 - admitted, "dropped: no answer"
        )
        self.assertGreaterEqual(
            sum(1 for got in seen if got[:1] and isinstance(got[0], OptionAck)), 32
        )
        await task.deferLater(self.reactor, 2.0, lambda: None)
        later = self.silent(["127.0.2.9"], 1).sockets[0]
        later.sendto(LONG_TIMEOUT.encode(), ("127.0.0.1", self.port))
        await self.until(lambda: PerAddressTests._peek(later), 5, "the address is heard again")
        self.assertIsInstance(decode(later.recv(65536)), OptionAck)


class PerAddressTests(FloodCase):
    # A high rate, so that the share alone is seen acting.
    limits = Limits(max_per_client=4, request_rate=1000)

    async def test_one_address_holds_its_share(self) -> None:
        """max_per_client 4: 100 silent RRQs from one address leave it 4
        places (its newest), the other 96 are evicted in turn; curl from
        another address is served meanwhile; when they time out, nothing
        of that address is left."""
        data = self.put("boot.kpxe", os.urandom(20_000))
        attacker = self.silent(["127.0.2.1"], 100)
        attacker.send(LONG_TIMEOUT, self.port)
        await self.until(lambda: self.stats["requests"] >= 100, 10, "the flood is read")
        await self.until(lambda: self.stats["evicted"] >= 96, 10, "the flood is turned over")
        self.assertEqual(self.held_by({"127.0.2.1"}), 4)
        self.assertEqual(self.service.server.admission.held_by("127.0.2.1"), 4)
        got = await self.curl_fetch("boot.kpxe", "got.bin")
        self.assertEqual(got, data)
        await self.until(lambda: not self.held_by({"127.0.2.1"}), 10, "the last four time out")
        self.assertEqual(self.stats["unanswered"], 4)
        self.assertEqual(self.stats["evicted"], 96)
        seen = attacker.received()
        # The four last requests held their places to the end; the others
        # were told 'server busy', or nothing if evicted before any packet.
        self.assertEqual([got[-1:] for got in seen[-4:]], [[Error(0, "timed out")]] * 4)
        self.assertTrue(all(got[-1:] in ([], [Error(0, BUSY)]) for got in seen[:-4]))

    async def test_address_with_acknowledged_transfers_is_refused(self) -> None:
        """From one address: 4 transfers that acknowledge their OACK (ACK 0)
        and then hold on: a 5th request is refused with ERROR 0 naming the
        per-address limit, and nobody is evicted; a request from another
        address is served; once one of the four ends, the address gets a
        place again."""
        self.put("boot.kpxe", os.urandom(20_000))
        holders = self.silent(["127.0.2.2"], 5)
        request = ReadRequest("boot.kpxe", "octet", (("blksize", "1024"),))
        for sock in holders.sockets[:4]:
            sock.sendto(request.encode(), ("127.0.0.1", self.port))
        await self.until(lambda: self.stats["started"] >= 4, 10, "four transfers start")
        transfer_ports: list[tuple[str, int]] = []
        for sock in holders.sockets[:4]:
            await self.until(lambda s=sock: self._peek(s), 5, "the OACK arrives")
            wire, where = sock.recvfrom(65536)
            self.assertEqual(decode(wire), OptionAck((("blksize", "1024"),)))
            sock.sendto(Ack(0).encode(), where)
            transfer_ports.append(where)
        await self.until(lambda: self.service.server.admission.silent == 0, 5, "all four answered")
        fifth = holders.sockets[4]
        fifth.sendto(request.encode(), ("127.0.0.1", self.port))
        await self.until(lambda: self._peek(fifth), 5, "the fifth is answered")
        self.assertEqual(decode(fifth.recv(65536)), Error(0, CLIENT_BUSY))
        self.assertEqual(self.stats["evicted"], 0)
        self.assertEqual(self.held_by({"127.0.2.2"}), 4)
        other = self.silent(["127.0.2.3"], 1).sockets[0]
        other.sendto(request.encode(), ("127.0.0.1", self.port))
        await self.until(lambda: self._peek(other), 5, "another address is served")
        self.assertEqual(decode(other.recv(65536)), OptionAck((("blksize", "1024"),)))
        # One of the four gives up (an ERROR to its transfer port): a place frees.
        holders.sockets[0].sendto(Error(0, "bye").encode(), transfer_ports[0])
        await self.until(lambda: self.held_by({"127.0.2.2"}) == 3, 5, "a place frees")
        fifth.sendto(request.encode(), ("127.0.0.1", self.port))
        await self.until(lambda: self._peek(fifth), 5, "the fifth is served now")
        self.assertEqual(decode(fifth.recv(65536)), OptionAck((("blksize", "1024"),)))

    @staticmethod
    def _peek(sock: socket.socket) -> bool:
        try:
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        return True
