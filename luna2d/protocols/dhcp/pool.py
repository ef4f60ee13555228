# -*- test-case-name: tests.dhcp.test_pool,tests.dhcp.test_policy -*-
"""One network's dynamic range as the DHCP policy keeps it between packets:
which addresses are free, the offers it holds, and how fast it may make
new ones.

``Pool`` keeps two ``FreeSet`` bitmaps over the range: ``fresh`` (free and
never leased) and ``reusable`` (free, with an expired or released lease of
some machine on record). An address in neither is in use: reserved, held by
a device, leased, declined or held by an offer. The policy decides which
(it owns the leases and offers) and tells the pool; the pool answers the
lowest free address in O(log n), so a packet never walks the range.

Each pool carries a ``TokenBucket`` (``luna2d.protocols.rate``) that bounds
the new offers its network makes to unknown machines per second and in one
burst. Pure: the time is handed in."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from luna2d.ipalloc import FreeSet
from luna2d.model.boot import BootNetwork
from luna2d.protocols.rate import TokenBucket


@dataclass
class Offer:
    """A dynamic address offered to ``mac`` on network ``network``, given to
    nobody else until ``until`` (seconds)."""

    mac: str
    address: int
    until: float
    network: str


def span_of(network: BootNetwork) -> tuple[int, int] | None:
    """The part of the network's DHCP range that lies inside the network."""
    if network.range_begin is None or network.range_end is None:
        return None
    first = network.network_address
    last = network.network_address | (~network.mask & 0xFFFFFFFF)
    low, high = max(network.range_begin, first), min(network.range_end, last)
    return (low, high) if low <= high else None


def key_of(network: BootNetwork) -> tuple[object, ...]:
    """What a pool is built from: when it changes, the pool is built again."""
    return (
        network.range_begin,
        network.range_end,
        network.network_address,
        network.mask,
        network.reserved,
    )


class Pool:
    """The dynamic range of one network: free addresses in two tiers, the
    addresses found held by devices, the offers held in it (oldest first)
    and its bucket of new offers."""

    def __init__(self, network: BootNetwork, span: tuple[int, int], bucket: TokenBucket) -> None:
        self.name = network.name
        self.network = network
        self.key = key_of(network)
        self.low, self.high = span
        self.reserved = network.reserved
        self.fresh = FreeSet(self.low, self.high)
        self.reusable = FreeSet(self.low, self.high, free=False)
        for value in self.reserved:
            self.fresh.take(value)
        self.capacity = len(self.fresh)
        # Held offers may take at most half of the range; a new offer beyond
        # that replaces the oldest, so a flood of DISCOVERs leaves the rest free.
        self.bound = max(1, self.capacity // 2)
        self.devices: set[int] = set()
        self.offers: OrderedDict[str, Offer] = OrderedDict()
        self.bucket = bucket
        self.index: object | None = None

    def covers(self, value: int) -> bool:
        """Whether ``value`` lies in the range."""
        return self.low <= value <= self.high

    def set_used(self, value: int) -> None:
        """``value`` is in use (by anything)."""
        self.fresh.take(value)
        self.reusable.take(value)

    def set_fresh(self, value: int) -> None:
        """``value`` is free and was never leased (or its lease row is gone)."""
        self.reusable.take(value)
        self.fresh.give(value)

    def set_reusable(self, value: int) -> None:
        """``value`` is free, with an ended lease on record."""
        self.fresh.take(value)
        self.reusable.give(value)

    def lowest_free(self) -> int | None:
        """The lowest never-leased free address, else the lowest reusable one."""
        value = self.fresh.lowest()
        return value if value is not None else self.reusable.lowest()

    def free_count(self) -> int:
        """How many addresses of the range are free now."""
        return len(self.fresh) + len(self.reusable)
