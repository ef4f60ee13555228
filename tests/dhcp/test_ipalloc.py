"""luna2d.ipalloc.FreeSet against a plain Python set: every sequence of
takes and gives leaves the same free values, the same lowest and the same
next free value at or after any point; spans of one value, of a word's
edge and of a million behave the same; and a lookup on a million-value
span touches a bounded number of words, whatever is free."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from luna2d.ipalloc import WORD, FreeSet

MILLION = 1 << 20

operations = st.lists(
    st.tuples(st.sampled_from(["take", "give", "next"]), st.integers(-5, 300)), max_size=200
)


class CountingList(list):  # type: ignore[type-arg]
    """A list that counts item reads (the words a lookup looks at)."""

    reads = 0

    def __getitem__(self, index: object) -> object:  # type: ignore[override]
        CountingList.reads += 1
        return super().__getitem__(index)  # type: ignore[index]


class FreeSetTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(low=st.integers(0, 1000), size=st.integers(1, 260), free=st.booleans(), ops=operations)
    def test_same_as_a_set(
        self, low: int, size: int, free: bool, ops: list[tuple[str, int]]
    ) -> None:
        """Random takes, gives and lookups (inside and outside the span)
        agree with a set of the free values."""
        high = low + size - 1
        pool = FreeSet(low, high, free=free)
        model = set(range(low, high + 1)) if free else set()
        for op, offset in ops:
            value = low + offset
            if op == "take":
                self.assertEqual(pool.take(value), value in model)
                model.discard(value)
            elif op == "give":
                inside = low <= value <= high
                self.assertEqual(pool.give(value), inside and value not in model)
                if inside:
                    model.add(value)
            else:
                expected = min((v for v in model if v >= value), default=None)
                self.assertEqual(pool.next_free(value), expected)
            self.assertEqual(len(pool), len(model))
            self.assertEqual(pool.lowest(), min(model, default=None))
        self.assertEqual(list(pool), sorted(model))
        for value in range(low - 2, high + 3):
            self.assertEqual(value in pool, value in model)

    def test_edges(self) -> None:
        """A one-value span; a span ending on a word boundary and one past it."""
        one = FreeSet(7, 7)
        self.assertEqual((one.lowest(), len(one)), (7, 1))
        self.assertTrue(one.take(7))
        self.assertIsNone(one.lowest())
        for size in (WORD, WORD + 1, WORD * WORD, WORD * WORD + 1):
            span = FreeSet(100, 100 + size - 1)
            self.assertEqual(len(span), size)
            self.assertEqual(list(span)[-1], 100 + size - 1)
            for value in range(100, 100 + size - 1):
                span.take(value)
            self.assertEqual(span.lowest(), 100 + size - 1)
            self.assertIsNone(span.next_free(100 + size))
        self.assertRaises(ValueError, FreeSet, 5, 4)

    def test_million_lookups_are_bounded(self) -> None:
        """On a span of 2**20 + 1 values, finding the lowest free value reads
        at most 2 words per level (4 levels of 16,385, 257, 5 and 1 words), wherever it is and when
        nothing is free; take and give stay exact at both ends."""
        span = FreeSet(0, MILLION)
        self.assertEqual([len(level) for level in span._levels], [16385, 257, 5, 1])
        span._levels = [CountingList(level) for level in span._levels]
        for value in (0, 1, 63, 64, 4095, 4096, MILLION - 1):
            span.take(value)
        self.assertEqual(span.lowest(), 2)
        for start, expected in ((63, 65), (4095, 4097), (MILLION - 1, MILLION)):
            CountingList.reads = 0
            self.assertEqual(span.next_free(start), expected)
            self.assertLessEqual(CountingList.reads, 2 * 4)
        # Nothing free, then one value far down the span.
        fresh = FreeSet(0, MILLION, free=False)
        fresh._levels = [CountingList(level) for level in fresh._levels]
        CountingList.reads = 0
        self.assertIsNone(fresh.lowest())
        self.assertLessEqual(CountingList.reads, 2 * 4)
        fresh.give(MILLION - 3)
        CountingList.reads = 0
        self.assertEqual(fresh.lowest(), MILLION - 3)
        self.assertLessEqual(CountingList.reads, 2 * 4)
        self.assertEqual((len(fresh), fresh.take(MILLION - 3), fresh.lowest()), (1, True, None))
