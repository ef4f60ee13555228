"""Work too large for one reactor callback, moved off the reactor with the
same answers (issue 9, point 10):

- a heavy write is planned through the write queue's offload (a thread in
  the daemon) while the queue stays busy, so the writes after it wait,
  see its result and are answered after it; its failures and a cancel
  while it is planned are handled as for a commit;
- the store decides which writes are heavy (a write naming a kind with
  members), plans them in a real thread on the daemon's pool with the
  collector paused, and moves a large write's new image out of later
  garbage collections;
- a large boot index rebuild runs through the indexer's offload over a
  snapshot of the State: until it lands DHCP reads the previous index (or
  an empty one, never a half-built one), writes committed meanwhile follow
  it, and a failed build is logged and tried again."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial import unittest

from luna2d import collector
from luna2d.errors import Invalid
from luna2d.store import objects
from luna2d.store.bootindex import EMPTY, BootIndexer, build, snapshot
from luna2d.store.state import State, Tx, ip_key
from luna2d.store.store import Plan, WriteQueue
from tests.support import API, ReactorCase, open_store, result_of, the_reactor

MAC1 = "02:00:00:00:05:01"
MAC2 = "02:00:00:00:05:02"


class InlinePool:
    """Runs a write's interaction at once (a unit test of the queue alone)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def runInteraction(self, interaction: Callable[[Any], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(interaction, None)


class HeldOffload:
    """An offload whose work runs only when the test says so."""

    def __init__(self) -> None:
        self.held: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        done: defer.Deferred[Any] = defer.Deferred()
        self.held.append((fn, args, done))
        return done

    def run(self) -> None:
        fn, args, done = self.held.pop(0)
        try:
            outcome = fn(*args)
        except Exception:  # noqa: BLE001 - handed on as the thread would
            done.errback(Failure())  # type: ignore[no-untyped-call]
        else:
            done.callback(outcome)


class QueueOffloadTests(unittest.TestCase):
    def setUp(self) -> None:
        self.offload = HeldOffload()
        self.pool = InlinePool()
        self.queue = WriteQueue(lambda: self.pool, the_clock(), offload=self.offload)
        self.log: list[str] = []

    def plan(self, name: str, fail: bool = False) -> Callable[[], Plan]:
        def planned() -> Plan:
            self.log.append(f"plan {name}")
            if fail:
                raise Invalid(f"{name} refused")
            return Plan(
                name,
                lambda _: self.log.append(f"commit {name}"),
                lambda _: self.log.append(f"apply {name}") or name,
            )

        return planned

    def test_heavy_write_keeps_its_turn(self) -> None:
        """A light write asked for while a heavy one is planned elsewhere is
        not started before the heavy one is committed and applied, and
        the answers come in the order asked."""
        answers: list[str] = []
        self.queue.submit(self.plan("heavy"), heavy=True).addCallback(answers.append)
        self.queue.submit(self.plan("light")).addCallback(answers.append)
        self.assertEqual(self.log, [])  # planned nowhere yet: the offload holds it
        self.assertFalse(self.queue.idle)
        self.assertEqual(len(self.queue), 1)
        self.offload.run()
        self.assertEqual(
            self.log,
            [
                "plan heavy",
                "commit heavy",
                "apply heavy",
                "plan light",
                "commit light",
                "apply light",
            ],
        )
        self.assertEqual(answers, ["heavy", "light"])
        self.assertTrue(self.queue.idle)

    def test_light_writes_stay_on_the_caller(self) -> None:
        """Without ``heavy`` a write is planned at once, as before."""
        self.assertEqual(result_of(self.queue.submit(self.plan("light"))), "light")
        self.assertEqual(self.offload.held, [])

    def test_heavy_failure(self) -> None:
        """A heavy write whose function raises is answered with its error,
        stores nothing, and the next write goes on."""
        failed = self.queue.submit(self.plan("bad", fail=True), heavy=True)
        after = self.queue.submit(self.plan("after"))
        self.offload.run()
        self.assertEqual(self.failureResultOf(failed, Invalid).value.message, "bad refused")
        self.assertEqual(result_of(after), "after")
        self.assertNotIn("commit bad", self.log)

    def test_cancel_while_planned(self) -> None:
        """A heavy write cancelled while it is planned is still committed
        and applied (as one cancelled while it commits); the caller gets
        the cancellation."""
        cancelled = self.queue.submit(self.plan("heavy"), heavy=True)
        cancelled.cancel()
        self.failureResultOf(cancelled, defer.CancelledError)
        self.offload.run()
        self.assertEqual(self.log, ["plan heavy", "commit heavy", "apply heavy"])
        self.assertTrue(self.queue.idle)


