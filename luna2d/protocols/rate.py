# -*- test-case-name: tests.test_rate,tests.dhcp.test_pool,tests.tftp.test_policy -*-
"""How fast something may happen: the one token bucket of luna2d's
protocols. DHCP bounds the new offers a network makes to unknown machines
with one; TFTP gives each client address one for its requests.

Pure: the caller hands in the time (the reactor's clock). Twisted's clock
is the wall clock, which an administrator or NTP may step back: a step back
adds no tokens and takes none, and refilling counts again from the new
time, so a bucket is never stuck empty until the clock catches up with the
time it was last read."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``burst`` tokens at the start, ``rate`` more per second up to
    ``burst``; ``take`` spends one when there is one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token at time ``now``; whether there was one."""
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + max(now - self.stamp, 0.0) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
