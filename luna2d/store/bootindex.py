# -*- test-case-name: tests.dhcp.test_bootindex,tests.test_kinds_table,tests.test_heavy_writes -*-
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
set. In a cluster of more than ``SYNC_LIMIT`` nodes a whole rebuild runs
in a thread over a ``snapshot`` of the State instead, started at the
commit that needs it, and the previous index is answered until it lands
(``BootIndexer``). The entry types are defined in ``luna2d.model.boot``,
which the DHCP server reads too."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from luna2d import collector
from luna2d.model.boot import BootIndex, BootNetwork, BootNode
from luna2d.model.kinds import CLUSTER, KINDS, NETWORK, kinds_where
from luna2d.store import ipam
from luna2d.store.state import Obj, State, Tx, is_quad
from luna2d.store.views import resolve

log = Logger()

# What DHCP reads before a first index is built: no network, so no answer.
EMPTY = BootIndex({}, (), frozenset(), 0)


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
        out.append(
            BootNode(
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
            )
        )
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


def snapshot(state: State) -> State:
    """A State of its own over the same objects, for a build in a thread.

    The objects themselves are never changed once in the State (a write
    edits copies and swaps them in after its commit), so copying the
    dictionaries that hold them is enough: about a millisecond for 10,000
    nodes, where the build takes a hundred."""
    copy = State()
    copy.by_kind = {kind: dict(objs) for kind, objs in state.by_kind.items()}
    copy.by_id = dict(state.by_id)
    copy.ips = dict(state.ips)
    copy.macs = dict(state.macs)
    copy.next_id, copy.generation = state.next_id, state.generation
    return copy


# Objects with node entries up to which a whole rebuild runs on the reactor
# at once (about 10 us each: 20 ms); above it, in a thread.
SYNC_LIMIT = 2000

Built = tuple[BootIndex, dict[int, BootNetwork], dict[int, list[str]]]


def _in_thread(fn: Callable[[State, int], Built], state: State, generation: int) -> Any:
    """Build in a thread, the garbage collector paused meanwhile (a pass
    in the thread would hold the GIL, and so the reactor, for its whole
    length)."""
    from twisted.internet import threads

    collector.pause()

    def resumed(outcome: Any) -> Any:
        collector.resume()
        return outcome

    return threads.deferToThread(fn, state, generation).addBoth(resumed)


class BootIndexer:
    """Keeps a BootIndex in step with a store's committed writes.

    Small changes are applied when the index is next asked for, on the
    reactor. A whole rebuild over more than ``sync_limit`` objects with
    entries (a network or group changed in a cluster of 10,000 nodes: a
    hundred milliseconds) is made in a thread (``offload``) over a
    ``snapshot`` of the State, started as soon as the write that needs it
    is committed; until it lands, ``current`` answers the index it had
    (the one as of the writes before), and an index that was never built
    is empty, so DHCP stays silent rather than answer from nothing."""

    def __init__(
        self,
        store: Any,
        sync_limit: int = SYNC_LIMIT,
        offload: Callable[[Callable[[State, int], Built], State, int], Any] = _in_thread,
    ) -> None:
        self._store = store
        self._index: BootIndex | None = None
        self._networks: dict[int, BootNetwork] = {}
        self._macs: dict[int, list[str]] = {}
        self._full = True
        self._nodes: set[int] = set()
        self._taken = False
        self._building: Any = None  # the Deferred of a build in a thread
        self._waiting: list[Deferred[None]] = []
        self._sync_limit = sync_limit
        self._offload = offload
        self.generation = 0
        self.rebuilds = 0
        store.listeners.append(self.committed)

    @property
    def building(self) -> bool:
        """Whether a rebuild runs in a thread (``current`` is behind)."""
        return self._building is not None

    def prime(self) -> BootIndex:
        """Build the whole index now, whatever its size: for start-up,
        before the reactor runs, so that the first packets are answered."""
        if self._building is None:
            state: State = self._store.state
            self._index, self._networks, self._macs = build(state, self.generation)
            self._full, self._nodes, self._taken = False, set(), False
            self.rebuilds += 1
        return self.current()

    def settled(self) -> Deferred[None]:
        """Fires once no rebuild runs in a thread (at once if none does)."""
        waiter: Deferred[None] = Deferred()
        if self._building is None:
            waiter.callback(None)
        else:
            self._waiting.append(waiter)
        return waiter

    def committed(self, tx: Tx) -> None:
        """Store listener: note what a committed write changed."""
        self.generation += 1
        for objects in (tx.changed, tx.deleted):
            for obj in objects.values():
                kind = KINDS.get(obj.kind)
                if kind is None:
                    continue
                if kind.boot == "global":
                    self._full = True
                elif kind.boot == "entries":
                    self._nodes.add(obj.id)
                if kind.holds_addresses:
                    self._taken = True
        if self._index is not None and self._needs_thread(self._store.state):
            self._start_build(self._store.state)

    def _entry_objects(self, state: State) -> int:
        return sum(len(state.by_kind[k.name]) for k in kinds_where(lambda k: k.boot == "entries"))

    def _needs_thread(self, state: State) -> bool:
        """Whether what is pending is a rebuild too large for the reactor."""
        whole = self._index is None or self._full or len(self._nodes) > self._sync_limit
        return whole and self._entry_objects(state) > self._sync_limit

    def _start_build(self, state: State) -> None:
        if self._building is not None:
            return  # the flags stay set: another build follows this one
        self._full, self._nodes, self._taken = False, set(), False
        building = self._offload(build, snapshot(state), self.generation)
        self._building = building
        building.addCallbacks(self._landed, self._failed)

    def _landed(self, built: Built) -> None:
        self._building = None
        self._index, self._networks, self._macs = built
        self.rebuilds += 1
        collector.keep()  # a large index lives until the next rebuild: no pass walks it
        if self._needs_thread(self._store.state):
            self._start_build(self._store.state)  # writes that came meanwhile
        else:
            self._wake()

    def _failed(self, failure: Any) -> None:
        self._building = None
        self._full = True  # tried again at the next current()
        log.failure("the boot index could not be rebuilt", failure)
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def current(self) -> BootIndex:
        """The index as of the last committed write, or, while a rebuild
        runs in a thread, as of the writes before it."""
        state: State = self._store.state
        if self._building is None and self._needs_thread(state):
            self._start_build(state)
        if self._building is not None:
            return self._index if self._index is not None else EMPTY
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
