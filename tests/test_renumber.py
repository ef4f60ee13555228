"""Renumbering a network of 10,000 nodes (issue 9, point 10): every
address moves to the same host offset in the new network, in one write
that is committed and survives a restart, and the reactor's share of the
work is small: the write function runs in tens of milliseconds of CPU (it
took 0.6 s) and the SQL is built lazily, in the database thread, as it is
run. Refusals are unchanged: addresses that do not fit are named, and an
address that lands on one held by another device is refused.

Through the HTTP API on the real reactor (``ReactorStallTests``), the
renumbering and the boot index rebuild after it hold no reactor callback
longer than 50 ms of CPU: the write function runs in a thread, the index is
rebuilt in a thread over a snapshot, and what they leave in memory is kept
out of later garbage collections (docs/DESIGN.md, "Kinds as data")."""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.logger import Logger
from twisted.trial import unittest

from luna2d.errors import Invalid
from luna2d.store import objects
from luna2d.store.state import Iface, Tx, ip_key
from tests.support import (
    CallbackMeter,
    ReactorCase,
    load_store,
    open_store,
    result_of,
    serve_frozen,
    the_reactor,
)

log = Logger()

NODES = 10_000
# The write function's own CPU time for 10,000 nodes, garbage collection
# aside: measured 40-80 ms on a loaded 2-core machine (0.45-0.6 s before);
# the bound leaves room for load. A full collection over a large heap can
# land in any callback and is not the write's doing: in a process holding
# the whole test suite's garbage it added up to 200 ms (docs/DESIGN.md,
# "Kinds as data", renumbering).
CPU_BOUND = 0.15


def addr(base: str, offset: int) -> str:
    a, b, _, _ = (int(p) for p in base.split("."))
    return f"{a}.{b}.{offset >> 8}.{offset & 255}"


def mac(first: int, number: int) -> str:
    return f"{first:02x}:00:00:{number >> 16 & 255:02x}:{number >> 8 & 255:02x}:{number & 255:02x}"


def many_nodes(tx: Tx) -> None:
    """10,000 nodes of the sample group, each with a BOOTIF address on
    the cluster network (10.141.0.0/16) and an ib0 one on ib, both with
    a MAC (so both have boot index entries), made in one write without
    searching for free addresses."""
    group = tx.get("group", "compute")
    cluster, ib = tx.get("network", "cluster"), tx.get("network", "ib")
    assert group is not None and cluster is not None and ib is not None
    for number in range(NODES):
        node = tx.create("node", f"n{number:05d}")
        node.data["group"] = group.id
        offset = 1000 + number
        tx.put_iface(node, Iface("BOOTIF", cluster.id, addr("10.141.0.0", offset), mac(2, number)))
        tx.put_iface(node, Iface("ib0", ib.id, addr("10.149.0.0", offset), mac(4, number)))


