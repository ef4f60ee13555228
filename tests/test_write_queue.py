"""The store's write queue (luna2d.store.store.WriteQueue) on a real SQLite
file through the daemon's real adbapi pool: bursts of writes that fail or
do nothing cannot wedge it (issue 8, finding 1), answers cannot nest, a
cancelled write never leaves memory behind the disk, listeners that fail
are logged and the rest still hear, and the one error discipline of the
store (a Deferred-returning method never raises when called)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from twisted.internet import defer, task
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.errors import Invalid, NotFound
from luna2d.store import bootstrap, db, objects
from luna2d.store.crypto import Crypto
from luna2d.store.state import Tx
from luna2d.store.store import Store
from tests.support import ReactorCase, make_config, the_reactor
from tests.test_store import dump, snapshot

BURST = 10_000


def nothing(tx: Tx) -> str:
    """A write that reads and stores nothing."""
    return "nothing"


def refused(tx: Tx, number: int) -> None:
    """A write that validation refuses part-way, after touching the Tx."""
    objects.upsert(tx, "node", "node001", {"comment": f"never {number}", "bogus": number})


class QueueCase(ReactorCase):
    """A seeded store on a real file and the daemon's threaded adbapi pool."""

    def setUp(self) -> None:
        super().setUp()
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)
        self.key = Fernet.generate_key()
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    async def open(self) -> Store:
        pool = db.open_pool(self.folder / "luna.db")
        self.addCleanup(pool.close)
        store = Store(pool, Crypto(self.key), self.clock)
        await store.open()
        if store.empty:
            await store.write(bootstrap.seed, make_config(self.folder))
        # Resumed from the queue's loop, a new write would only queue: leave it.
        await task.deferLater(the_reactor(), 0, lambda: None)
        return store


class BurstTests(QueueCase):
    timeout = 60  # a wedged queue never answers: fail within a minute, not trial's two
    async def test_ten_thousand_failing_writes_do_not_wedge(self) -> None:
        """While one write commits in the database thread, 10,000 writes queue
        behind it: validation errors and writes that store nothing,
        interleaved. Each gets its own answer (Invalid, or its result), the
        good writes around them commit, and a reopened store shows them.
        With the former DeferredLock this burst hit the recursion limit and
        every later write hung for good."""
        store = await self.open()
        first = store.write(objects.upsert, "node", "node001", {"comment": "before"})
        burst = []
        for number in range(BURST):
            if number % 2:
                burst.append(store.write(refused, number))
            else:
                burst.append(store.write(nothing))
        last = store.write(objects.upsert, "node", "node002", {"comment": "after"})
        self.assertEqual(len(store.queue), BURST + 1)  # the first commits in the pool's thread
        outcomes = await defer.DeferredList(burst, consumeErrors=True)
        for number, (ok, value) in enumerate(outcomes):
            if number % 2:
                self.assertFalse(ok, number)
                value.trap(Invalid)
                self.assertIn("bogus", value.value.message)
            else:
                self.assertEqual((ok, value), (True, "nothing"), number)
        self.assertFalse(await first)  # updated, not created
        self.assertFalse(await last)  # node002 existed: updated, not created
        self.assertTrue(store.queue.idle)
        self.assertEqual(store.show("node", "node001")["comment"], "before")
        self.assertEqual(store.show("node", "node002")["comment"], "after")
        self.assertEqual(snapshot(await self.open()), snapshot(store))
        # And the queue still takes writes afterwards.
        await store.write(objects.upsert, "node", "node003", {"comment": "later"})
        self.assertEqual((await self.open()).show("node", "node003")["comment"], "later")

    async def test_answers_do_not_nest(self) -> None:
        """A chain of 5,000 writes, each asked for by the previous one's
        answer, runs at a constant stack depth: an answer's callbacks only
        queue the next write, they never run it inside themselves."""
        store = await self.open()
        depths: list[int] = []
        finished: defer.Deferred[None] = defer.Deferred()

        def probe(tx: Tx, left: int) -> int:
            depth, frame = 0, sys._getframe()
            while frame is not None:
                depth, frame = depth + 1, frame.f_back
            depths.append(depth)
            return left

        def next_one(left: int) -> None:
            if left == 0:
                finished.callback(None)
                return
            store.write(probe, left - 1).addCallback(next_one).addErrback(finished.errback)

        # Behind a real commit, so that the chain starts from the queue's loop.
        store.write(objects.upsert, "node", "node001", {"comment": "x"})
        store.write(probe, 5000).addCallback(next_one).addErrback(finished.errback)
        await finished
        self.assertEqual(len(depths), 5001)
        self.assertLessEqual(max(depths) - min(depths), 10, (min(depths), max(depths)))

    async def test_cancelled_writes(self) -> None:
        """A write cancelled while queued is never run; one cancelled while
        its transaction commits is still applied to memory, so memory and
        disk agree (before, a cancelled commit was on disk but not shown)."""
        store = await self.open()
        committing = store.write(objects.upsert, "node", "node001", {"comment": "committed"})
        queued = store.write(objects.upsert, "node", "node002", {"comment": "dropped"})
        after = store.write(objects.upsert, "node", "node003", {"comment": "after"})
        committing.cancel()
        queued.cancel()
        for d in (committing, queued):
            await self.assertFailure(d, defer.CancelledError)
        await after
        self.assertEqual(store.show("node", "node001")["comment"], "committed")
        self.assertEqual(store.show("node", "node002")["comment"], None)
        self.assertEqual(snapshot(await self.open()), snapshot(store))


