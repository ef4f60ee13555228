"""The reactor-lag probe (luna2d.lag) on a Clock: it measures how late its
timer runs, keeps the maximum and percentiles, counts ticks over the limit,
and gives a phase's figures from two snapshots."""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.lag import LagProbe, between, percentile


class ProbeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.probe = LagProbe(self.clock, interval=0.01)

    def block(self, seconds: float) -> None:
        """The reactor held by one callback for ``seconds``: the clock moves
        on, and only then do the due timers run."""
        self.clock.advance(seconds)

    def test_on_time_ticks(self) -> None:
        """A reactor that runs each timer when due shows no lag."""
        self.probe.start()
        for _ in range(100):
            self.clock.advance(0.01)
        snap = self.probe.snapshot()
        self.assertEqual(
            (snap["ticks"], snap["max_ms"], snap["p99_ms"], snap["over_limit"]), (100, 0.0, 0.0, 0)
        )

    def test_blocked_reactor_is_measured(self) -> None:
        """Callbacks that hold the reactor 3 ms, 20 ms and 80 ms make the
        next tick late by that much: max 80 ms, one tick over the 50 ms
        limit, and the p99 of 200 ticks (the 198th) is the 3 ms one."""
        self.probe.start()
        for _ in range(197):
            self.clock.advance(0.01)
        for held in (0.013, 0.030, 0.090):  # 10 ms interval + 3, 20, 80 ms
            self.block(held)
        snap = self.probe.snapshot()
        self.assertEqual(snap["ticks"], 200)
        self.assertAlmostEqual(snap["max_ms"], 80.0, places=6)
        self.assertEqual(snap["over_limit"], 1)
        self.assertEqual(snap["p99_ms"], 3.0)
        self.assertEqual(snap["p50_ms"], 0.0)
        self.assertEqual(snap["histogram"], {"0": 197, "30": 1, "200": 1, "800": 1})
        json.dumps(snap)  # ready to be written out

    def test_between_snapshots(self) -> None:
        """The figures of a phase come from two snapshots: what happened
        before the first does not count."""
        self.probe.start()
        self.block(0.110)  # 100 ms late, before the phase
        before = self.probe.snapshot()
        for _ in range(99):
            self.clock.advance(0.01)
        self.block(0.017)  # 7 ms late, in the phase
        phase = between(before, self.probe.snapshot())
        self.assertEqual(
            phase,
            {
                "ticks": 100,
                "max_ms": 7.0,
                "p50_ms": 0.0,
                "p99_ms": 0.0,
                "over_limit": 0,
                "limit_ms": 50.0,
            },
        )
        self.assertEqual(between({}, self.probe.snapshot())["over_limit"], 1)

    def test_stop_start_reset(self) -> None:
        """A stopped probe leaves no timer behind and measures nothing; reset
        forgets the figures; a restart does not count the pause as lag."""
        self.probe.start()
        self.clock.advance(0.01)
        self.probe.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual(self.probe.snapshot()["ticks"], 1)
        self.probe.reset()
        self.probe.start()
        self.clock.advance(0.01)
        snap = self.probe.snapshot()
        self.assertEqual((snap["ticks"], snap["max_ms"]), (1, 0.0))
        self.probe.stop()

    def test_percentile(self) -> None:
        """Percentiles of a bucket histogram are bucket upper edges in ms;
        an empty histogram has none."""
        self.assertIsNone(percentile({}, 0.99))
        self.assertEqual(percentile({1: 98, 5: 1, 500: 1}, 0.99), 0.5)
        self.assertEqual(percentile({1: 98, 5: 1, 500: 1}, 1.0), 50.0)