class RenumberTests(unittest.TestCase):
    def setUp(self) -> None:
        folder = Path(self.mktemp()).absolute()
        folder.mkdir(parents=True)
        self.store, self.cfg = open_store(folder)
        self.addCleanup(self.store.pool.close)
        result_of(self.store.write(many_nodes))

    def timed_upsert(self, box: list[float]) -> Any:
        def run(tx: Tx, *args: Any) -> Any:
            gc.collect()
            gc.disable()
            start = time.thread_time()
            try:
                return objects.upsert(tx, *args)
            finally:
                box.append(time.thread_time() - start)
                gc.enable()

        return run

    def addresses(self, store: Any, network: str) -> dict[str, str]:
        net = store.state.get("network", network)
        return {
            o.name: i.ip
            for o in store.state.by_kind["node"].values()
            for i in o.ifaces
            if i.network == net.id
        }

    def test_renumber_ten_thousand(self) -> None:
        """10.141.0.0/16 -> 10.142.0.0/16: every node keeps its host offset;
        the other network is untouched; the index of taken addresses holds
        exactly the new ones; a restart loads the same."""
        before = self.addresses(self.store, "cluster")
        ib_before = self.addresses(self.store, "ib")
        self.assertEqual(len(before), NODES + 4)
        spent: list[float] = []
        result_of(
            self.store.write(
                self.timed_upsert(spent), "network", "cluster", {"network": "10.142.0.0/16"}
            )
        )
        after = self.addresses(self.store, "cluster")
        self.assertEqual(
            after, {name: "10.142." + ip.split(".", 2)[2] for name, ip in before.items()}
        )
        self.assertEqual(self.addresses(self.store, "ib"), ib_before)
        for name, ip in after.items():
            holder = self.store.state.ips.get(ip_key(ip))
            self.assertEqual(self.store.state.by_id[holder[0]].name, name)
        for ip in before.values():
            self.assertIsNone(self.store.state.ips.get(ip_key(ip)))
        self.assertLess(spent[0], CPU_BOUND)
        reloaded = load_store(self.cfg)
        self.addCleanup(reloaded.pool.close)
        self.assertEqual(self.addresses(reloaded, "cluster"), after)

    def test_statements_are_lazy(self) -> None:
        """Building a renumbering write's SQL is deferred to whoever runs
        it (the database thread): asking for it does no work at once."""
        tx = Tx(self.store.state)
        objects.upsert(tx, "network", "cluster", {"network": "10.142.0.0/16"})
        gc.collect()
        start = time.thread_time()
        statements = tx.statements(self.store.crypto.encrypt)
        self.assertLess(time.thread_time() - start, 0.005)
        self.assertIsInstance(statements, Iterator)
        rows = list(statements)
        # Only the nodes' interfaces are rewritten: the network's rows alone
        # are object and secret rows.
        self.assertEqual(sum(1 for sql, _ in rows if sql.startswith("INSERT INTO object")), 1)
        self.assertEqual(sum(1 for sql, _ in rows if sql.startswith("DELETE FROM secret")), 1)

    def test_shrink_refused_naming_misfits(self) -> None:
        """A /24 cannot hold the 10,000 addresses: refused, naming five."""
        failure = self.failureResultOf(
            self.store.write(
                objects.upsert,
                "network",
                "cluster",
                {
                    "network": "10.141.0.0/24",
                    "gateway": "10.141.0.254",
                    "nameserver_ip": "10.141.0.254",
                    "dhcp_range_begin": "10.141.0.200",
                    "dhcp_range_end": "10.141.0.253",
                },
            ),
            Invalid,
        )
        self.assertRegex(
            failure.value.message,
            r"^network: 10\.141\.0\.0/24 cannot hold 10\.141\.\d+\.\d+ of \S+, .* and \d+ more$",
        )

    def test_collision_refused(self) -> None:
        """A move onto an address held by a device on another (overlapping)
        network is refused, naming the holder; nothing changes."""
        result_of(
            self.store.write(objects.upsert, "network", "other", {"network": "10.142.3.0/24"})
        )
        result_of(
            self.store.write(
                objects.upsert, "otherdev", "pdu", {"network": "other", "ipaddress": "10.142.3.232"}
            )
        )
        before = self.addresses(self.store, "cluster")
        failure = self.failureResultOf(
            self.store.write(objects.upsert, "network", "cluster", {"network": "10.142.0.0/16"}),
            Invalid,
        )
        self.assertEqual(
            failure.value.message,
            "network (moving n00000): 10.142.3.232 is already taken by otherdev pdu",
        )
        self.assertEqual(self.addresses(self.store, "cluster"), before)

    def test_swap_within_overlap(self) -> None:
        """Moving to an overlapping network where addresses change hands
        (a /16 to the /15 holding it) keeps every address, without a
        false collision."""
        before = self.addresses(self.store, "cluster")
        result_of(
            self.store.write(objects.upsert, "network", "cluster", {"network": "10.140.0.0/15"})
        )
        self.assertEqual(self.addresses(self.store, "cluster"), before)


class ShallowEditTests(unittest.TestCase):
    """``Tx.edit_ifaces`` copies only the interfaces; a later ``edit`` of the
    same object in the same write makes its data and secrets private, so the
    live object never changes before the commit."""

    def test_edit_after_edit_ifaces(self) -> None:
        store, _ = open_store()
        self.addCleanup(store.pool.close)
        live = store.state.get("node", "node001")
        assert live is not None
        tx = Tx(store.state)
        shallow = tx.edit_ifaces(live)
        self.assertIs(shallow.data, live.data)
        self.assertIsNot(shallow.ifaces, live.ifaces)
        mine = tx.edit(live)
        self.assertIs(mine, shallow)
        self.assertIsNot(mine.data, live.data)
        mine.data["comment"] = "changed in the write"
        self.assertNotIn("comment", live.data)
        rows = list(tx.statements(store.crypto.encrypt))
        self.assertTrue(any(sql.startswith("INSERT INTO object") for sql, _ in rows))