class ListenerTests(unittest.TestCase):
    def test_failing_listener_is_logged_and_others_run(self) -> None:
        """A listener that raises after a commit is logged with its failure;
        the listeners after it still hear of the write, and the write is
        still acknowledged with its result."""
        from tests.support import open_store, result_of

        store, _ = open_store()
        self.addCleanup(store.pool.close)
        heard: list[str] = []

        def broken(tx: Tx) -> None:
            raise ValueError("listener bug")

        store.listeners[:] = [lambda tx: heard.append("first"), broken, lambda tx: heard.append("last")]
        writes = store.writes
        self.assertFalse(result_of(store.write(objects.upsert, "node", "node001", {"comment": "kept"})))
        self.assertEqual(heard, ["first", "last"])
        logged = self.flushLoggedErrors(ValueError)
        self.assertEqual([str(f.value) for f in logged], ["listener bug"])
        self.assertEqual(store.show("node", "node001")["comment"], "kept")
        self.assertEqual(store.writes, writes + 1)


class DisciplineTests(unittest.TestCase):
    """Memory reads raise; database and queue methods fail through their
    Deferred and never raise when called."""

    def setUp(self) -> None:
        from tests.support import open_store

        self.store, self.cfg = open_store()
        self.addCleanup(self.store.pool.close)

    def test_reads_raise(self) -> None:
        """A read from memory raises the LunaError itself."""
        self.assertRaises(NotFound, self.store.show, "node", "nosuchnode")
        self.assertRaises(NotFound, self.store.nextfreeip, "nosuchnet")

    def test_writes_fail_through_the_deferred(self) -> None:
        """A write whose function raises, a malformed journal, an unknown
        controller's journal and an invalid user each return a Deferred (or
        coroutine) that fails with the error; nothing raises at the call."""

        def boom(tx: Tx) -> None:
            raise Invalid("no")

        calls: list[Any] = [
            lambda: self.store.write(boom),
            lambda: self.store.write(objects.upsert, "node", "node001", {"bogus": 1}),
            lambda: self.store.add_journal("not a list"),
            lambda: self.store.add_journal([{"function": 1}]),
            lambda: self.store.journal("nosuchcontroller"),
            lambda: defer.ensureDeferred(self.store.put_user("bob", "not an object", "luna")),
        ]
        writes = self.store.writes
        for number, call in enumerate(calls):
            result = call()
            self.assertIsInstance(result, defer.Deferred, number)
            failure = self.failureResultOf(result)
            self.assertTrue(failure.check(Invalid, NotFound), (number, failure))
        # And nothing of it reached the disk.
        self.assertEqual(self.store.writes, writes)
        self.assertEqual(dump(self.cfg.database.database)["journal"], [])
