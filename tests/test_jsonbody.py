"""Large JSON bodies parsed in slices (luna2d.resources.jsonbody): the same
values and the same error messages as ``read_json``'s one-shot parse, on
hand-picked and on thousands of mutated documents with windows small
enough that every path of the sliced parser runs; and a 34 MiB body parsed
on the running reactor while a LoopingCall keeps ticking on time."""

from __future__ import annotations

import gc
import json
import random
import time
from io import BytesIO
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from luna2d.errors import Invalid
from luna2d.resources import jsonbody
from luna2d.resources.common import read_json
from tests.support import ReactorCase, the_reactor


class _Body:
    def __init__(self, raw: bytes) -> None:
        self.content = BytesIO(raw)


def one_shot(raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", read_json(_Body(raw))
    except Invalid as exc:
        return "error", exc.message


def sliced(raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", jsonbody.parse(raw)
    except Invalid as exc:
        return "error", exc.message


CASES = [
    b'{"a": 1}',
    b'  {"a": [1,2,3, {"b": "c"}], "d": null, "e": 1.5e3}  ',
    b'{"a": 1,}',
    b'{"a" 1}',
    b'{"a": 1 "b": 2}',
    b"[1, 2, 3 4]",
    b"[1,2,",
    b'{"a": [',
    b'{"a": NaN}',
    b'{"a": 1e999}',
    b'{"a": "\\ud800"}',
    b'{"\\ud800": 1}',
    b"[" * 70 + b"]" * 70,
    b'{"a": 1} x',
    b"",
    b"   ",
    b'{"a": "unterminated',
    b'{"k": "' + b"x" * 100 + b'"}',
    b"[" + b",".join([b'"abcdefghijkl"'] * 50) + b"]",
    b'{"a": {"a": {"a": 1, "a": 2}}, "a": 3}',
    b"[1, 2, ]",
    b'{"x": 12345678901234567890123}',
    b'["\\u0041\\n", true, false, null]',
    b'{"a": tru}',
    b"[-]",
    b'{"a":"\t"}',
    '{"é": "ü"}'.encode("utf-16"),
    b"[" + b"9" * 5000 + b"]",
    b'{"a"}',
    b"{,}",
    b"[,]",
    b'{"a":1}}',
    b"[1]]",
    b'{"a": -0.5E-3, "b": [[], {}]}',
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.3:
        return rng.choice(
            [1, -2.5, "s", "é", None, True, "x" * rng.randint(0, 40), 10 ** rng.randint(0, 30)]
        )
    if roll < 0.65:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    return {rng.choice("abcdefg"): random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


class SameAnswersTests(unittest.TestCase):
    def check(self, raw: bytes) -> None:
        for window in (4, 16, 64, 65536):
            self.patch(jsonbody, "WINDOW", window)
            self.assertEqual(sliced(raw), one_shot(raw), (window, raw[:80]))

    def test_hand_picked_documents(self) -> None:
        """Valid documents, every kind of syntax error (with its line,
        column and character), NaN and overflow, unpaired surrogates in
        keys and values, UTF-16, trailing data, empty bodies: the same
        answer at every window size."""
        for raw in CASES:
            self.check(raw)

    def test_mutated_documents(self) -> None:
        """2,000 random documents and six one-byte mutations of each (a byte
        dropped, a delimiter inserted) give the same answer sliced as in one
        shot, with 8- and 32-character windows."""
        rng = random.Random(7)
        for _ in range(2000):
            doc = json.dumps(random_value(rng), indent=rng.choice([None, 1])).encode()
            variants = [doc]
            for _ in range(3):
                cut = rng.randrange(len(doc))
                variants.append(doc[:cut] + doc[cut + 1 :])
                variants.append(
                    doc[:cut] + rng.choice([b",", b"]", b"}", b'"', b":", b" ", b"1"]) + doc[cut:]
                )
            for raw in variants:
                for window in (8, 32):
                    self.patch(jsonbody, "WINDOW", window)
                    self.assertEqual(sliced(raw), one_shot(raw), raw[:80])

    def test_depth_is_reported_first(self) -> None:
        """The one difference, written down in the module: a body both too
        deep and malformed is answered with its depth."""
        self.patch(jsonbody, "WINDOW", 4)
        self.assertEqual(
            sliced(b"[" * 70), ("error", "request body is nested deeper than 64 levels")
        )


def big_body(nodes: int) -> bytes:
    return json.dumps(
        {
            "config": {
                "node": {
                    f"node{i:06d}": {
                        "group": "compute",
                        "comment": "x" * 40,
                        "tags": {"rack": str(i % 40)},
                        "interfaces": [
                            {"interface": "BOOTIF", "ipaddress": f"10.1.{i // 250}.{i % 250}"}
                        ],
                    }
                    for i in range(nodes)
                }
            }
        }
    ).encode()


class ReactorStaysResponsiveTests(ReactorCase):
    async def test_34_mib_body_on_the_reactor(self) -> None:
        """A 34 MiB body parsed by the edge's cooperator on the running
        reactor gives the one-shot result, while a LoopingCall set to tick
        every 10 ms is never late by more than 50 ms of the reactor
        thread's own CPU time (thread time, so that other processes on a
        busy machine do not count; the wall-clock lateness is reported);
        the garbage collector, paused during the parse, runs again after."""
        raw = big_body(210_000)
        self.assertGreater(len(raw), 34 << 20)
        reactor = the_reactor()
        cooperator = task.Cooperator(scheduler=lambda step: reactor.callLater(0, step))
        self.addCleanup(cooperator.stop)
        late_cpu: list[float] = []
        late_wall: list[float] = []
        last = [time.thread_time(), reactor.seconds()]

        def tick() -> None:
            now_cpu, now_wall = time.thread_time(), reactor.seconds()
            late_cpu.append(now_cpu - last[0])
            late_wall.append(now_wall - last[1] - 0.01)
            last[:] = [now_cpu, now_wall]

        ticker = task.LoopingCall(tick)
        ticker.clock = reactor
        ticker.start(0.01, now=False)
        try:
            ok, value = await jsonbody.parse_sliced(raw, cooperator)
        finally:
            ticker.stop()
        self.assertTrue(ok, value)
        self.assertTrue(gc.isenabled(), "the garbage collector was not resumed")
        self.assertEqual(value, json.loads(raw))
        self.assertGreater(len(late_cpu), 20)
        worst = max(late_cpu)
        print(
            f"\n34 MiB sliced parse: {len(late_cpu)} ticks, worst gap {worst * 1000:.1f} ms CPU, "
            f"{max(late_wall) * 1000:.1f} ms wall"
        )
        self.assertLess(worst, 0.05)
