"""luna2d.protocols.rate: the token bucket that bounds DHCP's new offers per
network and TFTP's requests per client address. A full bucket gives its
burst, then ``rate`` a second, never more than the burst; a wall clock
stepped back adds nothing, and the bucket refills from the new time instead
of staying empty until the clock is back where it was."""

from __future__ import annotations

from twisted.trial import unittest

from luna2d.protocols.rate import TokenBucket

NOW = 1_800_000_000.0


class TokenBucketTests(unittest.TestCase):
    def test_burst_then_rate(self) -> None:
        """A full bucket gives its burst at once, then ``rate`` a second,
        never more than the burst after a long pause; a clock that goes
        back gives nothing extra."""
        bucket = TokenBucket(rate=2, burst=3)
        self.assertEqual([bucket.take(NOW) for _ in range(4)], [True, True, True, False])
        self.assertEqual([bucket.take(NOW + 0.5) for _ in range(2)], [True, False])
        self.assertEqual([bucket.take(NOW + 100) for _ in range(4)], [True, True, True, False])
        self.assertFalse(bucket.take(NOW + 50))
        self.assertTrue(bucket.take(NOW + 100.5))

    def test_fractional_rate(self) -> None:
        """A rate under one a second: one token after 1/rate seconds."""
        bucket = TokenBucket(rate=0.25, burst=1)
        self.assertTrue(bucket.take(NOW))
        self.assertFalse(bucket.take(NOW + 3.9))
        self.assertTrue(bucket.take(NOW + 4.0))

    def test_clock_stepped_back_refills_from_the_new_time(self) -> None:
        """The wall clock steps back an hour with the bucket empty: nothing
        is given for the step, and one second later (new time) the bucket
        has its token again; before, DHCP made no new offer for an hour."""
        bucket = TokenBucket(rate=1, burst=1)
        self.assertTrue(bucket.take(NOW))
        self.assertFalse(bucket.take(NOW - 3600))
        self.assertTrue(bucket.take(NOW - 3599))
        self.assertFalse(bucket.take(NOW - 3599))
