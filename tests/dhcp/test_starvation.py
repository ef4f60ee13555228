"""The dynamic range cannot be starved (issue 8, finding 5), through the
policy with a Clock:

- REQUESTs from machines that were offered nothing bind nothing: 51
  INIT-REBOOT REQUESTs from made-up MACs, one per range address, get no
  ACK (silence for free addresses, NAK for wrong ones), SELECTING ones get
  a NAK, RENEWING ones for leases that do not exist get no answer;
- 3,000 DISCOVERs from made-up MACs hold at most half of the range and at
  most ``max_offers`` in all; the offers answered follow the token bucket
  (burst, then rate); a new machine a second later gets an offer and its
  lease; the oldest held offer is the one that makes way;
- known nodes are served throughout, and machines with a lease renew it,
  with the bucket empty."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.policy import Outcome, Policy, Settings, ip_int, ip_str
from tests.dhcp.fakes import (
    KNOWN_MAC,
    SERVER,
    check_pools,
    inbound,
    index,
    network,
    random_mac,
    request,
)

BEGIN, END = "10.141.0.200", "10.141.0.250"  # 51 addresses
NEWCOMER = "02:00:00:00:00:77"


def server_id() -> tuple[int, bytes]:
    return (codec.SERVER_ID, codec.addresses(SERVER))


def asking(address: str) -> tuple[int, bytes]:
    return (codec.REQUESTED_ADDRESS, codec.addresses(address))


class Base(unittest.TestCase):
    settings = Settings(offer_rate=20, offer_burst=100, max_offers=1024)

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.index = index(networks=[network(begin=BEGIN, end=END)])
        self.policy = Policy(lambda: self.index, self.settings)

    def handle(self, kind: int, mac: str, options: tuple = (), **fields: Any) -> Outcome | None:
        message = request(kind, mac, options, **fields)
        return self.policy.handle(inbound(message), self.clock.seconds())

    def event(self, kind: int, mac: str, options: tuple = (), **fields: Any) -> str:
        """What the policy did: the outcome's event, or "silent"."""
        outcome = self.handle(kind, mac, options, **fields)
        return "silent" if outcome is None else outcome.event

    def events(self, outcomes: list[Outcome | None]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            name = "silent" if outcome is None else outcome.event
            counts[name] = counts.get(name, 0) + 1
        return counts

    def dora(self, mac: str) -> str | None:
        offer = self.handle(codec.DISCOVER, mac)
        if offer is None or offer.reply is None:
            return None
        address = offer.reply.yiaddr
        ack = self.handle(codec.REQUEST, mac, (server_id(), asking(address)))
        assert ack is not None and ack.event == "ack", ack
        return address


class RequestWithoutOfferTests(Base):
    def test_init_reboot_flood_binds_nothing(self) -> None:
        """51 INIT-REBOOT REQUESTs, each for a free range address from a new
        MAC (the attack that bound the whole range): no ACK, no lease, no
        reply at all (luna2d has no record of these clients); a real machine
        then gets the first address."""
        values = range(ip_int(BEGIN), ip_int(END) + 1)
        outcomes = [
            self.handle(codec.REQUEST, random_mac(n), (asking(ip_str(v)),))
            for n, v in enumerate(values)
        ]
        self.assertEqual(self.events(outcomes), {"unoffered": 51})
        self.assertTrue(all(o is not None and o.reply is None and not o.changes for o in outcomes))
        self.assertEqual(self.policy.leases, {})
        self.assertEqual(self.dora(NEWCOMER), BEGIN)
        check_pools(self.policy, self.clock.seconds())

    def test_selecting_unoffered_is_naked(self) -> None:
        """A REQUEST naming luna2d as server for an address never offered to
        that MAC is NAKed, and binds nothing."""
        outcomes = [
            self.handle(
                codec.REQUEST, random_mac(n), (server_id(), asking(ip_str(ip_int(BEGIN) + n)))
            )
            for n in range(51)
        ]
        self.assertEqual(self.events(outcomes), {"nak": 51})
        self.assertEqual(self.policy.leases, {})

    def test_offer_is_for_its_mac_only(self) -> None:
        """Another MAC asking for an address offered to someone else is
        NAKed; the MAC it was offered to gets it."""
        offered = self.handle(codec.DISCOVER, NEWCOMER).reply.yiaddr  # type: ignore[union-attr]
        thief = self.handle(codec.REQUEST, random_mac(1), (server_id(), asking(offered)))
        self.assertEqual(thief.event, "nak")  # type: ignore[union-attr]
        reboot = self.handle(codec.REQUEST, random_mac(2), (asking(offered),))
        self.assertEqual(reboot.event, "nak")  # type: ignore[union-attr]
        ack = self.handle(codec.REQUEST, NEWCOMER, (server_id(), asking(offered)))
        self.assertEqual(ack.event, "ack")  # type: ignore[union-attr]

    def test_renewing_unknown_lease_silent(self) -> None:
        """RENEWING/REBINDING (ciaddr, no requested address) for a lease that
        does not exist gets no answer and binds nothing; for an address
        outside the range, a NAK."""
        outcome = self.handle(codec.REQUEST, random_mac(3), ciaddr=BEGIN)
        self.assertEqual((outcome.event, outcome.reply), ("unoffered", None))  # type: ignore[union-attr]
        outcome = self.handle(codec.REQUEST, random_mac(3), ciaddr="10.141.0.20")
        self.assertEqual(outcome.event, "nak")  # type: ignore[union-attr]
        self.assertEqual(self.policy.leases, {})

    def test_expired_offer_is_not_bound(self) -> None:
        """An offer not taken up within offer_hold is gone: its REQUEST is NAKed."""
        offered = self.handle(codec.DISCOVER, NEWCOMER).reply.yiaddr  # type: ignore[union-attr]
        self.clock.advance(self.settings.offer_hold + 1)
        late = self.handle(codec.REQUEST, NEWCOMER, (server_id(), asking(offered)))
        self.assertEqual(late.event, "nak")  # type: ignore[union-attr]


class DiscoverFloodTests(Base):
    def test_flood_leaves_the_range_usable(self) -> None:
        """3,000 DISCOVERs from made-up MACs at once: offers follow the bucket
        (100, the burst), the rest get no answer; at most half the range (25
        of 51) is held, the other half is free; a second later a new machine
        is offered an address and binds it."""
        outcomes = [self.handle(codec.DISCOVER, random_mac(n)) for n in range(3000)]
        self.assertEqual(self.events(outcomes), {"offer": 100, "throttled": 2900})
        pool = self.policy.pools["cluster"]
        self.assertEqual(pool.capacity, 51)
        self.assertEqual(len(self.policy.offers), 25)
        self.assertEqual(pool.free_count(), 26)
        check_pools(self.policy, self.clock.seconds())
        self.clock.advance(1)
        address = self.dora(NEWCOMER)
        self.assertIsNotNone(address)
        self.assertEqual(self.policy.leases[address].mac, NEWCOMER)  # type: ignore[index]

    def test_flood_over_time_follows_the_rate(self) -> None:
        """A flood of 300 DISCOVERs a second for 10 s, with a new machine
        binding an address after each second: the offers made (flood and
        new machines) are the burst plus 20 a second (100 + 20 * 9 before
        the last second ends, plus the last machine's), every new machine
        binds an address, and the offers held never pass half the range."""
        outcomes: list[Outcome | None] = []
        bound = []
        for second in range(10):
            for n in range(300):
                outcomes.append(self.handle(codec.DISCOVER, random_mac(second * 1000 + n)))
                self.assertLessEqual(len(self.policy.offers), 25)
            self.clock.advance(1)
            bound.append(self.dora(f"02:00:00:00:01:{second:02x}"))
        offers = self.events(outcomes)["offer"]
        self.assertEqual(offers + len(bound), 100 + 20 * 9 + 1)
        self.assertNotIn(None, bound)
        self.assertEqual(len(set(bound)), 10)
        check_pools(self.policy, self.clock.seconds())

    def test_oldest_offer_makes_way(self) -> None:
        """With the range's half held, a new offer replaces the oldest one:
        the oldest machine's REQUEST is NAKed, the newer ones are ACKed."""
        macs = [random_mac(n) for n in range(26)]
        offered = {}
        for mac in macs:
            self.clock.advance(0.01)
            offered[mac] = self.handle(codec.DISCOVER, mac).reply.yiaddr  # type: ignore[union-attr]
        self.assertEqual(len(self.policy.offers), 25)
        self.assertNotIn(macs[0], self.policy.offers)
        first = macs[0]
        self.assertEqual(
            self.event(codec.REQUEST, first, (server_id(), asking(offered[first]))), "nak"
        )
        for mac in macs[1:]:
            self.assertEqual(
                self.event(codec.REQUEST, mac, (server_id(), asking(offered[mac]))), "ack"
            )

    def test_total_bound(self) -> None:
        """max_offers bounds the offers held in all networks together."""
        policy = Policy(
            lambda: index(networks=[network(begin="10.141.0.10", end="10.141.3.250")]),
            Settings(max_offers=50, offer_rate=1000, offer_burst=1000),
        )
        now = self.clock.seconds()
        for n in range(3000):
            policy.handle(inbound(request(codec.DISCOVER, random_mac(n))), now)
            self.assertLessEqual(len(policy.offers), 50)
        self.assertEqual(len(policy.offers), 50)
        check_pools(policy, now)

    def test_full_range_oldest_offer_makes_way(self) -> None:
        """When every address is leased or held, a new machine's DISCOVER
        takes the oldest held offer's address rather than getting nothing."""
        bound = [self.dora(random_mac(n)) for n in range(40)]
        self.assertNotIn(None, bound)
        held = [self.handle(codec.DISCOVER, random_mac(100 + n)) for n in range(11)]
        self.assertEqual(self.events(held), {"offer": 11})  # type: ignore[arg-type]
        self.assertEqual(self.policy.pools["cluster"].free_count(), 0)
        newcomer = self.handle(codec.DISCOVER, NEWCOMER)
        self.assertEqual(newcomer.event, "offer")  # type: ignore[union-attr]
        self.assertEqual(newcomer.reply.yiaddr, held[0].reply.yiaddr)  # type: ignore[union-attr]
        check_pools(self.policy, self.clock.seconds())


class ServedDuringFloodTests(Base):
    settings = Settings(offer_rate=1, offer_burst=1, max_offers=1024)

    def test_known_node_and_lease_holder_served(self) -> None:
        """With the bucket emptied by a flood, a known node still gets its
        fixed address and a machine with a lease gets its own again and
        renews it; a new machine waits for the next token."""
        holder = self.dora(random_mac(0))
        flood = [self.handle(codec.DISCOVER, random_mac(n)) for n in range(1, 500)]
        self.assertEqual(self.events(flood), {"throttled": 499})
        offer = self.handle(codec.DISCOVER, KNOWN_MAC)
        self.assertEqual((offer.event, offer.reply.yiaddr), ("offer", "10.141.0.1"))  # type: ignore[union-attr]
        ack = self.handle(codec.REQUEST, KNOWN_MAC, (server_id(), asking("10.141.0.1")))
        self.assertEqual(ack.event, "ack")  # type: ignore[union-attr]
        again = self.handle(codec.DISCOVER, random_mac(0))
        self.assertEqual(again.reply.yiaddr, holder)  # type: ignore[union-attr]
        renew = self.handle(codec.REQUEST, random_mac(0), ciaddr=holder)
        self.assertEqual(renew.event, "ack")  # type: ignore[union-attr]
        self.assertEqual(self.handle(codec.DISCOVER, NEWCOMER).event, "throttled")  # type: ignore[union-attr]
        self.clock.advance(1)
        self.assertEqual(self.handle(codec.DISCOVER, NEWCOMER).event, "offer")  # type: ignore[union-attr]
