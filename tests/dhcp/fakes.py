"""Hand-built boot indexes and requests for the DHCP tests (no store)."""

from __future__ import annotations

import ipaddress
from typing import Any

from luna2d.model.boot import BootIndex, BootNetwork, BootNode
from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.codec import Message
from luna2d.protocols.dhcp.policy import Inbound, Link

SERVER = "10.141.255.254"
LINK = Link("eth-test", SERVER)
KNOWN_MAC = "02:00:00:00:00:01"
UNKNOWN_MAC = "02:00:00:00:00:99"


def network(
    name: str = "cluster",
    cidr: str = "10.141.0.0/16",
    gateway: str | None = SERVER,
    nameservers: tuple[str, ...] = (SERVER,),
    ntp: tuple[str, ...] = ("10.141.255.250",),
    dhcp: bool = True,
    begin: str | None = "10.141.0.200",
    end: str | None = "10.141.0.203",
    domain: str | None = "cluster",
    controller: str | None = SERVER,
) -> BootNetwork:
    """A BootNetwork as the indexer would build it."""
    net = ipaddress.IPv4Network(cidr)
    reserved = {int(net.network_address), int(net.broadcast_address)}
    for extra in (gateway, controller, *nameservers):
        if extra:
            reserved.add(int(ipaddress.IPv4Address(extra)))
    return BootNetwork(
        name=name,
        cidr=cidr,
        network_address=int(net.network_address),
        mask=int(net.netmask),
        prefixlen=net.prefixlen,
        netmask=str(net.netmask),
        broadcast=str(net.broadcast_address),
        gateway=gateway,
        nameservers=nameservers,
        ntp_servers=ntp,
        domain=domain,
        dhcp=dhcp,
        range_begin=int(ipaddress.IPv4Address(begin)) if begin and end else None,
        range_end=int(ipaddress.IPv4Address(end)) if begin and end else None,
        reserved=frozenset(reserved),
        controller=controller,
    )


def node(
    mac: str = KNOWN_MAC,
    name: str = "node001",
    address: str = "10.141.0.1",
    net: str = "cluster",
    netboot: bool = True,
    bootmenu: bool = False,
    domain: str | None = "cluster",
    gateway: str | None = SERVER,
) -> BootNode:
    """A BootNode as the indexer would build it."""
    return BootNode(
        mac=mac,
        name=name,
        interface="BOOTIF",
        address=address,
        network=net,
        prefixlen=16,
        gateway=gateway,
        nameservers=(SERVER,),
        domain=domain,
        netboot=netboot,
        bootmenu=bootmenu,
    )


def index(
    nodes: list[BootNode] | None = None,
    networks: list[BootNetwork] | None = None,
    taken: tuple[str, ...] = (),
) -> BootIndex:
    """A BootIndex of the given nodes and networks; taken: extra held addresses."""
    nodes = [node()] if nodes is None else nodes
    networks = [network()] if networks is None else networks
    addresses = {int(ipaddress.IPv4Address(n.address)) for n in nodes}
    addresses |= {int(ipaddress.IPv4Address(a)) for a in taken}
    return BootIndex({n.mac: n for n in nodes}, tuple(networks), frozenset(addresses))


def request(
    kind: int,
    mac: str = KNOWN_MAC,
    options: tuple[tuple[int, bytes], ...] = (),
    xid: int = 0x1234,
    **fields: Any,
) -> Message:
    """A BOOTREQUEST of DHCP message type ``kind`` from ``mac``."""
    return Message(
        op=codec.BOOTREQUEST,
        xid=xid,
        chaddr=bytes.fromhex(mac.replace(":", "")),
        options=((codec.MESSAGE_TYPE, bytes([kind])),) + options,
        **fields,
    )


def inbound(message: Message, link: Link = LINK) -> Inbound:
    return Inbound(message, link)


def random_mac(number: int) -> str:
    """A locally administered MAC made from ``number`` (a flood's machines)."""
    return "06:" + ":".join(f"{number >> shift & 0xFF:02x}" for shift in (32, 24, 16, 8, 0))


def check_pools(policy: Any, now: float | None = None) -> None:
    """Raise AssertionError unless every pool's bitmaps say of each address
    what the policy's records say (reserved, device, held, leased, ended,
    never leased) at ``now`` (default: the last packet's time, up to which
    the policy has applied lease and offer ends), and the held offers agree
    among themselves."""
    from luna2d.protocols.dhcp.policy import ip_str

    if now is None:
        now = policy.applied

    for mac, offer in policy.offers.items():
        assert offer.mac == mac and policy.held.get(offer.address) == mac, (mac, offer)
    assert len(policy.held) == len(policy.offers), (policy.held, policy.offers)
    for pool in policy.pools.values():
        for mac, offer in pool.offers.items():
            assert policy.offers.get(mac) is offer, (mac, offer)
        for value in range(pool.low, pool.high + 1):
            lease = policy.leases.get(ip_str(value))
            if value in pool.reserved or value in pool.devices or value in policy.held:
                expected = "used"
            elif lease is None:
                expected = "fresh"
            elif lease.expires > now:
                expected = "used"
            else:
                expected = "reusable"
            actual = (
                "fresh" if value in pool.fresh else "reusable" if value in pool.reusable else "used"
            )
            assert not (value in pool.fresh and value in pool.reusable), value
            assert actual == expected, (ip_str(value), actual, expected)
