"""The store's write queue (luna2d.store.store.WriteQueue) on a real SQLite
file through the daemon's real adbapi pool: bursts of writes that fail or
do nothing cannot wedge it (issue 8, finding 1), answers cannot nest, a
cancelled write never leaves memory behind the disk, listeners that fail
are logged and the rest still hear, and the one error discipline of the
store (a Deferred-returning method never raises when called)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from twisted.internet import defer, task
from twisted.internet.task import Clock
from twisted.python import log
from twisted.trial import unittest

from luna2d.errors import Invalid, NotFound
from luna2d.lag import LagProbe
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

    async def open(self, clock: Any = None) -> Store:
        pool = db.open_pool(self.folder / "luna.db")
        self.addCleanup(pool.close)
        store = Store(pool, Crypto(self.key), clock or self.clock)
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
        every later write hung for good. On the reactor's clock the queue
        works through the burst in turns of at most 10 ms, so the reactor
        keeps running its timers meanwhile (a lag probe ticks all along)."""
        reactor = the_reactor()
        store = await self.open(reactor)
        # As the daemon does once it has loaded: what is loaded stays out of
        # the collector's full passes (here, the whole test process).
        gc.collect()
        gc.freeze()
        self.addCleanup(gc.unfreeze)
        probe = LagProbe(reactor, interval=0.005)
        first = store.write(objects.upsert, "node", "node001", {"comment": "before"})
        burst = []
        for number in range(BURST):
            if number % 2:
                burst.append(store.write(refused, number))
            else:
                burst.append(store.write(nothing))
        last = store.write(objects.upsert, "node", "node002", {"comment": "after"})
        self.assertEqual(len(store.queue), BURST + 1)  # the first commits in the pool's thread
        probe.start()
        started = reactor.seconds()
        outcomes = await defer.DeferredList(burst, consumeErrors=True)
        took_ms = (reactor.seconds() - started) * 1000
        probe.stop()
        lag = probe.snapshot()
        log.msg(
            f"{BURST} failing writes answered in {took_ms:.0f} ms; reactor lag meanwhile: "
            f"{lag['ticks']} ticks, max {lag['max_ms']} ms, p99 {lag['p99_ms']} ms"
        )
        self.assertGreaterEqual(lag["ticks"], 5, (took_ms, lag))
        self.assertLess(lag["max_ms"], took_ms / 2, (took_ms, lag))
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


class BudgetTests(unittest.TestCase):
    def test_drain_yields_to_the_reactor(self) -> None:
        """Writes that take 4 ms each (on the store's clock) are run three to
        a reactor turn (10 ms budget): after three the loop lets the reactor
        run and goes on in the next turn, in order, until all are answered."""
        from tests.support import open_store, result_of

        clock = Clock()
        store, _ = open_store(clock=clock)
        self.addCleanup(store.pool.close)
        gated = GatedPool(store.pool)
        store.pool = gated
        ran: list[int] = []

        def slow(tx: Tx, number: int) -> int:
            clock.advance(0.004)
            ran.append(number)
            return number

        held = store.write(objects.upsert, "node", "node001", {"comment": "held"})
        answers = [store.write(slow, n) for n in range(10)]
        gated.open()  # the SyncPool commits at once; the queue drains
        self.assertEqual(ran, [0, 1, 2])  # 12 ms: over the budget, the rest waits for the next turn
        turns = [len(ran)]
        while len(ran) < 10:
            # One reactor turn: the one call the queue left (Clock.advance(0)
            # would also run the calls that call schedules, all in one go).
            (resume,) = clock.getDelayedCalls()
            self.assertEqual(resume.getTime(), clock.seconds())
            clock.calls.remove(resume)
            resume.func(*resume.args, **resume.kw)
            turns.append(len(ran))
        self.assertEqual(turns, [3, 6, 9, 10])
        self.assertFalse(result_of(held))
        self.assertEqual([result_of(d) for d in answers], list(range(10)))
        self.assertTrue(store.queue.idle)

    def test_one_slow_write_completes_within_the_call(self) -> None:
        """A write that takes longer than the budget, alone on the
        synchronous pool (as at start-up, before the reactor runs), is
        committed and answered within the call that asked for it."""
        from tests.support import open_store, result_of

        clock = Clock()
        store, _ = open_store(clock=clock)
        self.addCleanup(store.pool.close)

        def slow(tx: Tx) -> bool:
            clock.advance(0.05)
            return objects.upsert(tx, "node", "node001", {"comment": "slow"})

        self.assertFalse(result_of(store.write(slow)))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(store.show("node", "node001")["comment"], "slow")


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

        store.listeners[:] = [
            lambda tx: heard.append("first"),
            broken,
            lambda tx: heard.append("last"),
        ]
        writes = store.writes
        self.assertFalse(
            result_of(store.write(objects.upsert, "node", "node001", {"comment": "kept"}))
        )
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