class ReactorStallTests(ReactorCase):
    """Issue 9, point 10: a /16 of 10,000 nodes (two interfaces with MACs
    each) renumbered through the HTTP API on a real port, over the daemon's
    threaded pool, and the DHCP boot index rebuilt after it: no callback of
    the real reactor holds it longer than 50 ms of CPU, while the lag probe
    ticks all along."""

    timeout = 300

    async def test_renumber_and_boot_index_under_50ms(self) -> None:
        import treq

        from luna2d.lag import LIMIT_MS, LagProbe
        from luna2d.store import db
        from luna2d.store.bootindex import BootIndexer

        reactor = the_reactor()
        folder = Path(self.mktemp()).absolute()
        folder.mkdir(parents=True)
        store, cfg = open_store(folder, clock=reactor)
        result_of(store.write(many_nodes))
        store.pool.close()
        store.pool = db.open_pool(cfg.database.database)
        self.addCleanup(lambda: store.pool.close())
        base, http, token = serve_frozen(self, reactor, store)
        url = f"{base}/config/network/cluster"

        indexer = BootIndexer(store)
        self.assertEqual(indexer.current().nodes, {})  # built in a thread: silent meanwhile
        await indexer.settled()
        first = indexer.current().node(mac(2, 1000))
        assert first is not None
        self.assertEqual((first.address, first.network), ("10.141.7.208", "cluster"))

        meter = CallbackMeter()
        meter.install(self)
        probe = LagProbe(reactor, interval=0.005)
        meter.on = True
        probe.start()
        body = {"config": {"network": {"cluster": {"network": "10.142.0.0/16"}}}}
        response = await treq.post(
            url,
            json.dumps(body).encode(),
            headers={b"x-access-tokens": [token.encode()]},
            pool=http,
            timeout=120,
        )
        self.assertEqual(response.code, 204, await response.text())
        indexer.current()  # a DHCP packet: answered from the index it has
        await indexer.settled()
        moved = indexer.current().node(mac(2, 1000))
        await task.deferLater(reactor, 0.05, lambda: None)  # the probe's last ticks
        probe.stop()
        meter.on = False

        assert moved is not None
        self.assertEqual((moved.address, moved.network), ("10.142.7.208", "cluster"))
        network = indexer.current().network_for("10.142.0.1")
        assert network is not None
        self.assertEqual(network.cidr, "10.142.0.0/16")
        self.assertEqual(len(indexer.current().nodes), 2 * NODES)
        self.assertEqual(store.show("node", "n01000")["interfaces"][0]["ipaddress"], "10.142.7.208")
        figures = probe.snapshot()
        # What the write and the rebuild left is out of the collector's
        # passes: a full one now walks only what the test made since.
        start = time.thread_time()
        gc.collect()
        collected = time.thread_time() - start
        log.info(
            "renumber of {nodes} nodes: {callbacks} reactor callbacks, the longest "
            "{longest:.1f} ms of CPU ({which}), {total:.1f} ms in all; lag probe: "
            "{ticks} ticks, max {max_ms} ms, p99 {p99_ms} ms; a full collection after: "
            "{collected:.1f} ms; load {load}",
            nodes=NODES,
            callbacks=meter.callbacks,
            longest=meter.longest * 1000,
            which=meter.which,
            total=meter.total * 1000,
            ticks=figures["ticks"],
            max_ms=figures["max_ms"],
            p99_ms=figures["p99_ms"],
            collected=collected * 1000,
            load=os.getloadavg(),
        )
        self.assertLess(meter.longest * 1000, LIMIT_MS, meter.which)
        # Without it, 34-38 ms of CPU that would land in some later callback.
        self.assertLess(collected * 1000, 10)
        # The reactor kept turning: the probe ticked through the write and
        # the rebuild (a stalled reactor runs its timers only at the end).
        self.assertGreater(figures["ticks"], 10)