def the_clock() -> Any:
    from twisted.internet.task import Clock

    return Clock()


class StoreThreadTests(ReactorCase):
    """The store on the daemon's threaded pool, on the real reactor."""

    timeout = 60

    async def open(self) -> Any:
        from luna2d.store import db

        folder = Path(self.mktemp()).absolute()
        folder.mkdir(parents=True)
        store, cfg = open_store(folder, clock=the_reactor())
        store.pool.close()
        store.pool = db.open_pool(cfg.database.database)
        self.addCleanup(lambda: store.pool.close())
        return store

    async def test_heavy_writes_run_in_a_thread(self) -> None:
        """A write naming a kind with members (network, group) runs its
        function in a thread with the collector paused; one naming a node
        runs on the reactor's thread; both commit the same way."""
        store = await self.open()
        seen: list[tuple[str, int, bool]] = []

        def where(tx: Tx, kind: str, name: str, body: dict[str, Any]) -> bool:
            seen.append((kind, threading.get_ident(), gc.isenabled()))
            return objects.upsert(tx, kind, name, body)

        enabled = gc.isenabled()
        await store.write(where, "network", "cluster", {"comment": "renumber me later"})
        await store.write(where, "group", "compute", {"comment": "many nodes"})
        await store.write(where, "node", "node001", {"comment": "one node"})
        reactor_thread = threading.get_ident()
        self.assertEqual([kind for kind, _, _ in seen], ["network", "group", "node"])
        self.assertNotEqual(seen[0][1], reactor_thread)
        self.assertNotEqual(seen[1][1], reactor_thread)
        self.assertEqual(seen[2][1], reactor_thread)
        self.assertEqual([paused for _, _, paused in seen[:2]], [False, False])
        self.assertEqual(gc.isenabled(), enabled)
        self.assertEqual(collector.paused(), 0)
        self.assertEqual(store.show("network", "cluster")["comment"], "renumber me later")
        self.assertEqual(store.show("node", "node001")["comment"], "one node")

    async def test_heavy_refusal_in_a_thread(self) -> None:
        """A heavy write refused in its thread is answered with the same
        error as on the reactor, and changes nothing."""
        store = await self.open()
        body = {
            "network": "10.141.0.0/30",
            "gateway": "10.141.0.1",
            "nameserver_ip": "10.141.0.1",
            "dhcp_range_begin": None,
            "dhcp_range_end": None,
        }
        messages = []
        for heavy in (False, True):
            with self.assertRaises(Invalid) as refused:
                await store.write(objects.upsert, "network", "cluster", body, heavy=heavy)
            messages.append(refused.exception.message)
        self.assertEqual(messages[0], messages[1])
        self.assertIn("10.141.0.0/30 cannot hold", messages[1])
        self.assertEqual(store.show("network", "cluster")["network"], "10.141.0.0/16")
        self.assertEqual(collector.paused(), 0)


class KeepTests(unittest.TestCase):
    def test_large_write_is_kept_out_of_collections(self) -> None:
        """After a write of at least KEEP_AFTER objects is applied, what
        memory holds is frozen out of the collector's passes; a small
        write leaves the collector as it was."""
        self.addCleanup(gc.unfreeze)
        store, _ = open_store()
        self.addCleanup(store.pool.close)
        gc.unfreeze()
        result_of(store.write(objects.upsert, "node", "node001", {"comment": "small"}))
        self.assertEqual(gc.get_freeze_count(), 0)

        def many(tx: Tx) -> None:
            group = tx.get("group", "compute")
            assert group is not None
            for number in range(1000):
                tx.create("node", f"k{number:04d}").data["group"] = group.id

        result_of(store.write(many))
        self.assertGreater(gc.get_freeze_count(), 1000)