class GatedPool:
    """The real adbapi pool behind a gate: while it is shut, commits wait
    (as behind a slow disk) and the writes after them queue in the store."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.shut = True
        self.held: list[tuple[defer.Deferred[Any], tuple[Any, ...]]] = []

    def runInteraction(self, *args: Any) -> defer.Deferred[Any]:
        if not self.shut:
            return self.pool.runInteraction(*args)
        waiting: defer.Deferred[Any] = defer.Deferred()
        self.held.append((waiting, args))
        return waiting

    def open(self) -> None:
        self.shut = False
        held, self.held = self.held, []
        for waiting, args in held:
            self.pool.runInteraction(*args).chainDeferred(waiting)


class HTTPBurstTests(QueueCase):
    """The whole API on a real TCP port (port 0), spoken to by real HTTP
    clients, over a store on the real threaded pool."""

    timeout = 120

    async def serve(self) -> tuple[Store, GatedPool, str, str]:
        import treq  # noqa: F401 - imported late, after trial installed the reactor
        from twisted.web.client import HTTPConnectionPool

        from luna2d.config import APIConfig
        from luna2d.resources.auth import Auth
        from luna2d.resources.root import build
        from luna2d.resources.site import make_site
        from tests.support import ADMIN, PASSWORD, SECRET

        store = await self.open()
        gated = GatedPool(store.pool)
        store.pool = gated
        auth = Auth(APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), store, self.clock)
        port = the_reactor().listenTCP(
            0, make_site(build(store, auth, ADMIN), auth), interface="127.0.0.1", backlog=1024
        )
        self.addCleanup(port.stopListening)
        self.http = HTTPConnectionPool(the_reactor(), persistent=False)
        self.http.maxPersistentPerHost = 0
        self.addCleanup(self.http.closeCachedConnections)
        return store, gated, f"http://127.0.0.1:{port.getHost().port}", auth.issue(ADMIN, "admin")

    async def call(
        self, method: str, url: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        import json

        import treq

        headers = {b"x-access-tokens": [token.encode()]} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(
            method, url, data=data, headers=headers, pool=self.http, timeout=60
        )
        content = await response.content()
        ctype = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        return response.code, json.loads(content) if ctype.startswith(
            b"application/json"
        ) else content

    async def until_queued(self, store: Store, count: int) -> None:
        """Wait (on the reactor) until ``count`` writes wait in the queue."""
        deadline = the_reactor().seconds() + 60
        while len(store.queue) < count:
            self.assertLess(
                the_reactor().seconds(), deadline, f"only {len(store.queue)} writes queued"
            )
            await task.deferLater(the_reactor(), 0.01, lambda: None)

    def node(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"config": {"node": {name: fields}}}

    async def test_manual_boot_and_invalid_bursts_do_not_wedge(self) -> None:
        """The attack of issue 8 finding 1: while a write's commit is held,
        400 unauthenticated GET /boot/manual/hostname/node002/<mac> (the
        first gives node002 the MAC, the other 399 change nothing) and 400
        admin POSTs refused by validation queue behind it. Once the commit
        goes through every request is answered (200 or 400, never 5xx,
        nothing left hanging) and a later write commits and is on disk."""
        store, gated, url, token = await self.serve()
        mac = "02:00:00:00:99:02"
        held = defer.ensureDeferred(
            self.call(
                "POST",
                f"{url}/config/node/node001",
                token,
                self.node("node001", {"comment": "held"}),
            )
        )
        await self.until_queued(store, 0)
        manual = [
            defer.ensureDeferred(self.call("GET", f"{url}/boot/manual/hostname/node002/{mac}"))
            for _ in range(400)
        ]
        invalid = [
            defer.ensureDeferred(
                self.call(
                    "POST", f"{url}/config/node/node003", token, self.node("node003", {"bogus": n})
                )
            )
            for n in range(400)
        ]
        await self.until_queued(store, 800)
        self.assertEqual(len(gated.held), 1)
        gated.open()
        self.assertEqual((await held)[0], 204)
        codes = [code for code, _ in await defer.gatherResults(manual)]
        self.assertEqual(codes, [200] * 400)
        answers = await defer.gatherResults(invalid)
        self.assertEqual({code for code, _ in answers}, {400})
        self.assertTrue(all("bogus" in body["message"] for _, body in answers))
        code, _ = await self.call(
            "POST", f"{url}/config/node/node004", token, self.node("node004", {"comment": "later"})
        )
        self.assertEqual(code, 204)
        reopened = await self.open()
        self.assertEqual(reopened.show("node", "node004")["comment"], "later")
        self.assertEqual(reopened.show("node", "node001")["comment"], "held")
        self.assertEqual(reopened.show("node", "node002")["macaddr"], mac)

    async def test_concurrent_creates_sharing_an_address_or_mac(self) -> None:
        """200 concurrent admin creates that ask for one IP address, then 200
        that ask for one MAC: exactly one of each wins (201), the other 199
        are 400 naming the holder, and later writes still work."""
        store, gated, url, token = await self.serve()
        gated.open()
        for field, value in (("ipaddress", "10.141.0.150"), ("macaddress", "02:00:00:00:77:01")):
            requests = [
                defer.ensureDeferred(
                    self.call(
                        "POST",
                        f"{url}/config/node/{field[:3]}{n:03d}",
                        token,
                        self.node(
                            f"{field[:3]}{n:03d}",
                            {
                                "group": "compute",
                                "interfaces": [{"interface": "BOOTIF", field: value}],
                            },
                        ),
                    )
                )
                for n in range(200)
            ]
            answers = await defer.gatherResults(requests)
            codes = sorted(code for code, _ in answers)
            self.assertEqual(codes, [201] + [400] * 199, field)
            losers = [body["message"] for code, body in answers if code == 400]
            self.assertTrue(all(value in message for message in losers), losers[:3])
            holders = [
                name
                for name, node in store.objects_of("node").items()
                if any(i.get(field) == value for i in node["interfaces"])
            ]
            self.assertEqual(len(holders), 1, holders)
        code, _ = await self.call(
            "POST", f"{url}/config/node/late01", token, self.node("late01", {"group": "compute"})
        )
        self.assertEqual(code, 201)
        self.assertEqual(snapshot(await self.open()), snapshot(store))
