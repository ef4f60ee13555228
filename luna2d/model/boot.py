# -*- test-case-name: tests.dhcp.test_bootindex,tests.dhcp.test_policy,tests.boot.test_render -*-
"""What the network-boot services read, defined once: the boot index's
entries (``BootNode``, ``BootNetwork``, ``BootIndex``) and the spec's
template table (``boot_entry``, ``BOOT_PATHS``).

The store builds a ``BootIndex`` from its state (``luna2d.store.bootindex``)
and keeps it in step with every committed write; the DHCP server
(``luna2d.protocols.dhcp``) is handed a function returning the current one,
and the HTTP boot resources render the script the table names. Plain
frozen data, no I/O: every side can import it without knowing the others."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# -- the spec's template table ---------------------------------------------------------

NORMAL, SHORT, DISK = "normal", "short", "disk"
BOOT_PATHS = {NORMAL: "/boot", SHORT: "/boot/short", DISK: "/boot/disk"}


def boot_entry(known: bool, bootmenu: bool = False, netboot: bool = True) -> str:
    """Which boot script a machine starts from (the spec's table): an
    unknown machine and a known one with ``bootmenu`` get the full menu
    (``normal``), a known one without it goes straight to its own script
    (``short``), and a known one with ``netboot`` off boots its disk."""
    if not known:
        return NORMAL
    if not netboot:
        return DISK
    return NORMAL if bootmenu else SHORT


# -- the boot index ----------------------------------------------------------------------


@dataclass(frozen=True)
class BootNode:
    """A known node's interface, as DHCP and the boot scripts need it."""

    mac: str
    name: str
    interface: str
    address: str
    network: str
    prefixlen: int
    gateway: str | None
    nameservers: tuple[str, ...]
    domain: str | None
    netboot: bool
    bootmenu: bool
    known: bool = True


@dataclass(frozen=True)
class BootNetwork:
    """An IPv4 network with its DHCP settings; ``reserved`` holds the
    addresses no dynamic lease may take (network, broadcast, gateway, name
    server, the controller's own)."""

    name: str
    cidr: str
    network_address: int
    mask: int
    prefixlen: int
    netmask: str
    broadcast: str
    gateway: str | None
    nameservers: tuple[str, ...]
    ntp_servers: tuple[str, ...]
    domain: str | None
    dhcp: bool
    range_begin: int | None
    range_end: int | None
    reserved: frozenset[int]
    controller: str | None


@dataclass(frozen=True)
class BootIndex:
    """One consistent view: nodes by MAC, networks, taken addresses."""

    nodes: dict[str, BootNode]
    networks: tuple[BootNetwork, ...]
    addresses: frozenset[int]
    generation: int = 0
    _memo: dict[str, BootNetwork | None] = field(default_factory=dict, compare=False, repr=False)

    def node(self, mac: str) -> BootNode | None:
        """The node interface with this MAC (lowercase, colon-separated)."""
        return self.nodes.get(mac)

    def network_for(self, address: str) -> BootNetwork | None:
        """The configured network holding ``address`` (the most specific one)."""
        if address in self._memo:
            return self._memo[address]
        found: BootNetwork | None = None
        try:
            value = int(ipaddress.IPv4Address(address))
        except ValueError:
            value = None
        if value is not None:
            for network in self.networks:
                if value & network.mask == network.network_address and (
                    found is None or network.prefixlen > found.prefixlen
                ):
                    found = network
        if len(self._memo) < 65536:
            self._memo[address] = found
        return found

    def taken(self, address: int) -> bool:
        """Whether a device (node, switch, other device, controller) holds it."""
        return address in self.addresses
