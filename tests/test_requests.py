"""The request table (luna2d.requests) on a Clock: entries handed over
once, in the order they landed; the read that finds a request finished is
its last; finished requests nobody reads expire; the bounds on requests
and items push out finished requests first and refuse (503) only when
running ones fill the table; kinds do not see each other's requests."""

from __future__ import annotations

from itertools import count

from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.requests import EXPIRY, Busy, RequestTable


def numbered() -> RequestTable:
    """A table on a fresh Clock whose ids are r1, r2, ..."""
    numbers = count(1)
    return RequestTable(Clock(), new_id=lambda: f"r{next(numbers)}")


class ReadTests(unittest.TestCase):
    def test_entries_handed_over_once(self) -> None:
        """Each read gives the entries since the previous one, with the
        progress; the read after the finish gives the rest and is the
        last; the next read finds nothing."""
        table = numbered()
        request = table.start("control", 3, {"command": "power", "action": "on"})
        table.record(request, "node002", True, "on")
        first = table.read("control", request.id)
        assert first is not None
        self.assertEqual(
            [(e.item, e.ok, e.detail) for e in first.entries], [("node002", True, "on")]
        )
        self.assertEqual(first.progress.as_json(), {"done": 1, "total": 3, "finished": False})
        self.assertFalse(first.last)
        again = table.read("control", request.id)
        assert again is not None
        self.assertEqual(again.entries, [])
        table.record(request, "node001", False, "timeout: no answer")
        table.record(request, "node003", True, "on")
        table.finish(request)
        final = table.read("control", request.id)
        assert final is not None
        self.assertEqual([e.item for e in final.entries], ["node001", "node003"])
        self.assertEqual(final.progress.as_json(), {"done": 3, "total": 3, "finished": True})
        self.assertTrue(final.last)
        self.assertIsNone(table.read("control", request.id))
        self.assertEqual(len(table), 0)

    def test_kinds_apart_and_unknown_ids(self) -> None:
        """A control request is not found under config, and an id never
        made is not found."""
        table = numbered()
        request = table.start("control", 1)
        self.assertIsNone(table.read("config", request.id))
        self.assertIsNone(table.read("control", "nope"))
        self.assertIsNotNone(table.read("control", request.id))

    def test_late_results_after_drop_ignored(self) -> None:
        """Results recorded for a request already read to its end, or after
        its finish, are not kept."""
        table = numbered()
        request = table.start("config", 2)
        table.finish(request)
        table.record(request, "late", True, "x")
        reading = table.read("config", request.id)
        assert reading is not None
        self.assertEqual(reading.entries, [])
        table.record(request, "later", True, "x")
        self.assertIsNone(table.peek(request.id))

    def test_random_ids(self) -> None:
        """By default ids are 32 hex digits, all different."""
        table = RequestTable(Clock())
        ids = {table.start("control", 1).id for _ in range(50)}
        self.assertEqual(len(ids), 50)
        self.assertTrue(all(len(i) == 32 and int(i, 16) >= 0 for i in ids))


class ExpiryTests(unittest.TestCase):
    def test_finished_unread_requests_expire(self) -> None:
        """A finished request nobody reads is there until EXPIRY seconds
        after its finish, and gone at EXPIRY; a running request never
        expires, however old."""
        clock = Clock()
        table = RequestTable(clock)
        done = table.start("control", 1)
        running = table.start("control", 1)
        clock.advance(5)
        table.finish(done)
        clock.advance(EXPIRY - 0.5)
        self.assertIsNotNone(table.peek(done.id))
        clock.advance(0.5)
        self.assertIsNone(table.peek(done.id))
        self.assertIsNone(table.read("control", done.id))
        clock.advance(EXPIRY * 10)
        self.assertIsNotNone(table.peek(running.id))

    def test_expiry_is_a_parameter(self) -> None:
        """The table's expiry decides."""
        clock = Clock()
        table = RequestTable(clock, expiry=2)
        request = table.start("config", 0)
        table.finish(request)
        clock.advance(2)
        self.assertEqual(len(table), 0)


class BoundTests(unittest.TestCase):
    def test_oldest_finished_pushed_out_first(self) -> None:
        """At max_requests a new request pushes out the request that
        finished first; running ones stay."""
        clock = Clock()
        numbers = count(1)
        table = RequestTable(clock, max_requests=3, new_id=lambda: f"r{next(numbers)}")
        r1, r2, r3 = (table.start("control", 1) for _ in range(3))
        table.finish(r2)
        clock.advance(1)
        table.finish(r3)
        r4 = table.start("control", 1)
        self.assertEqual(sorted(r.id for r in (r1, r3, r4) if table.peek(r.id)), ["r1", "r3", "r4"])
        self.assertIsNone(table.peek(r2.id))

    def test_running_requests_fill_the_table(self) -> None:
        """When running requests alone reach max_requests, a new one is
        refused with Busy (503) and a message saying why."""
        table = RequestTable(Clock(), max_requests=2)
        table.start("control", 1)
        table.start("control", 1)
        with self.assertRaises(Busy) as caught:
            table.start("control", 1)
        self.assertEqual(caught.exception.status, 503)
        self.assertIn("2 requests are running", caught.exception.message)

    def test_item_bound(self) -> None:
        """Items over all kept requests stay within max_items: a finished
        request makes room, running ones do not, and one request larger
        than the bound is refused outright."""
        table = RequestTable(Clock(), max_items=10)
        big = table.start("control", 6)
        with self.assertRaises(Busy) as caught:
            table.start("control", 5)
        self.assertIn("running requests hold 6 items", caught.exception.message)
        table.finish(big)
        table.start("control", 5)
        self.assertIsNone(table.peek(big.id))
        with self.assertRaises(Busy):
            table.start("control", 11)
