# -*- test-case-name: tests.dhcp.test_policy,tests.dhcp.test_starvation -*-
"""Who gets which address, options and boot file: a pure function of the
request, the boot index, the lease table and the time.

``Policy.handle(inbound, now)`` answers one decoded request with an
``Outcome`` (the reply, where it goes, lease changes to persist) or None.
It does no I/O and reads no clock: the index is a callable returning the
current boot index, the lease table is in memory (loaded by whoever builds
the policy) and every change to it is also handed back in the outcome for
the caller to persist.

The decisions, in short (docs/BOOT.md has the reasoning):

- A known node (its MAC is on a node interface whose address lies in the
  network the request came from) gets that fixed address, always, whether
  or not the network has ``dhcp`` on. A REQUEST for any other address is
  NAKed.
- An unknown machine on a network with ``dhcp`` on gets an address of the
  network's range ``[dhcp_range_begin, dhcp_range_end]``: the one it leased
  before, else the one it was offered, else the one it asks for, else the
  lowest never-leased free one, else the lowest whose lease ended. The
  offer is held for it (``offer_hold``). Unknown machines elsewhere get no
  answer.
- A REQUEST for a range address is ACKed only when that address was offered
  to that MAC (the offer still held) or the MAC holds its lease. Otherwise:
  a client that chose luna2d (SELECTING) is NAKed; one that names an
  address without choosing a server (INIT-REBOOT, RENEWING, REBINDING) is
  NAKed when luna2d knows the address is wrong for it (another network,
  outside the range, reserved, another machine's, or the MAC holds a
  different one) and otherwise gets no answer (RFC 2131 4.3.2: no record of
  the client, so stay silent).
- New offers to unknown machines are bounded: per network by a token bucket
  (``offer_rate`` a second, ``offer_burst`` at once; beyond it no answer)
  and in number: at most half of a range, and ``max_offers`` in all, are
  held at once; a new offer past either bound, or into a full range,
  replaces the oldest held offer. A flood of DISCOVERs from made-up MACs
  thus never holds more than half of a range, and a new machine still gets
  an offer. Known nodes never use the range nor the bucket.
- Allocation never walks the range: each network's free addresses are kept
  in ``pool.Pool`` bitmaps, lease ends in a heap and offers in age order,
  so a packet costs O(log n) in the size of the range.
- The network a request came from is the one holding the relay's address
  (``giaddr``) when relayed, else the one holding the address of the
  interface it arrived on. That interface address is the server identifier,
  the next-server and the host of every boot URL.
- Boot files follow the spec's template table (bootmenu, netboot, known):
  iPXE (user class ``iPXE``) gets ``http://<server>:<port>/boot``,
  ``/boot/short`` or ``/boot/disk``; PXE firmware (vendor class
  ``PXEClient``) gets the iPXE binary for its architecture over TFTP; UEFI
  HTTP boot firmware (vendor class ``HTTPClient``) gets the iPXE binary's
  HTTP URL."""

from __future__ import annotations

import heapq
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from luna2d.model.boot import BOOT_PATHS, BootIndex, BootNetwork, BootNode, boot_entry
from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import Message
from luna2d.protocols.dhcp.pool import Offer, Pool, key_of, span_of
from luna2d.protocols.rate import TokenBucket

BROADCAST = "255.255.255.255"
_IP = struct.Struct("!I")

# Option 93 architectures (RFC 4578 with its errata, IANA registry).
ARCH_BIOS = 0
ARCH_EFI_IA32 = 6
ARCH_EFI_X64 = 7
ARCH_EFI_BC = 9  # sent by some x86-64 firmware; treated as x86-64
ARCH_EFI_ARM64 = 11
ARCH_HTTP_X64 = 16


@dataclass(frozen=True)
class Link:
    """An interface the server listens on, and its own address there."""

    interface: str
    address: str


@dataclass(frozen=True)
class Inbound:
    """A decoded request and the interface it arrived on."""

    message: Message
    link: Link


@dataclass(frozen=True)
class Lease:
    """A dynamic-range address held by a MAC until ``expires`` (seconds).

    ``state`` is ``bound``, or ``declined`` for an address a client found in
    use (held back until ``expires``)."""

    address: str
    mac: str
    expires: float
    state: str = "bound"
    hostname: str | None = None


@dataclass(frozen=True)
class LeaseChange:
    """The lease table's row for ``address`` is now ``lease`` (None: removed)."""

    address: str
    lease: Lease | None


