"""The UDP client over real loopback sockets against simulated BMCs
(tests.ipmi.fakebmc): many BMCs share the client's few sockets, the fan-out
respects its concurrency cap and returns one outcome per node, two commands
on one BMC at once both complete, bad datagrams are counted and dropped
without harm, addresses that are not IPv4 literals fail alone, and stop()
fails what is in flight and closes the sockets. And on a Clock with fake
transports: retransmissions and the timeout at exact times, and a whole
exchange with no time passing and no timer left behind."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport
from twisted.trial import unittest

from luna2d.ipmi import codec, commands
from luna2d.ipmi.client import IPMIClient, Target
from luna2d.ipmi.session import Credentials, Fault, Success
from tests.ipmi.fakebmc import FakeBMC, FakeBMCProtocol
from tests.ipmi.support import free_loopback, sleep
from tests.support import ReactorCase, the_reactor

CREDS = Credentials(b"admin", b"pw")


class ClientCase(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.reactor = the_reactor()

    def bmc(
        self, power: bool = False, suites: tuple[int, ...] = (3, 17)
    ) -> tuple[FakeBMC, str, int]:
        """A simulated BMC on a loopback address and an ephemeral port."""
        bmc = FakeBMC({b"admin": b"pw"}, power=power, suites=suites)
        host = free_loopback()
        port = self.reactor.listenUDP(0, FakeBMCProtocol(bmc, self.reactor), interface=host)
        self.addCleanup(port.stopListening)
        return bmc, host, port.getHost().port

    def client(self, **kw: Any) -> IPMIClient:
        """An IPMI client with short timeouts, stopped at cleanup."""
        kw.setdefault("timeout", 0.3)
        kw.setdefault("retries", 1)
        client = IPMIClient(self.reactor, **kw)
        self.addCleanup(client.stop)
        return client


class FanOutTests(ClientCase):
    async def test_many_bmcs_few_sockets(self) -> None:
        """Forty BMCs through a client with two sockets: every one answers
        with its own state, and only two local ports are ever used."""
        fleet = [self.bmc(power=i % 3 == 0) for i in range(40)]
        client = self.client(sockets=2)
        targets = [
            Target(f"n{i:02d}", host, CREDS, port) for i, (_, host, port) in enumerate(fleet)
        ]
        results = await client.fan_out(targets, commands.power_status, limit=16)
        self.assertEqual(
            results, {f"n{i:02d}": Success("on" if i % 3 == 0 else "off") for i in range(40)}
        )
        self.assertEqual(len(client.ports), 2)
        self.assertEqual(client.stats["sessions"], 40)
        await sleep(0.05)
        self.assertEqual(client.in_flight, 0, "every session closed")
        self.assertTrue(all(not bmc.sessions for bmc, _, _ in fleet))

    async def test_concurrency_cap(self) -> None:
        """With limit=3, never more than three commands wait for an outcome
        at once, yet all twelve finish."""
        fleet = [self.bmc() for _ in range(12)]
        client = self.client()
        active = peak = 0
        original = client.run

        def counting(
            target: Target, command: commands.Command, suite: int | None = None
        ) -> defer.Deferred:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)

            def done(outcome: Any) -> Any:
                nonlocal active
                active -= 1
                return outcome

            return original(target, command, suite).addCallback(done)

        client.run = counting  # type: ignore[method-assign,assignment]
        targets = [Target(str(i), host, CREDS, port) for i, (_, host, port) in enumerate(fleet)]
        results = await client.fan_out(targets, lambda: commands.power("on"), limit=3)
        self.assertEqual(set(results.values()), {Success("on")})
        self.assertEqual(peak, 3)
        self.assertTrue(all(bmc.power for bmc, _, _ in fleet))

    async def test_failures_stay_alone(self) -> None:
        """A dead address, a wrong password and a BMC without suite 17 fail
        with their own reasons; the good BMC in the same fan-out answers."""
        _, good_host, good_port = self.bmc(power=True)
        _, old_host, old_port = self.bmc(suites=(3,))
        client = self.client(cipher_suite=17)
        targets = [
            Target("good", good_host, CREDS, good_port),
            Target("wrong", good_host, Credentials(b"admin", b"nope"), good_port),
            Target("old", old_host, CREDS, old_port),
            Target("dead", free_loopback(), CREDS, 623),
        ]
        results = await client.fan_out(targets, commands.power_status)
        self.assertEqual(results["good"], Success("on"))
        self.assertEqual(results["wrong"].kind, "unauthorized")  # type: ignore[union-attr]
        self.assertEqual(results["old"].kind, "unsupported")  # type: ignore[union-attr]
        self.assertEqual(
            results["dead"], Fault("timeout", "no answer from the BMC (2 tries, 0.3 s each)")
        )

    async def test_same_bmc_twice(self) -> None:
        """Five commands at once on one BMC through a two-socket client all
        complete (two at a time, the rest wait their turn)."""
        bmc, host, port = self.bmc()
        client = self.client(sockets=2)
        runs = [
            client.run(Target("n", host, CREDS, port), commands.identify(True)) for _ in range(5)
        ]
        self.assertEqual(client.in_flight, 2, "one session per socket on the same BMC; three wait")
        outcomes = await defer.gatherResults(runs)
        self.assertEqual(outcomes, [Success("identify")] * 5)
        self.assertEqual(bmc.calls, ["set identify 0 1"] * 5)

    async def test_bad_addresses(self) -> None:
        """Host names and IPv6 addresses fail alone, without a packet sent."""
        client = self.client()
        results = await client.fan_out(
            [Target("a", "bmc.example", CREDS), Target("b", "::1", CREDS)], commands.power_status
        )
        self.assertEqual(results["a"].kind, "error")  # type: ignore[union-attr]
        self.assertEqual(results["b"].kind, "unsupported")  # type: ignore[union-attr]
        self.assertEqual(client.stats["sent"], 0)


class RobustnessTests(ClientCase):
    async def test_garbage_is_counted_and_dropped(self) -> None:
        """Garbage and stray datagrams sent to the client's sockets while a
        command runs are counted; the command still succeeds."""
        _, host, port = self.bmc(power=True)
        client = self.client(timeout=1.0)
        running = client.run(Target("n", host, CREDS, port), commands.sel_list())
        noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(noise.close)
        for local in client.ports:
            noise.sendto(b"\x06\x00\xff\x07\x06\x00garbage", ("127.0.0.1", local))
            noise.sendto(b"not rmcp at all", ("127.0.0.1", local))
        self.assertEqual(await running, Success([]))
        await sleep(0.05)
        self.assertEqual(client.stats["stray"], 2 * len(client.ports))

        # From the BMC's own address, malformed bytes reach the decoder and are counted there.
        bmc2 = FakeBMC({b"admin": b"pw"})
        host2 = free_loopback()
        proto = FakeBMCProtocol(bmc2, self.reactor)
        listening = self.reactor.listenUDP(0, proto, interface=host2)
        self.addCleanup(listening.stopListening)
        original = proto.datagramReceived

        def noisy(datagram: bytes, addr: Any) -> None:
            proto.transport.write(b"\x06\x00\xff\x07\x99", addr)  # type: ignore[union-attr,call-arg,arg-type,misc]
            original(datagram, addr)

        proto.datagramReceived = noisy  # type: ignore[method-assign]
        outcome = await client.run(
            Target("m", host2, CREDS, listening.getHost().port), commands.power_status()
        )
        self.assertEqual(outcome, Success("off"))
        self.assertGreaterEqual(client.stats["malformed"], 5)

    async def test_stop_fails_in_flight(self) -> None:
        """stop() answers every command still waiting with a failure and
        closes the sockets; later runs fail at once."""
        client = self.client(timeout=5.0)
        waiting = client.run(Target("dead", free_loopback(), CREDS), commands.power_status())
        await sleep(0.05)
        await client.stop()
        outcome = await waiting
        self.assertEqual(outcome, Fault("error", "the IPMI client is stopping"))
        self.assertEqual(client.in_flight, 0)
        self.assertEqual(
            await client.run(Target("x", "127.0.0.1", CREDS), commands.power_status()),
            Fault("error", "the IPMI client is stopped"),
        )


class _ClockReactor(Clock):
    """A Clock that also 'binds' UDP sockets: each gets a FakeDatagramTransport."""

    def __init__(self) -> None:
        super().__init__()
        self.protocols: list[Any] = []

    def listenUDP(
        self, port: int, proto: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> Any:
        """Connect the protocol to a fake transport; return a stand-in port."""
        proto.makeConnection(FakeDatagramTransport())
        self.protocols.append(proto)
        reactor = self

        class Port:
            def getHandle(self) -> None:
                return None

            def getHost(self) -> Any:
                return IPv4Address("UDP", "0.0.0.0", 40000 + reactor.protocols.index(proto))

            def stopListening(self) -> None:
                return None

        return Port()


class ClockTests(unittest.TestCase):
    """The client on a Clock and fake transports: no sockets, no waiting."""

    def test_timers_on_the_injected_clock(self) -> None:
        """A silent BMC is asked again at t=1.5 and t=3.0 and fails with a
        timeout at t=4.5, exactly, by the client's injected clock."""
        reactor = _ClockReactor()
        client = IPMIClient(reactor, sockets=1, timeout=1.5, retries=2)
        outcomes: list[Any] = []
        client.run(Target("n", "127.0.0.9", CREDS), commands.power_status()).addCallback(
            outcomes.append
        )
        transport = reactor.protocols[0].transport
        self.assertEqual(len(transport.written), 1)
        self.assertEqual(transport.written[0][1], ("127.0.0.9", 623))
        reactor.advance(1.49)
        self.assertEqual(len(transport.written), 1)
        reactor.advance(0.01)
        self.assertEqual(len(transport.written), 2)
        reactor.advance(1.5)
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(outcomes, [])
        reactor.advance(1.5)
        self.assertEqual(
            outcomes, [Fault("timeout", "no answer from the BMC (3 tries, 1.5 s each)")]
        )
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual(client.in_flight, 0)

    def test_exchange_through_fake_transport(self) -> None:
        """Datagrams written by the client and fed back from the simulated
        BMC's policy complete a command with no time passing; the session's
        timers are all cancelled at the end."""
        reactor = _ClockReactor()
        client = IPMIClient(reactor, sockets=1)
        bmc = FakeBMC({b"admin": b"pw"}, power=True)
        outcomes: list[Any] = []
        client.run(Target("n", "127.0.0.9", CREDS), commands.power("off")).addCallback(
            outcomes.append
        )
        proto = reactor.protocols[0]
        delivered = 0
        while delivered < len(proto.transport.written):
            datagram, _ = proto.transport.written[delivered]
            delivered += 1
            for answer in bmc.handle(codec.decode(datagram), reactor.seconds()):
                proto.datagramReceived(answer, ("127.0.0.9", 623))
        self.assertEqual(outcomes, [Success("off")])
        self.assertFalse(bmc.power)
        self.assertEqual(reactor.getDelayedCalls(), [])
        self.assertEqual((client.stats["sent"], client.stats["received"]), (7, 7))