class ThreadedIndexTests(unittest.TestCase):
    """The indexer with every whole rebuild offloaded (``sync_limit=1``: the
    sample cluster has more nodes; a write to one node is still small)
    through an offload the test runs by hand."""

    def setUp(self) -> None:
        self.api = API()
        self.store = self.api.store
        self.offload = HeldOffload()
        self.indexer = BootIndexer(self.store, sync_limit=1, offload=self.offload)

    def post(self, path: str, body: dict[str, Any]) -> None:
        code, answer = self.api.post(path, body)
        self.assertIn(code, (201, 204), answer)

    def fresh(self) -> Any:
        return build(self.store.state)[0]

    def test_first_build_silent_until_landed(self) -> None:
        """Before its first build lands the index is empty (no network: DHCP
        answers nothing); then it is the whole index."""
        self.assertIs(self.indexer.current(), EMPTY)
        self.assertIsNone(self.indexer.current().network_for("10.141.0.1"))
        self.assertEqual(len(self.offload.held), 1)  # asked again: still one build
        self.assertTrue(self.indexer.building)
        settled = self.indexer.settled()
        self.assertNoResult(settled)
        self.offload.run()
        self.successResultOf(settled)
        self.assertFalse(self.indexer.building)
        current = self.indexer.current()
        self.assertEqual(current.networks, self.fresh().networks)
        self.assertEqual(current.addresses, self.fresh().addresses)
        self.assertEqual(self.indexer.rebuilds, 1)

    def test_prime_builds_at_once(self) -> None:
        """At start-up, before the reactor runs, the whole index is built
        in the call, whatever its size."""
        self.assertEqual(self.indexer.prime().networks, self.fresh().networks)
        self.assertEqual(self.offload.held, [])
        self.assertFalse(self.indexer.building)

    def test_previous_index_until_landed(self) -> None:
        """A network change starts its rebuild at the commit; until it lands
        the previous index is answered whole, then the new one."""
        self.post(
            "/config/node/node001",
            {
                "config": {
                    "node": {
                        "node001": {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]}
                    }
                }
            },
        )
        self.indexer.current()
        self.offload.run()
        before = self.indexer.current()
        self.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"gateway": "10.141.255.1"}}}},
        )
        self.assertEqual(len(self.offload.held), 1)  # started by the commit, not by a reader
        self.assertIs(self.indexer.current(), before)
        self.offload.run()
        entry = self.indexer.current().node(MAC1)
        assert entry is not None
        self.assertEqual(entry.gateway, "10.141.255.1")
        self.assertEqual(self.indexer.current().nodes, self.fresh().nodes)

    def test_writes_during_a_build_follow_it(self) -> None:
        """Writes committed while a build runs are not in its snapshot: a
        node write is applied on top of the landed index, a second network
        write starts one more build; the end equals a fresh build."""
        self.indexer.current()
        self.offload.run()
        self.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"gateway": "10.141.255.1"}}}},
        )
        self.post(
            "/config/node/node002",
            {
                "config": {
                    "node": {
                        "node002": {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC2}]}
                    }
                }
            },
        )
        self.assertIsNone(self.indexer.current().node(MAC2))  # the build holds the old view
        self.offload.run()
        self.assertEqual(self.offload.held, [])
        entry = self.indexer.current().node(MAC2)
        assert entry is not None
        self.assertEqual(entry.gateway, "10.141.255.1")
        self.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"gateway": "10.141.255.2"}}}},
        )
        self.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"gateway": "10.141.255.3"}}}},
        )
        self.assertEqual(len(self.offload.held), 1)  # one at a time
        self.offload.run()
        self.assertEqual(len(self.offload.held), 1)  # the second change, after it
        self.offload.run()
        self.assertEqual(self.indexer.current().nodes, self.fresh().nodes)
        last = self.indexer.current().node(MAC2)
        assert last is not None
        self.assertEqual(last.gateway, "10.141.255.3")

    def test_failed_build_is_logged_and_tried_again(self) -> None:
        """A build that fails in its thread is logged; the index it had is
        kept and the next reader starts another build."""
        self.indexer.current()
        self.offload.run()
        before = self.indexer.current()
        self.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"gateway": "10.141.255.1"}}}},
        )
        _, _, done = self.offload.held.pop(0)
        done.errback(Failure(RuntimeError("no memory for the index")))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIs(self.indexer.current(), before)
        self.assertEqual(len(self.offload.held), 1)
        self.offload.run()
        self.assertEqual(self.indexer.current().networks, self.fresh().networks)

    def test_snapshot_is_not_moved_by_later_writes(self) -> None:
        """A snapshot keeps the objects and addresses it was taken with
        while later writes are applied to the live State."""
        state: State = self.store.state
        taken = snapshot(state)
        live = state.get("node", "node001")
        assert live is not None
        old = ip_key(live.iface("BOOTIF").ip)  # type: ignore[union-attr, arg-type]
        self.post(
            "/config/node/node001",
            {
                "config": {
                    "node": {
                        "node001": {
                            "interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.9.9"}]
                        }
                    }
                }
            },
        )
        self.assertIsNot(state.get("node", "node001"), live)
        self.assertIs(taken.get("node", "node001"), live)
        self.assertIn(old, build(taken)[0].addresses)
        self.assertNotIn(ip_key("10.141.9.9"), build(taken)[0].addresses)
        self.assertIn(ip_key("10.141.9.9"), build(state)[0].addresses)
        self.assertNotIn(old, build(state)[0].addresses)