# Every ``Outcome.event`` the policy answers with; each is a counter of the server.
EVENTS = (
    "offer",
    "ack",
    "nak",
    "inform",
    "release",
    "decline",
    "exhausted",
    "throttled",
    "unoffered",
)


@dataclass(frozen=True)
class Outcome:
    """What to do about one request.

    ``event`` names it for counters and logs (one of ``EVENTS``); ``reply``
    goes to ``destination`` and must be encoded within ``max_size`` octets;
    ``changes`` are for the lease store."""

    event: str
    reply: Message | None = None
    destination: tuple[str, int] | None = None
    max_size: int = 548
    changes: tuple[LeaseChange, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Settings:
    """Tunables of the policy; the defaults are luna2d's."""

    lease_time: int = 3600
    http_port: int = 7050
    bios_binary: str = "undionly.kpxe"
    efi_binary: str = "ipxe.efi"
    http_boot_path: str = "/files/{binary}"
    offer_hold: float = 60.0
    decline_hold: float = 600.0
    server_port: int = 67
    client_port: int = 68
    max_offers: int = 1024
    offer_rate: float = 20.0
    offer_burst: int = 100


def ip_int(address: str) -> int:
    """A dotted quad as an integer."""
    return int(_IP.unpack(socket.inet_aton(address))[0])


def ip_str(value: int) -> str:
    """An integer as a dotted quad."""
    return socket.inet_ntoa(_IP.pack(value))


def in_network(address: int, network: BootNetwork) -> bool:
    """Whether ``address`` lies in ``network``."""
    return address & network.mask == network.network_address


def boot_path(node: BootNode | None) -> str:
    """The boot script's path for a machine, by the spec's template table
    (``luna2d.model.boot``)."""
    if node is None:
        return BOOT_PATHS[boot_entry(False)]
    return BOOT_PATHS[boot_entry(True, node.bootmenu, node.netboot)]


def is_ipxe(message: Message) -> bool:
    """Whether the request comes from iPXE (user class ``iPXE``)."""
    return b"iPXE" in codec.user_classes(message.option(codec.USER_CLASS))


def architectures(message: Message) -> tuple[int, ...]:
    """The client's architectures: option 93, else the ``Arch:`` field of a
    PXE vendor class (``PXEClient:Arch:00000:UNDI:002001``)."""
    arches = codec.read_u16_list(message.option(codec.CLIENT_ARCH))
    if arches:
        return arches
    vendor = message.option(codec.VENDOR_CLASS) or b""
    parts = vendor.split(b":")
    if len(parts) >= 3 and parts[1] == b"Arch" and parts[2].isdigit():
        return (int(parts[2]),)
    return ()


def boot_file(
    message: Message, node: BootNode | None, server: str, settings: Settings
) -> tuple[str | None, bytes | None]:
    """The boot file name (a TFTP path or an HTTP URL) and the vendor class
    to answer with, for the firmware that sent ``message``."""
    vendor = message.option(codec.VENDOR_CLASS) or b""
    pxe = vendor.startswith(b"PXEClient")
    if is_ipxe(message):
        url = f"http://{server}:{settings.http_port}{boot_path(node)}"
        return url, (b"PXEClient" if pxe else None)
    arches = architectures(message)
    if vendor.startswith(b"HTTPClient"):
        if not arches or arches[0] in (ARCH_HTTP_X64, ARCH_EFI_X64, ARCH_EFI_BC):
            path = settings.http_boot_path.format(binary=settings.efi_binary)
            return f"http://{server}:{settings.http_port}{path}", b"HTTPClient"
        return None, b"HTTPClient"
    if pxe:
        # No vendor class back: PXE firmware (EDK2's UEFI PXE as PXE 2.1
        # says) takes an offer holding PXEClient but no PXE options (43) for
        # a BINL offer and asks a boot server on UDP 4011 for the file, which
        # luna2d does not run; a plain offer's file is fetched as it is.
        arch = arches[0] if arches else ARCH_BIOS
        if arch == ARCH_BIOS:
            return settings.bios_binary, None
        if arch in (ARCH_EFI_X64, ARCH_EFI_BC):
            return settings.efi_binary, None
        return None, None
    return None, None


def destination(request: Message, reply_type: int, settings: Settings) -> tuple[str, int]:
    """Where a reply goes (RFC 2131 section 4.1): to the relay when relayed;
    to the client's own address when it has one (but NAKs are broadcast);
    else broadcast, so that clients without an address receive it."""
    if request.giaddr != codec.ZERO:
        return request.giaddr, settings.server_port
    if reply_type != codec.NAK and request.ciaddr != codec.ZERO:
        return request.ciaddr, settings.client_port
    return BROADCAST, settings.client_port


def max_reply_size(request: Message) -> int:
    """The largest DHCP message the client accepts: its option 57 less the
    IP and UDP headers, never below the 548 octets every client must take."""
    announced = codec.read_u16(request.option(codec.MAX_MESSAGE_SIZE))
    if announced is None:
        return 548
    return max(548, min(announced, 65535) - 28)


def _text(value: bytes | None) -> str | None:
    if not value:
        return None
    text = value.decode("ascii", "replace").strip("\x00")
    return text if text.isprintable() else None


class Policy:
    """The DHCP server's decisions, over an index, an in-memory lease table,
    the offers held and one ``Pool`` per network with a dynamic range."""

    def __init__(
        self,
        index: Callable[[], BootIndex],
        settings: Settings | None = None,
        leases: Iterable[Any] = (),
    ) -> None:
        self.index = index
        self.settings = settings or Settings()
        self.leases: dict[str, Lease] = {}
        self.by_mac: dict[str, set[str]] = {}
        self.offers: OrderedDict[str, Offer] = OrderedDict()  # by MAC, oldest first
        self.held: dict[int, str] = {}  # address -> the MAC its held offer is for
        self.pools: dict[str, Pool] = {}
        self._ends: list[tuple[float, str]] = []  # (expires, address): a heap of lease ends
        self._scheduled: dict[str, float] = {}  # address -> its earliest entry in _ends
        self.applied = float("-inf")  # the time up to which ends are applied to the pools
        self.load_leases(leases)

    # -- the lease table ---------------------------------------------------------
    def load_leases(self, leases: Iterable[Any]) -> None:
        """Replace the lease table with ``leases`` (objects with address, mac,
        expires, state and hostname, such as the lease store's rows). A row
        whose address is not a canonical dotted quad is skipped: it could
        never be offered, and the pools index leases by that form."""
        self.leases.clear()
        self.by_mac.clear()
        self._ends.clear()
        self._scheduled.clear()
        self.pools.clear()  # built again from the new table when next used
        for row in leases:
            try:
                canonical = ip_str(ip_int(row.address)) == row.address
            except (OSError, TypeError):
                canonical = False
            if not canonical:
                continue
            lease = Lease(row.address, row.mac, float(row.expires), row.state, row.hostname)
            old = self.leases.get(lease.address)
            if old is not None and old.mac != lease.mac:
                self.by_mac[old.mac].discard(lease.address)
            self.leases[lease.address] = lease
            self.by_mac.setdefault(lease.mac, set()).add(lease.address)
            self._scheduled[lease.address] = lease.expires
        self._ends = [(when, address) for address, when in self._scheduled.items()]
        heapq.heapify(self._ends)

    def _record(self, lease: Lease) -> None:
        old = self.leases.get(lease.address)
        if old is not None and old.mac != lease.mac:
            self.by_mac.get(old.mac, set()).discard(lease.address)
        self.leases[lease.address] = lease
        self.by_mac.setdefault(lease.mac, set()).add(lease.address)
        scheduled = self._scheduled.get(lease.address)
        if scheduled is None or lease.expires < scheduled:
            self._scheduled[lease.address] = lease.expires
            heapq.heappush(self._ends, (lease.expires, lease.address))

    def _set(self, lease: Lease, now: float) -> LeaseChange:
        self._record(lease)
        self._refresh(ip_int(lease.address), now)
        return LeaseChange(lease.address, lease)

    def _remove(self, address: str, now: float) -> LeaseChange:
        old = self.leases.pop(address)
        self.by_mac.get(old.mac, set()).discard(address)
        self._refresh(ip_int(address), now)
        return LeaseChange(address, None)

    def _expire(self, now: float) -> None:
        """Let go of the offers and leases that ended by ``now``: the oldest
        offer ends first, lease ends come off a heap; each costs O(log n)."""
        self.applied = max(self.applied, now)
        while self.offers:
            oldest = next(iter(self.offers.values()))
            if oldest.until > now:
                break
            self._drop_offer(oldest.mac, now)
        ends = self._ends
        while ends and ends[0][0] <= now:
            when, address = heapq.heappop(ends)
            if self._scheduled.get(address) != when:
                continue  # superseded by an earlier end
            del self._scheduled[address]
            lease = self.leases.get(address)
            if lease is None:
                continue
            if lease.expires > now:  # renewed since: wait for the new end
                self._scheduled[address] = lease.expires
                heapq.heappush(ends, (lease.expires, address))
                continue
            self._refresh(ip_int(address), now)

    # -- the pools ---------------------------------------------------------------------
    def _pool(self, network: BootNetwork, index: BootIndex, now: float) -> Pool | None:
        """The network's pool, built (once per range) from the leases and
        offers on record, with the device addresses it set aside checked
        again whenever the index changed."""
        pool = self.pools.get(network.name)
        if pool is None or (pool.network is not network and pool.key != key_of(network)):
            span = span_of(network)
            if span is None:
                self.pools.pop(network.name, None)
                return None
            bucket = (
                pool.bucket
                if pool is not None
                else TokenBucket(self.settings.offer_rate, self.settings.offer_burst)
            )
            pool = Pool(network, span, bucket)
            self.pools[network.name] = pool
            for address in self.leases:
                value = ip_int(address)
                if pool.covers(value):
                    self._refresh_in(pool, value, now)
            for offer in self.offers.values():
                if offer.network == pool.name and pool.covers(offer.address):
                    pool.offers[offer.mac] = offer
                    self._refresh_in(pool, offer.address, now)
        pool.network = network
        if pool.index is not index:
            pool.index = index
            for value in [v for v in pool.devices if not index.taken(v)]:
                pool.devices.discard(value)
                self._refresh_in(pool, value, now)
        return pool

    def _refresh(self, value: int, now: float) -> None:
        for pool in self.pools.values():
            if pool.covers(value):
                self._refresh_in(pool, value, now)

    def _refresh_in(self, pool: Pool, value: int, now: float) -> None:
        """Tell the pool what ``value`` is now, from the records."""
        if value in pool.reserved or value in pool.devices or value in self.held:
            pool.set_used(value)
            return
        lease = self.leases.get(ip_str(value))
        if lease is None:
            pool.set_fresh(value)
        elif lease.expires > now:
            pool.set_used(value)
        else:
            pool.set_reusable(value)

    def _lowest(self, pool: Pool, index: BootIndex, now: float) -> int | None:
        """The lowest free address of the pool; one a device holds (a forced
        address inside the range) is set aside on the way."""
        while True:
            value = pool.lowest_free()
            if value is None or not index.taken(value):
                return value
            pool.devices.add(value)
            self._refresh_in(pool, value, now)

    # -- offers -----------------------------------------------------------------------
    def _hold(self, pool: Pool, value: int, mac: str, now: float) -> None:
        self._drop_offer(mac, now)
        offer = Offer(mac, value, now + self.settings.offer_hold, pool.name)
        self.offers[mac] = offer
        pool.offers[mac] = offer
        self.held[value] = mac
        self._refresh_in(pool, value, now)

    def _drop_offer(self, mac: str, now: float) -> None:
        offer = self.offers.pop(mac, None)
        if offer is None:
            return
        pool = self.pools.get(offer.network)
        if pool is not None:
            pool.offers.pop(mac, None)
        if self.held.get(offer.address) == mac:
            del self.held[offer.address]
        self._refresh(offer.address, now)

    def _make_room(self, pool: Pool, now: float) -> None:
        """Drop the oldest held offers until a new one fits both bounds."""
        while pool.offers and len(pool.offers) >= pool.bound:
            self._drop_offer(next(iter(pool.offers)), now)
        while self.offers and len(self.offers) >= self.settings.max_offers:
            self._drop_offer(next(iter(self.offers)), now)

    # -- the dynamic range -------------------------------------------------------
    def _usable(
        self, address: str, mac: str, network: BootNetwork, index: BootIndex, now: float
    ) -> bool:
        """Whether ``address`` may be given to ``mac`` now."""
        try:
            value = ip_int(address)
        except OSError:
            return False
        begin, end = network.range_begin, network.range_end
        if begin is None or end is None or not begin <= value <= end:
            return False
        if not in_network(value, network) or value in network.reserved or index.taken(value):
            return False
        lease = self.leases.get(address)
        if (
            lease is not None
            and lease.expires > now
            and (lease.mac != mac or lease.state != "bound")
        ):
            return False
        holder = self.held.get(value)
        return holder is None or holder == mac

    def _own_lease(self, mac: str, network: BootNetwork) -> Lease | None:
        for address in self.by_mac.get(mac, ()):
            lease = self.leases[address]
            if lease.state == "bound" and in_network(ip_int(address), network):
                return lease
        return None

    def _pick(
        self,
        mac: str,
        network: BootNetwork,
        pool: Pool,
        requested: str | None,
        index: BootIndex,
        now: float,
    ) -> int | str | None:
        """The address to offer ``mac``; "throttled" when it would be a new
        offer and the network's bucket is empty; None when nothing is free."""
        own = self._own_lease(mac, network)
        if own is not None and self._usable(own.address, mac, network, index, now):
            return ip_int(own.address)
        offer = self.offers.get(mac)
        if (
            offer is not None
            and offer.network == network.name
            and self._usable(ip_str(offer.address), mac, network, index, now)
        ):
            return offer.address
        if not pool.bucket.take(now):
            return "throttled"
        self._drop_offer(mac, now)
        self._make_room(pool, now)
        if requested is not None and self._usable(requested, mac, network, index, now):
            return ip_int(requested)
        value = self._lowest(pool, index, now)
        if value is None and pool.offers:
            # A full range: the oldest offer not taken up makes way.
            self._drop_offer(next(iter(pool.offers)), now)
            value = self._lowest(pool, index, now)
        return value

    # -- answering ----------------------------------------------------------------
    def handle(self, inbound: Inbound, now: float) -> Outcome | None:
        """The answer to one request, or None to stay silent."""
        self._expire(now)  # on every packet, so the pools always match the records
        message = inbound.message
        if message.op != codec.BOOTREQUEST or message.htype != 1 or message.hlen != 6:
            return None
        kind = message.message_type
        if kind is None:
            return None
        index = self.index()
        relayed = message.giaddr != codec.ZERO
        network = index.network_for(message.giaddr if relayed else inbound.link.address)
        if network is None:
            return None
        server = inbound.link.address
        mac = message.mac
        node = index.node(mac)
        if node is not None and node.network != network.name:
            node = None
        if kind == codec.DISCOVER:
            return self._discover(message, network, node, server, index, now)
        if kind == codec.REQUEST:
            return self._request(message, network, node, server, index, now)
        if kind == codec.DECLINE:
            return self._decline(message, network, node, server, now)
        if kind == codec.RELEASE:
            return self._release(message, node, server, now)
        if kind == codec.INFORM:
            return self._inform(message, network, node, server)
        return None

    def _discover(
        self,
        message: Message,
        network: BootNetwork,
        node: BootNode | None,
        server: str,
        index: BootIndex,
        now: float,
    ) -> Outcome | None:
        if node is not None:
            return self._answer(message, codec.OFFER, node.address, network, node, server)
        if not network.dhcp:
            return None
        pool = self._pool(network, index, now)
        if pool is None:
            return Outcome("exhausted", detail=f"network {network.name}: no dynamic range")
        requested = codec.read_address(message.option(codec.REQUESTED_ADDRESS))
        value = self._pick(message.mac, network, pool, requested, index, now)
        if value == "throttled":
            return Outcome("throttled")
        if not isinstance(value, int):
            return Outcome(
                "exhausted", detail=f"network {network.name}: no free address in the range"
            )
        self._hold(pool, value, message.mac, now)
        return self._answer(message, codec.OFFER, ip_str(value), network, None, server)

    def _request(
        self,
        message: Message,
        network: BootNetwork,
        node: BootNode | None,
        server: str,
        index: BootIndex,
        now: float,
    ) -> Outcome | None:
        mac = message.mac
        server_id = codec.read_address(message.option(codec.SERVER_ID))
        selecting = message.option(codec.SERVER_ID) is not None
        if selecting and server_id != server:
            # SELECTING, and the client chose another server.
            if node is None:
                self._drop_offer(mac, now)
            return None
        wanted = codec.read_address(message.option(codec.REQUESTED_ADDRESS))
        if wanted is None and message.ciaddr != codec.ZERO:
            wanted = message.ciaddr  # RENEWING or REBINDING
        if wanted is None:
            return None
        if node is not None:
            if wanted == node.address:
                return self._answer(message, codec.ACK, node.address, network, node, server)
            return self._nak(message, server, f"{wanted} is not the address of {node.name}")
        if not network.dhcp:
            return None
        self._pool(network, index, now)
        offer = self.offers.get(mac)
        offered = (
            offer is not None and offer.network == network.name and ip_str(offer.address) == wanted
        )
        lease = self.leases.get(wanted)
        holds = lease is not None and lease.mac == mac and lease.state == "bound"
        if (offered or holds) and self._usable(wanted, mac, network, index, now):
            return self._bind(message, wanted, network, server, now)
        why = self._refusal(wanted, mac, network, index, now, selecting)
        if why is None:
            return Outcome("unoffered")  # no record of this client: stay silent
        return self._nak(message, server, why)

    def _bind(
        self, message: Message, wanted: str, network: BootNetwork, server: str, now: float
    ) -> Outcome:
        mac = message.mac
        changes = [
            self._set(
                Lease(
                    wanted,
                    mac,
                    now + self.settings.lease_time,
                    "bound",
                    _text(message.option(codec.HOSTNAME)),
                ),
                now,
            )
        ]
        for address in list(self.by_mac.get(mac, ())):
            old = self.leases[address]
            if address != wanted and old.state == "bound" and in_network(ip_int(address), network):
                changes.append(self._remove(address, now))
        self._drop_offer(mac, now)
        outcome = self._answer(message, codec.ACK, wanted, network, None, server)
        return replace(outcome, changes=tuple(changes))

    def _refusal(
        self,
        wanted: str,
        mac: str,
        network: BootNetwork,
        index: BootIndex,
        now: float,
        selecting: bool,
    ) -> str | None:
        """Why a REQUEST for ``wanted`` that was neither offered to ``mac``
        nor leased by it is refused (a NAK), or None when luna2d has no
        record that makes it wrong (silence, RFC 2131 4.3.2)."""
        if selecting:
            return f"{wanted} was not offered to {mac}"
        value = ip_int(wanted)
        if not in_network(value, network):
            return f"{wanted} is not in network {network.name}"
        begin, end = network.range_begin, network.range_end
        if begin is None or end is None or not begin <= value <= end:
            return f"{wanted} is not in the dynamic range of network {network.name}"
        if value in network.reserved or index.taken(value):
            return f"{wanted} is not available on network {network.name}"
        if not self._usable(wanted, mac, network, index, now):
            return f"{wanted} is held by another machine"
        for address in self.by_mac.get(mac, ()):
            if address != wanted and in_network(ip_int(address), network):
                return f"{mac} holds {address}, not {wanted}"
        return None

    def _decline(
        self, message: Message, network: BootNetwork, node: BootNode | None, server: str, now: float
    ) -> Outcome | None:
        server_id = message.option(codec.SERVER_ID)
        if server_id is not None and codec.read_address(server_id) != server:
            return None
        address = codec.read_address(message.option(codec.REQUESTED_ADDRESS))
        if address is None:
            address = message.ciaddr if message.ciaddr != codec.ZERO else None
        if address is None:
            return None
        if node is not None:
            return Outcome(
                "decline",
                detail=f"node {node.name} ({message.mac}) found its address "
                f"{address} in use by another machine",
            )
        lease = self.leases.get(address)
        offer = self.offers.get(message.mac)
        mine = (lease is not None and lease.mac == message.mac) or (
            offer is not None and ip_str(offer.address) == address
        )
        if not mine:
            return None
        self._drop_offer(message.mac, now)
        change = self._set(
            Lease(address, message.mac, now + self.settings.decline_hold, "declined"), now
        )
        return Outcome(
            "decline",
            changes=(change,),
            detail=f"{message.mac} found {address} in use; held back for "
            f"{int(self.settings.decline_hold)} s",
        )

    def _release(
        self, message: Message, node: BootNode | None, server: str, now: float
    ) -> Outcome | None:
        server_id = message.option(codec.SERVER_ID)
        if server_id is not None and codec.read_address(server_id) != server:
            return None
        lease = self.leases.get(message.ciaddr)
        if node is not None or lease is None or lease.mac != message.mac or lease.state != "bound":
            return None
        # Keep the row, expired: the address is free, and the client gets it again if it is still.
        change = self._set(replace(lease, expires=min(lease.expires, now)), now)
        return Outcome("release", changes=(change,))

    def _inform(
        self, message: Message, network: BootNetwork, node: BootNode | None, server: str
    ) -> Outcome | None:
        if message.ciaddr == codec.ZERO:
            return None
        return self._answer(message, codec.ACK, codec.ZERO, network, node, server, inform=True)

    # -- building replies ------------------------------------------------------------
    @staticmethod
    def _base(message: Message, flags: int | None = None, **fields: Any) -> Message:
        return Message(
            op=codec.BOOTREPLY,
            xid=message.xid,
            chaddr=message.chaddr,
            htype=message.htype,
            hlen=message.hlen,
            flags=message.flags if flags is None else flags,
            giaddr=message.giaddr,
            **fields,
        )

    def _answer(
        self,
        message: Message,
        reply_type: int,
        address: str,
        network: BootNetwork,
        node: BootNode | None,
        server: str,
        inform: bool = False,
    ) -> Outcome:
        settings = self.settings
        options: list[tuple[int, bytes]] = [
            (codec.MESSAGE_TYPE, bytes((reply_type,))),
            (codec.SERVER_ID, codec.addresses(server)),
        ]
        if not inform:
            lease_time = settings.lease_time
            options += [
                (codec.LEASE_TIME, codec.u32(lease_time)),
                (codec.RENEWAL_TIME, codec.u32(lease_time // 2)),
                (codec.REBINDING_TIME, codec.u32(lease_time * 7 // 8)),
            ]
        options += [
            (codec.SUBNET_MASK, codec.addresses(network.netmask)),
            (codec.BROADCAST_ADDRESS, codec.addresses(network.broadcast)),
        ]
        gateway = node.gateway if node is not None else network.gateway
        if gateway:
            options.append((codec.ROUTER, codec.addresses(gateway)))
        nameservers = node.nameservers if node is not None else network.nameservers
        if nameservers:
            options.append((codec.DNS_SERVERS, codec.addresses(*nameservers)))
        if node is not None:
            options.append((codec.HOSTNAME, node.name.encode()))
        domain = (node.domain if node is not None else None) or network.domain
        if domain:
            options.append((codec.DOMAIN_NAME, domain.encode()))
        if network.ntp_servers:
            options.append((codec.NTP_SERVERS, codec.addresses(*network.ntp_servers)))
        filename, vendor = boot_file(message, node, server, settings)
        if vendor is not None:
            options.append((codec.VENDOR_CLASS, vendor))
        file = b""
        if filename is not None:
            encoded = filename.encode()
            if len(encoded) < codec.FILE_SIZE:
                file = encoded
            requested = message.option(codec.PARAMETER_REQUEST_LIST) or b""
            if not file or codec.BOOTFILE_NAME in requested:
                options.append((codec.BOOTFILE_NAME, encoded))
        client_id = message.option(codec.CLIENT_ID)
        if client_id is not None:
            options.append((codec.CLIENT_ID, client_id))  # RFC 6842
        relay_info = message.option(codec.RELAY_AGENT_INFO)
        if relay_info is not None:
            options.append((codec.RELAY_AGENT_INFO, relay_info))  # RFC 3046: echoed, last
        reply = self._base(
            message,
            ciaddr=message.ciaddr if inform or reply_type == codec.ACK else codec.ZERO,
            yiaddr=address,
            siaddr=server if filename is not None or not inform else codec.ZERO,
            file=file,
            options=tuple(options),
        )
        event = "inform" if inform else ("offer" if reply_type == codec.OFFER else "ack")
        return Outcome(
            event, reply, destination(message, reply_type, settings), max_reply_size(message)
        )

    def _nak(self, message: Message, server: str, why: str) -> Outcome:
        options: list[tuple[int, bytes]] = [
            (codec.MESSAGE_TYPE, bytes((codec.NAK,))),
            (codec.SERVER_ID, codec.addresses(server)),
            (codec.MESSAGE, why.encode()[:255]),
        ]
        client_id = message.option(codec.CLIENT_ID)
        if client_id is not None:
            options.append((codec.CLIENT_ID, client_id))
        relay_info = message.option(codec.RELAY_AGENT_INFO)
        if relay_info is not None:
            options.append((codec.RELAY_AGENT_INFO, relay_info))
        relayed = message.giaddr != codec.ZERO
        flags = (message.flags | codec.BROADCAST_FLAG) if relayed else message.flags
        reply = self._base(message, flags=flags, options=tuple(options))
        return Outcome(
            "nak",
            reply,
            destination(message, codec.NAK, self.settings),
            max_reply_size(message),
            detail=why,
        )
