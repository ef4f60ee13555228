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
  before, else the one it asks for, else the lowest free one. luna2d is
  authoritative there: a REQUEST for an address it cannot give is NAKed.
  Unknown machines elsewhere get no answer.
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

import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import Message

BROADCAST = "255.255.255.255"
_IP = struct.Struct("!I")

# Option 93 architectures (RFC 4578 with its errata, IANA registry).
ARCH_BIOS = 0
ARCH_EFI_IA32 = 6
ARCH_EFI_X64 = 7
ARCH_EFI_BC = 9  # sent by some x86-64 firmware; treated as x86-64
ARCH_EFI_ARM64 = 11
ARCH_HTTP_X64 = 16


class NodeInfo(Protocol):
    """What the policy reads about a known node's interface."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def network(self) -> str: ...
    @property
    def gateway(self) -> str | None: ...
    @property
    def nameservers(self) -> tuple[str, ...]: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def netboot(self) -> bool: ...
    @property
    def bootmenu(self) -> bool: ...


class NetworkInfo(Protocol):
    """What the policy reads about a configured network."""

    @property
    def name(self) -> str: ...
    @property
    def network_address(self) -> int: ...
    @property
    def netmask(self) -> str: ...
    @property
    def mask(self) -> int: ...
    @property
    def broadcast(self) -> str: ...
    @property
    def gateway(self) -> str | None: ...
    @property
    def nameservers(self) -> tuple[str, ...]: ...
    @property
    def ntp_servers(self) -> tuple[str, ...]: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def dhcp(self) -> bool: ...
    @property
    def range_begin(self) -> int | None: ...
    @property
    def range_end(self) -> int | None: ...
    @property
    def reserved(self) -> frozenset[int]: ...


class Index(Protocol):
    """The boot index: MAC to node interface, address to network."""

    def node(self, mac: str) -> NodeInfo | None: ...
    def network_for(self, address: str) -> NetworkInfo | None: ...
    def taken(self, address: int) -> bool: ...


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


@dataclass(frozen=True)
class Outcome:
    """What to do about one request.

    ``event`` names it for counters and logs (offer, ack, nak, inform,
    release, decline); ``reply`` goes to ``destination`` and must be encoded
    within ``max_size`` octets; ``changes`` are for the lease store."""

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


def ip_int(address: str) -> int:
    """A dotted quad as an integer."""
    return int(_IP.unpack(socket.inet_aton(address))[0])


def ip_str(value: int) -> str:
    """An integer as a dotted quad."""
    return socket.inet_ntoa(_IP.pack(value))


def in_network(address: int, network: NetworkInfo) -> bool:
    """Whether ``address`` lies in ``network``."""
    return address & network.mask == network.network_address


def boot_path(node: NodeInfo | None) -> str:
    """The boot script for a machine, by the spec's template table:
    known, bootmenu off, netboot on: short; known, bootmenu and netboot on:
    normal; known, netboot off: disk; unknown: normal."""
    if node is None:
        return "/boot"
    if not node.netboot:
        return "/boot/disk"
    return "/boot" if node.bootmenu else "/boot/short"


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


def boot_file(message: Message, node: NodeInfo | None, server: str,
              settings: Settings) -> tuple[str | None, bytes | None]:
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
    """The DHCP server's decisions, over an index and an in-memory lease table."""

    def __init__(self, index: Callable[[], Index], settings: Settings | None = None,
                 leases: Iterable[Any] = ()) -> None:
        self.index = index
        self.settings = settings or Settings()
        self.leases: dict[str, Lease] = {}
        self.by_mac: dict[str, set[str]] = {}
        self.offers: dict[str, tuple[str, float]] = {}  # address -> (mac, held until)
        self.offered: dict[str, str] = {}  # mac -> address
        self.load_leases(leases)

    # -- the lease table ---------------------------------------------------------
    def load_leases(self, leases: Iterable[Any]) -> None:
        """Replace the lease table with ``leases`` (objects with address, mac,
        expires, state and hostname, such as the lease store's rows)."""
        self.leases.clear()
        self.by_mac.clear()
        for row in leases:
            self._set(Lease(row.address, row.mac, float(row.expires), row.state, row.hostname))

    def _set(self, lease: Lease) -> LeaseChange:
        old = self.leases.get(lease.address)
        if old is not None and old.mac != lease.mac:
            self.by_mac.get(old.mac, set()).discard(lease.address)
        self.leases[lease.address] = lease
        self.by_mac.setdefault(lease.mac, set()).add(lease.address)
        return LeaseChange(lease.address, lease)

    def _hold(self, address: str, mac: str, now: float) -> None:
        if len(self.offers) > 4096:
            for held, (_, until) in list(self.offers.items()):
                if until <= now:
                    del self.offers[held]
            self.offered = {m: a for m, a in self.offered.items() if a in self.offers}
        previous = self.offered.get(mac)
        if previous is not None and previous != address:
            self.offers.pop(previous, None)
        self.offers[address] = (mac, now + self.settings.offer_hold)
        self.offered[mac] = address

    def _unhold(self, mac: str) -> None:
        address = self.offered.pop(mac, None)
        if address is not None:
            self.offers.pop(address, None)

    # -- the dynamic range -------------------------------------------------------
    def _usable(self, address: str, mac: str, network: NetworkInfo, index: Index, now: float) -> bool:
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
        if lease is not None and lease.expires > now and (lease.mac != mac or lease.state != "bound"):
            return False
        held = self.offers.get(address)
        return held is None or held[0] == mac or held[1] <= now

    def _own_lease(self, mac: str, network: NetworkInfo) -> Lease | None:
        for address in self.by_mac.get(mac, ()):
            lease = self.leases[address]
            if lease.state == "bound" and in_network(ip_int(address), network):
                return lease
        return None

    def _pick(self, mac: str, network: NetworkInfo, requested: str | None, index: Index,
              now: float) -> str | None:
        own = self._own_lease(mac, network)
        if own is not None and self._usable(own.address, mac, network, index, now):
            return own.address
        offered = self.offered.get(mac)
        if offered is not None and self._usable(offered, mac, network, index, now):
            return offered
        if requested is not None and self._usable(requested, mac, network, index, now):
            return requested
        begin, end = network.range_begin, network.range_end
        if begin is None or end is None:
            return None
        expired: str | None = None
        for value in range(begin, min(end, begin + (1 << 20)) + 1):
            address = ip_str(value)
            if not self._usable(address, mac, network, index, now):
                continue
            if address not in self.leases:
                return address
            if expired is None:
                expired = address  # reuse an expired lease only when nothing is fresh
        return expired

    # -- answering ----------------------------------------------------------------
    def handle(self, inbound: Inbound, now: float) -> Outcome | None:
        """The answer to one request, or None to stay silent."""
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

    def _discover(self, message: Message, network: NetworkInfo, node: NodeInfo | None, server: str,
                  index: Index, now: float) -> Outcome | None:
        if node is not None:
            return self._answer(message, codec.OFFER, node.address, network, node, server)
        if not network.dhcp:
            return None
        requested = codec.read_address(message.option(codec.REQUESTED_ADDRESS))
        address = self._pick(message.mac, network, requested, index, now)
        if address is None:
            return Outcome("exhausted", detail=f"network {network.name}: no free address in the range")
        self._hold(address, message.mac, now)
        return self._answer(message, codec.OFFER, address, network, None, server)

    def _request(self, message: Message, network: NetworkInfo, node: NodeInfo | None, server: str,
                 index: Index, now: float) -> Outcome | None:
        mac = message.mac
        server_id = codec.read_address(message.option(codec.SERVER_ID))
        if message.option(codec.SERVER_ID) is not None and server_id != server:
            # SELECTING, and the client chose another server.
            if node is None:
                self._unhold(mac)
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
        if self._usable(wanted, mac, network, index, now):
            changes = [self._set(Lease(wanted, mac, now + self.settings.lease_time, "bound",
                                       _text(message.option(codec.HOSTNAME))))]
            for address in list(self.by_mac.get(mac, ())):
                old = self.leases[address]
                if address != wanted and old.state == "bound" and in_network(ip_int(address), network):
                    del self.leases[address]
                    self.by_mac[mac].discard(address)
                    changes.append(LeaseChange(address, None))
            self._unhold(mac)
            outcome = self._answer(message, codec.ACK, wanted, network, None, server)
            return replace(outcome, changes=tuple(changes))
        return self._nak(message, server, f"{wanted} is not available on network {network.name}")

    def _decline(self, message: Message, network: NetworkInfo, node: NodeInfo | None, server: str,
                 now: float) -> Outcome | None:
        server_id = message.option(codec.SERVER_ID)
        if server_id is not None and codec.read_address(server_id) != server:
            return None
        address = codec.read_address(message.option(codec.REQUESTED_ADDRESS))
        if address is None:
            address = message.ciaddr if message.ciaddr != codec.ZERO else None
        if address is None:
            return None
        if node is not None:
            return Outcome("decline", detail=f"node {node.name} ({message.mac}) found its address "
                                             f"{address} in use by another machine")
        lease = self.leases.get(address)
        held = self.offers.get(address)
        mine = (lease is not None and lease.mac == message.mac) or (held is not None and held[0] == message.mac)
        if not mine:
            return None
        self._unhold(message.mac)
        change = self._set(Lease(address, message.mac, now + self.settings.decline_hold, "declined"))
        return Outcome("decline", changes=(change,),
                       detail=f"{message.mac} found {address} in use; held back for "
                              f"{int(self.settings.decline_hold)} s")

    def _release(self, message: Message, node: NodeInfo | None, server: str, now: float) -> Outcome | None:
        server_id = message.option(codec.SERVER_ID)
        if server_id is not None and codec.read_address(server_id) != server:
            return None
        lease = self.leases.get(message.ciaddr)
        if node is not None or lease is None or lease.mac != message.mac or lease.state != "bound":
            return None
        # Keep the row, expired: the address is free, and the client gets it again if it is still.
        change = self._set(replace(lease, expires=min(lease.expires, now)))
        return Outcome("release", changes=(change,))

    def _inform(self, message: Message, network: NetworkInfo, node: NodeInfo | None,
                server: str) -> Outcome | None:
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

    def _answer(self, message: Message, reply_type: int, address: str, network: NetworkInfo,
                node: NodeInfo | None, server: str, inform: bool = False) -> Outcome:
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
        return Outcome(event, reply, destination(message, reply_type, settings), max_reply_size(message))

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
        return Outcome("nak", reply, destination(message, codec.NAK, self.settings),
                       max_reply_size(message), detail=why)


