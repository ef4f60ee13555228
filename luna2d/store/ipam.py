# -*- test-case-name: tests.test_objects,tests.test_ipam -*-
"""Address management: which addresses a network holds, which are taken,
the next free one, and moving interfaces when a network is renumbered.

Works on any reader with ``obj``, ``get``, ``all`` and an ``ips`` mapping
(the live State or a write's Tx). Which kinds hold addresses is read from
the kind table (``Kind.holds_addresses``, ``Kind.interfaces``)."""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

from luna2d.errors import Invalid
from luna2d.model.fields import parse_ip
from luna2d.model.kinds import KINDS, NETWORK, kinds_where
from luna2d.store.state import Obj, ip_key

SCAN_LIMIT = 1 << 20  # never walk more host addresses than this
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=4096)
def parse_network(cidr: str) -> Network:
    """A stored CIDR as a network object (parsed once per text)."""
    return ipaddress.ip_network(cidr)


def net_of(network: Obj) -> Network:
    return parse_network(network.data["network"])


def address(value: int, net: Network) -> Address:
    """The address ``value`` in the family of ``net``."""
    if net.version == 6:
        return ipaddress.IPv6Address(value)
    return ipaddress.IPv4Address(value)


def text(value: int, version: int) -> str:
    """The canonical text of address ``value`` of IP ``version``."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return str(ipaddress.IPv6Address(value))


def value(ip: str) -> int:
    """The integer of a stored (canonical) address."""
    key = ip_key(ip)
    return key & ((1 << 128) - 1)


def fits(ip: str, network: Obj) -> bool:
    """Whether ``ip`` lies inside ``network`` (of the same family)."""
    return ipaddress.ip_address(ip) in net_of(network)


def _int(ip: str | None) -> int | None:
    return int(ipaddress.ip_address(ip)) if ip else None


def reserved(network: Obj) -> set[int]:
    """Addresses no device may take: network, broadcast, gateway, nameserver."""
    net = net_of(network)
    out = {int(net.network_address), int(net.broadcast_address)}
    for key in ("gateway", "nameserver_ip"):
        value = network.data.get(key)
        if value and ipaddress.ip_address(value) in net:
            out.add(int(ipaddress.ip_address(value)))
    return out


def dhcp_range(network: Obj) -> tuple[int, int] | None:
    begin = _int(network.data.get("dhcp_range_begin"))
    end = _int(network.data.get("dhcp_range_end"))
    if begin is None or end is None:
        return None
    return begin, end


def holder_name(reader: Any, holder: tuple[int, str] | None) -> str:
    """Who holds an address or MAC, for messages: ``node n (interface i)``
    for kinds with named interfaces, ``kind name`` for the others."""
    if holder is None:
        return "nobody"
    obj = reader.obj(holder[0])
    if obj is None:
        return "an unknown device"
    if KINDS[obj.kind].named_interfaces:
        return f"{obj.kind} {obj.name} (interface {holder[1]})"
    return f"{obj.kind} {obj.name}"


def network_holding(reader: Any, ip: str, label: str) -> Obj:
    """The most specific configured network holding ``ip`` (the oldest
    among equals), or Invalid naming ``label``."""
    addr = parse_ip(ip, label)
    holding = [n for n in reader.all(NETWORK.name) if addr in net_of(n)]
    if holding:
        found: Obj = min(holding, key=lambda n: (-net_of(n).prefixlen, n.id))
        return found
    raise Invalid(f"{label}: no configured network holds {addr}")


def next_free(reader: Any, network: Obj) -> str | None:
    """The lowest host address that is neither reserved, in the DHCP range,
    nor held by any device; None when the network is full."""
    net = net_of(network)
    skip = reserved(network)
    span = dhcp_range(network)
    first = int(net.network_address) + 1
    last = min(int(net.broadcast_address) - 1, first + SCAN_LIMIT)
    ips = reader.ips
    v6 = net.version == 6
    candidate = first
    while candidate <= last:
        if span is not None and span[0] <= candidate <= span[1]:
            candidate = span[1] + 1
            continue
        if candidate not in skip:
            key = (1 << 128) | candidate if v6 else candidate
            if ips.get(key) is None:
                return str(address(candidate, net))
        candidate += 1
    return None


def check_address(
    reader: Any,
    network: Obj,
    ip: str,
    holder: tuple[int, str],
    label: str,
    force: bool = False,
    infra: bool = False,
) -> str:
    """Check that ``ip`` may be given to ``holder`` on ``network``; returns
    the canonical form or raises Invalid naming the problem. ``force``
    allows the DHCP range; ``infra`` (controllers) the gateway and
    nameserver addresses."""
    addr = parse_ip(ip, label)
    net = net_of(network)
    if addr not in net:
        raise Invalid(f"{label}: {addr} is not inside network {network.name} ({net})")
    value = int(addr)
    if value in (int(net.network_address), int(net.broadcast_address)):
        raise Invalid(f"{label}: {addr} is the network or broadcast address of {network.name}")
    for key in ("gateway", "nameserver_ip"):
        if network.data.get(key) == str(addr) and not infra:
            raise Invalid(f"{label}: {addr} is the {key} of network {network.name}")
    span = dhcp_range(network)
    if span and span[0] <= value <= span[1] and not force:
        raise Invalid(f"{label}: {addr} lies in the DHCP range of network {network.name}")
    taken = reader.ips.get(ip_key(str(addr)))
    if taken is not None and taken != holder:
        raise Invalid(f"{label}: {addr} is already taken by {holder_name(reader, taken)}")
    return str(addr)


def taken(reader: Any, network: Obj) -> list[dict[str, str]]:
    """Every address inside ``network`` held by a device, sorted."""
    out = []
    for kind in kinds_where(lambda k: k.holds_addresses):
        for obj in reader.all(kind.name):
            for item in obj.ifaces:
                if item.network == network.id and item.ip:
                    addr = ipaddress.ip_address(item.ip)
                    out.append(((addr.version, int(addr)), str(addr), obj.name))
    out.sort()
    return [{"ipaddress": ip, "device": name} for _, ip, name in out]


def holders_on(reader: Any, network_id: int) -> list[tuple[Obj, str]]:
    """(object, interface name) of every interface on a network, address
    holders and interface templates alike."""
    out = []
    for kind in kinds_where(lambda k: k.interfaces is not None):
        for obj in reader.all(kind.name):
            for item in obj.ifaces:
                if item.network == network_id:
                    out.append((obj, item.name))
    return out


def translate(ip: str | None, old: Network, new: Network) -> str | None:
    """Map ``ip`` from network ``old`` to the same host offset in ``new``;
    None when it does not fit."""
    if ip is None:
        return None
    addr = ipaddress.ip_address(ip)
    if addr in new:
        return ip
    if addr not in old:
        return None
    offset = int(addr) - int(old.network_address)
    candidate = int(new.network_address) + offset
    if candidate >= int(new.broadcast_address) or offset == 0:
        return None
    return str(address(candidate, new))
