# -*- test-case-name: tests.test_lag -*-
"""A reactor-lag probe: how late the reactor runs a timer.

A timer asked for every ``interval`` seconds runs late by as long as the
callbacks that held the reactor meanwhile: the lateness of each tick is a
sample of how long the event loop was blocked. The probe keeps the largest
lateness and a histogram (0.1 ms buckets) from which percentiles are read;
its memory is bounded by the number of distinct buckets, not by the number
of ticks. Two snapshots taken around a phase of work give that phase's
figures (``between``), so a harness can read cumulative snapshots from
outside the process.

Time comes from the clock handed in (``IReactorTime``): the reactor in the
daemon or a benchmark, a ``Clock`` in tests."""

from __future__ import annotations

import math
from typing import Any

BUCKET_MS = 0.1
LIMIT_MS = 50.0  # the house rule: no callback holds the reactor longer than this


def _bucket(late_ms: float) -> int:
    """The histogram bucket of a lateness: the smallest multiple of 0.1 ms
    that is not below it (bucket 0: on time)."""
    return max(0, math.ceil(round(late_ms / BUCKET_MS, 6)))


class LagProbe:
    """Measures the lateness of a timer rescheduled every ``interval`` s."""

    def __init__(self, clock: Any, interval: float = 0.01, limit_ms: float = LIMIT_MS) -> None:
        self.clock = clock
        self.interval = interval
        self.limit_ms = limit_ms
        self._call: Any = None
        self._due = 0.0
        self.ticks = 0
        self.max_ms = 0.0
        self.over_limit = 0
        self.histogram: dict[int, int] = {}

    @property
    def running(self) -> bool:
        return self._call is not None

    def start(self) -> None:
        """Start ticking (again)."""
        if self._call is None:
            self._schedule()

    def stop(self) -> None:
        """Stop ticking; what was measured is kept."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _schedule(self) -> None:
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        self.record(max(0.0, self.clock.seconds() - self._due) * 1000)
        self._schedule()

    def record(self, late_ms: float) -> None:
        """Count one tick that ran ``late_ms`` milliseconds late."""
        self.ticks += 1
        self.max_ms = max(self.max_ms, late_ms)
        if late_ms > self.limit_ms:
            self.over_limit += 1
        bucket = _bucket(late_ms)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + 1

    def reset(self) -> None:
        """Forget what was measured (the probe keeps running)."""
        self.ticks, self.max_ms, self.over_limit = 0, 0.0, 0
        self.histogram = {}

    def snapshot(self) -> dict[str, Any]:
        """The figures so far, as JSON-ready data (cumulative: see ``between``)."""
        return {
            "interval_ms": self.interval * 1000,
            "limit_ms": self.limit_ms,
            "ticks": self.ticks,
            "max_ms": round(self.max_ms, 3),
            "p50_ms": percentile(self.histogram, 0.5),
            "p99_ms": percentile(self.histogram, 0.99),
            "over_limit": self.over_limit,
            "histogram": {str(bucket): count for bucket, count in sorted(self.histogram.items())},
        }


def percentile(histogram: dict[int, int], share: float) -> float | None:
    """The ``share`` percentile of a bucket histogram, in ms (the upper edge
    of the bucket that holds it); None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(share * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket * BUCKET_MS, 3)
    raise AssertionError("unreachable: the ranks add up to the total")


def between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The figures of the ticks between two snapshots of one probe: count,
    largest lateness (to 0.1 ms, from the histogram), p50, p99 and how many
    ticks were later than the limit."""
    old = {int(k): v for k, v in before.get("histogram", {}).items()}
    new = {int(k): v for k, v in after["histogram"].items()}
    diff = {
        bucket: count - old.get(bucket, 0)
        for bucket, count in new.items()
        if count > old.get(bucket, 0)
    }
    limit = after["limit_ms"]
    return {
        "ticks": sum(diff.values()),
        "max_ms": round(max(diff) * BUCKET_MS, 3) if diff else None,
        "p50_ms": percentile(diff, 0.5),
        "p99_ms": percentile(diff, 0.99),
        "over_limit": sum(count for bucket, count in diff.items() if bucket * BUCKET_MS > limit),
        "limit_ms": limit,
    }
