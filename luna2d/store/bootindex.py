# -*- test-case-name: tests.dhcp.test_bootindex,tests.test_kinds_table -*-
"""The boot index: what network-boot services read on their hot path, built
from the store's in-memory State as plain frozen dataclasses.

- ``BootNode``: one node interface with a MAC, with the node's effective
  (inherited) boot settings and its network's router, name servers and
  domain.
- ``BootNetwork``: one IPv4 network with its DHCP settings, the addresses no
  dynamic lease may take and the controller's address on it.
- ``BootIndex``: MAC -> BootNode, address -> BootNetwork, and every address
  a device holds.

``BootIndexer`` keeps one BootIndex in step with the store: it listens to
every committed write (``Store.listeners``) and rebuilds lazily, on the next
``current()``, so that an API change takes effect in the next answer and a
burst of API writes costs nothing until someone asks. Which changes matter
is read from the kind table: a write touching only objects of a kind with
``boot="entries"`` (nodes) updates just their entries; a change of a kind
with ``boot="global"`` (group, network, cluster, controller) rebuilds the
whole index; a change of any kind that holds addresses refreshes the taken
set. The entry types are defined in ``luna2d.model.boot``, which the DHCP
server reads too."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from luna2d.model.boot import BootIndex, BootNetwork, BootNode
from luna2d.model.kinds import CLUSTER, KINDS, NETWORK, kinds_where
from luna2d.store import ipam
from luna2d.store.state import Obj, State, Tx, is_quad
from luna2d.store.views import resolve


def _ipv4(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if is_quad(value):
        return value  # already canonical: the form the store keeps
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        return None


def _network_entry(state: State, net: Obj, domain: str | None) -> BootNetwork | None:
    try:
        cidr = ipaddress.ip_network(net.data.get("network") or "", strict=False)
    except ValueError:
        return None
    if not isinstance(cidr, ipaddress.IPv4Network):
        return None
    gateway = _ipv4(net.data.get("gateway"))
    nameserver = _ipv4(net.data.get("nameserver_ip"))
    ntp_value, _ = resolve(state, NETWORK, net, NETWORK.by_name["ntp_server"])
    ntp = tuple(a for a in (_ipv4(part) for part in re.split(r"[\s,]+", ntp_value or "")) if a)
    controller = None
    for kind in kinds_where(lambda k: k.infra):
        for obj in state.all(kind.name):
            for item in obj.ifaces:
                if item.network == net.id and _ipv4(item.ip):
                    controller = item.ip
    span = ipam.dhcp_range(net)
    # What IPAM keeps from every device (network, broadcast, gateway, name
    # server), and the controller's own address.
    reserved = ipam.reserved(net)
    if controller:
        reserved.add(int(ipaddress.IPv4Address(controller)))
    return BootNetwork(
        name=net.name,
        cidr=str(cidr),
        network_address=int(cidr.network_address),
        mask=int(cidr.netmask),
        prefixlen=cidr.prefixlen,
        netmask=str(cidr.netmask),
        broadcast=str(cidr.broadcast_address),
        gateway=gateway,
        nameservers=(nameserver,) if nameserver else (),
        ntp_servers=ntp,
        domain=domain,
        dhcp=bool(net.data.get("dhcp")),
        range_begin=span[0] if span else None,
        range_end=span[1] if span else None,
        reserved=frozenset(reserved),
        controller=controller,
    )


def _node_entries(state: State, node: Obj, networks: dict[int, BootNetwork]) -> list[BootNode]:
    kind = KINDS[node.kind]
    netboot = bool(resolve(state, kind, node, kind.by_name["netboot"])[0])
    bootmenu = bool(resolve(state, kind, node, kind.by_name["bootmenu"])[0])
    domain = resolve(state, kind, node, kind.by_name["domain"])[0]
    out = []
    for item in node.ifaces:
        network = networks.get(item.network) if item.network is not None else None
        address = _ipv4(item.ip)
        if not item.mac or network is None or address is None:
            continue
        out.append(BootNode(
            mac=item.mac,
            name=node.name,
            interface=item.name,
            address=address,
            network=network.name,
            prefixlen=network.prefixlen,
            gateway=network.gateway,
            nameservers=network.nameservers,
            domain=domain or network.domain,
            netboot=netboot,
            bootmenu=bootmenu,
        ))
    return out


def _addresses(state: State) -> frozenset[int]:
    return frozenset(key for key in state.ips if key < (1 << 32))


def build(
    state: State, generation: int = 0
) -> tuple[BootIndex, dict[int, BootNetwork], dict[int, list[str]]]:
    """A whole index from the State, with the network entries by object id
    and each node's MACs (for later partial updates)."""
    cluster = state.singleton(CLUSTER.name)
    domain = (cluster.data.get("domain") if cluster else None) or CLUSTER.by_name["domain"].default
    networks: dict[int, BootNetwork] = {}
    for net in state.all(NETWORK.name):
        entry = _network_entry(state, net, domain)
        if entry is not None:
            networks[net.id] = entry
    nodes: dict[str, BootNode] = {}
    macs: dict[int, list[str]] = {}
    for kind in kinds_where(lambda k: k.boot == "entries"):
        for node in state.all(kind.name):
            for item in _node_entries(state, node, networks):
                nodes[item.mac] = item
                macs.setdefault(node.id, []).append(item.mac)
    index = BootIndex(nodes, tuple(networks.values()), _addresses(state), generation)
    return index, networks, macs


class BootIndexer:
    """Keeps a BootIndex in step with a store's committed writes."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._index: BootIndex | None = None
        self._networks: dict[int, BootNetwork] = {}
        self._macs: dict[int, list[str]] = {}
        self._full = True
        self._nodes: set[int] = set()
        self._taken = False
        self.generation = 0
        self.rebuilds = 0
        store.listeners.append(self.committed)

    def committed(self, tx: Tx) -> None:
        """Store listener: note what a committed write changed."""
        touched = list(tx.changed.values()) + list(tx.deleted.values())
        self.generation += 1
        for obj in touched:
            kind = KINDS.get(obj.kind)
            if kind is None:
                continue
            if kind.boot == "global":
                self._full = True
            elif kind.boot == "entries":
                self._nodes.add(obj.id)
            if kind.holds_addresses:
                self._taken = True

    def current(self) -> BootIndex:
        """The index as of the last committed write."""
        state: State = self._store.state
        if self._index is None or self._full:
            self._index, self._networks, self._macs = build(state, self.generation)
            self._full, self._nodes, self._taken = False, set(), False
            self.rebuilds += 1
            return self._index
        if not self._nodes and not self._taken:
            return self._index
        nodes = dict(self._index.nodes)
        for node_id in self._nodes:
            for mac in self._macs.pop(node_id, ()):
                nodes.pop(mac, None)
        for node_id in self._nodes:
            node = state.by_id.get(node_id)
            if node is None or KINDS[node.kind].boot != "entries":
                continue
            for entry in _node_entries(state, node, self._networks):
                nodes[entry.mac] = entry
                self._macs.setdefault(node_id, []).append(entry.mac)
        addresses = _addresses(state) if self._taken else self._index.addresses
        self._index = BootIndex(nodes, self._index.networks, addresses, self.generation)
        self._nodes, self._taken = set(), False
        return self._index
