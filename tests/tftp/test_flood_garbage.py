"""Issue 9, point 10: what a TFTP flood leaves for the garbage collector.

Profiled under ``bench/tftp/flood.py`` (3,000 RRQs/s from 250 addresses),
the reactor callbacks of 50 to 140 ms of CPU were the listening port's
read of 64 requests, each starting a transfer and evicting or superseding
another, in which a full garbage collection ran: every transfer that
ended was left in reference cycles (the protocol and its port, its
source's wakeup), so tens of thousands of objects waited for the
collector and a full pass over them took 30 to 45 ms of CPU, landing in
whichever callback allocated last. A transfer that ends now breaks its
cycles, and reference counting frees it at once.

The pin: with automatic collection off, started, superseded, evicted and
refused transfers and a completed one leave no object of the TFTP server
that only the collector would free. It fails on the code before the fix
with 801 transfers (protocol, state machine, source, request, OACK), 400
one-shot ports and 6 lookup failures left in cycles."""

from __future__ import annotations

import gc
import os
from collections import Counter

from luna2d.protocols.tftp.codec import ReadRequest
from luna2d.protocols.tftp.policy import Limits
from tests.tftp.test_flood import LONG_TIMEOUT, FloodCase

HOSTS = [f"127.0.2.{i}" for i in range(1, 101)]
OTHER = ReadRequest("boot.kpxe", "octet", (("blksize", "1024"), ("tsize", "0")))
MISSING = ReadRequest("missing.bin", "octet", ())


def cyclic_garbage() -> Counter[str]:
    """The objects of luna2d's types only a full collection would free, by
    type (a cycle holding a Deferred or timer of a transfer holds the
    transfer too; the test harness's own Twisted objects are left out)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found: Counter[str] = Counter()
        for obj in gc.garbage:
            kind = type(obj)
            module = getattr(kind, "__module__", "") or ""
            if module.startswith("luna2d."):
                found[f"{module}.{kind.__qualname__}"] += 1
        return found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


class FloodGarbageTests(FloodCase):
    limits = Limits(max_transfers=300, max_per_client=8)

    async def test_ended_transfers_leave_no_cycles(self) -> None:
        """400 silent requests fill the table of 300 (100 evictions), the
        same 400 sockets asking another way supersede theirs (and evict
        again), 400 ask for a missing file (refused from a one-shot port),
        curl fetches the file, and the service stops (every transfer under
        way ends): none of it leaves cyclic garbage."""
        data = self.put("boot.kpxe", os.urandom(80_000))
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        before = cyclic_garbage()  # what the test case itself holds in cycles
        port = self.port
        assert port is not None
        attacker = self.silent(HOSTS, 4)
        attacker.send(LONG_TIMEOUT, port)
        await self.until(
            lambda: self.stats["started"] + self.stats["evicted"] >= 400,
            10,
            "the first flood is served",
        )
        attacker.send(OTHER, port)
        await self.until(
            lambda: (
                self.stats["requests"] >= 800
                and self.stats["superseded"] + self.stats["evicted"] >= 400
            ),
            10,
            "the second flood is served",
        )
        attacker.send(MISSING, port)
        await self.until(lambda: self.stats["refused"] >= 300, 10, "refusals")
        got = await self.curl_fetch("boot.kpxe", "curl.bin", "--tftp-blksize", "1432")
        self.assertEqual(got, data)
        await self.until(lambda: self.stats["completed"] >= 1, 10, "curl's transfer ends")
        counts = self.stats.text()
        self.assertGreater(self.stats["evicted"], 0, counts)
        self.assertGreater(self.stats["superseded"] + self.stats["evicted"], 400, counts)
        self.assertGreaterEqual(self.stats["completed"], 1, counts)
        await self.service.stopService()
        left = cyclic_garbage() - before
        self.assertEqual(sorted(left.items()), [], "objects left in reference cycles")
