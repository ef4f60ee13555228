"""Pausing the garbage collector around large work (luna2d.collector):
pauses nest, the last one restores what was there, an unmatched resume
changes nothing, and ``keep`` freezes what is tracked."""

from __future__ import annotations

import gc

from twisted.trial import unittest

from luna2d import collector


class CollectorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        self.assertEqual(collector.paused(), 0)

    def test_nested_pauses(self) -> None:
        """Two pauses: collection stays off until the second resume."""
        gc.enable()
        collector.pause()
        collector.pause()
        self.assertFalse(gc.isenabled())
        collector.resume()
        self.assertFalse(gc.isenabled())
        self.assertEqual(collector.paused(), 1)
        collector.resume()
        self.assertTrue(gc.isenabled())
        self.assertEqual(collector.paused(), 0)

    def test_disabled_stays_disabled(self) -> None:
        """A collector that was off before the pause is off after it."""
        gc.disable()
        collector.pause()
        collector.resume()
        self.assertFalse(gc.isenabled())

    def test_unmatched_resume(self) -> None:
        """A resume without a pause neither enables nor counts below zero."""
        gc.disable()
        collector.resume()
        self.assertFalse(gc.isenabled())
        self.assertEqual(collector.paused(), 0)

    def test_keep_freezes(self) -> None:
        self.addCleanup(gc.unfreeze)
        gc.unfreeze()
        held = [[n] for n in range(100)]
        collector.keep()
        self.assertGreaterEqual(gc.get_freeze_count(), len(held))
