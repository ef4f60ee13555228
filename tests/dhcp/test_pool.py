"""One network's dynamic range between packets (luna2d.protocols.dhcp.pool)
and how the policy keeps it: the token bucket's burst and refill; the range
clipped to the network, reserved addresses never free, half the range as
the bound of held offers; a pool built again when the range changes,
keeping the leases and offers on record; a device address met in the
range set aside, and given back once the device leaves it."""

from __future__ import annotations

import dataclasses

from twisted.trial import unittest

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.policy import Policy, Settings, ip_int
from luna2d.protocols.dhcp.pool import Pool, span_of
from luna2d.protocols.rate import TokenBucket
from tests.dhcp.fakes import (
    SERVER,
    check_pools,
    inbound,
    index,
    network,
    random_mac,
    request,
)

NOW = 1_800_000_000.0


class PoolTests(unittest.TestCase):
    def test_span_reserved_and_bound(self) -> None:
        """A range reaching past its network is cut to it; the network,
        broadcast, gateway and controller addresses are never free; held
        offers are bounded by half of what is left."""
        net = network(
            cidr="10.141.0.0/24", begin="10.141.0.250", end="10.141.1.20", gateway="10.141.0.254"
        )
        span = span_of(net)
        self.assertEqual(span, (ip_int("10.141.0.250"), ip_int("10.141.0.255")))
        assert span is not None
        pool = Pool(net, span, TokenBucket(1, 1))
        free = list(pool.fresh)
        self.assertEqual(free, [ip_int(f"10.141.0.{host}") for host in (250, 251, 252, 253)])
        self.assertEqual((pool.capacity, pool.bound), (4, 2))
        self.assertIsNone(
            span_of(network(cidr="10.141.0.0/24", begin="10.142.0.1", end="10.142.0.9"))
        )
        self.assertIsNone(span_of(network(begin=None, end=None)))


class PolicyPoolTests(unittest.TestCase):
    def setUp(self) -> None:
        self.index = index(networks=[network(begin="10.141.0.200", end="10.141.0.209")])
        self.policy = Policy(lambda: self.index, Settings())

    def discover(self, mac: str) -> str:
        outcome = self.policy.handle(inbound(request(codec.DISCOVER, mac)), NOW)
        assert outcome is not None and outcome.reply is not None, outcome
        return outcome.reply.yiaddr

    def bind(self, mac: str) -> str:
        address = self.discover(mac)
        ack = self.policy.handle(
            inbound(
                request(
                    codec.REQUEST,
                    mac,
                    (
                        (codec.SERVER_ID, codec.addresses(SERVER)),
                        (codec.REQUESTED_ADDRESS, codec.addresses(address)),
                    ),
                )
            ),
            NOW,
        )
        assert ack is not None and ack.event == "ack", ack
        return address

    def test_range_change_rebuilds(self) -> None:
        """Moving the range's start builds the pool again: a lease and an
        offer inside the new range stay taken, the new addresses are free."""
        leased = self.bind(random_mac(1))
        offered = self.discover(random_mac(2))
        self.assertEqual((leased, offered), ("10.141.0.200", "10.141.0.201"))
        old = self.policy.pools["cluster"]
        self.index = index(networks=[network(begin="10.141.0.190", end="10.141.0.209")])
        self.assertEqual(self.discover(random_mac(3)), "10.141.0.190")
        self.assertIsNot(self.policy.pools["cluster"], old)
        for number in range(4, 14):
            self.assertNotIn(self.discover(random_mac(number)), (leased, offered))
        check_pools(self.policy, NOW)

    def test_device_address_set_aside_and_given_back(self) -> None:
        """An address a device holds inside the range (set with force) is
        skipped and set aside; once the device leaves it, it is offered."""
        self.index = index(
            networks=[network(begin="10.141.0.200", end="10.141.0.209")], taken=("10.141.0.200",)
        )
        self.assertEqual(self.discover(random_mac(1)), "10.141.0.201")
        pool = self.policy.pools["cluster"]
        self.assertEqual(pool.devices, {ip_int("10.141.0.200")})
        self.index = dataclasses.replace(self.index, addresses=frozenset())
        self.assertEqual(self.discover(random_mac(2)), "10.141.0.200")
        self.assertEqual(pool.devices, set())
        check_pools(self.policy, NOW)

    def test_ends_applied_on_any_packet(self) -> None:
        """Lease ends are applied on every packet, one the policy ignores
        too (a BOOTREPLY here), so the bitmaps always agree with the
        records at the time of the last packet (the fuzz test's invariant
        once caught a stale bitmap after such a packet)."""
        leased = self.bind(random_mac(1))
        later = NOW + Settings().lease_time + 1
        reply = dataclasses.replace(request(codec.DISCOVER, random_mac(2)), op=codec.BOOTREPLY)
        self.assertIsNone(self.policy.handle(inbound(reply), later))
        check_pools(self.policy, later)
        self.assertIn(ip_int(leased), self.policy.pools["cluster"].reusable)
