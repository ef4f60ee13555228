# -*- test-case-name: tests.dhcp.test_ipalloc -*-
"""A set of free integers (addresses) in a fixed span, with the lowest free
one, or the next free one at or after a given value, found in O(log n).

``FreeSet`` is a bitmap of the span (one bit per value, set when free) with
a summary above it: each level has one bit per word of the level below, set
when that word holds any free bit. With 64-bit words a 1M span has four
levels (16,385, 257, 5 and 1 words), so finding, taking or giving back a
value touches at most four words per level walked. Building a span costs
one word per 64 values; nothing ever walks the span value by value.

Pure: no I/O, no clock, no Twisted. The DHCP server keeps one per dynamic
range; the API's address allocation can use the same structure."""

from __future__ import annotations

from collections.abc import Iterator

WORD = 64
_FULL = (1 << WORD) - 1


def _lowest_bit(word: int) -> int:
    """The position of the lowest set bit of a non-zero word."""
    return (word & -word).bit_length() - 1


class FreeSet:
    """The free values of ``[low, high]``; all free, or all taken when
    ``free`` is False, at the start."""

    def __init__(self, low: int, high: int, free: bool = True) -> None:
        if high < low:
            raise ValueError(f"empty span {low}..{high}")
        self.low = low
        self.high = high
        self.size = high - low + 1
        self.count = self.size if free else 0
        levels: list[list[int]] = []
        bits = self.size
        while True:
            words = (bits + WORD - 1) // WORD
            if free:
                level = [_FULL] * words
                tail = bits % WORD
                if tail:
                    level[-1] = (1 << tail) - 1
            else:
                level = [0] * words
            levels.append(level)
            if words == 1:
                break
            bits = words
        self._levels = levels

    def __len__(self) -> int:
        """How many values are free."""
        return self.count

    def __contains__(self, value: object) -> bool:
        """Whether ``value`` lies in the span and is free."""
        if not isinstance(value, int) or not self.low <= value <= self.high:
            return False
        offset = value - self.low
        return bool(self._levels[0][offset // WORD] >> (offset % WORD) & 1)

    def take(self, value: int) -> bool:
        """Mark ``value`` taken; whether it was free (False outside the span)."""
        if value not in self:
            return False
        index = value - self.low
        for level in self._levels:
            word, bit = divmod(index, WORD)
            level[word] &= ~(1 << bit)
            if level[word]:
                break
            index = word
        self.count -= 1
        return True

    def give(self, value: int) -> bool:
        """Mark ``value`` free; whether it was taken (False outside the span)."""
        if not self.low <= value <= self.high or value in self:
            return False
        index = value - self.low
        for level in self._levels:
            word, bit = divmod(index, WORD)
            was_empty = level[word] == 0
            level[word] |= 1 << bit
            if not was_empty:
                break
            index = word
        self.count += 1
        return True

    def next_free(self, start: int | None = None) -> int | None:
        """The lowest free value at or after ``start`` (the span's start when
        None); None when there is none."""
        index = 0 if start is None else max(start - self.low, 0)
        if index >= self.size:
            return None
        levels = self._levels
        depth = 0
        # Up: find, at some level, a set bit at or after the position.
        while True:
            if depth == len(levels):
                return None
            level = levels[depth]
            word, bit = divmod(index, WORD)
            if word < len(level):
                masked = level[word] >> bit << bit
                if masked:
                    index = word * WORD + _lowest_bit(masked)
                    break
            index = word + 1
            depth += 1
        # Down: the lowest set bit of each word below it.
        while depth:
            depth -= 1
            index = index * WORD + _lowest_bit(levels[depth][index])
        return self.low + index

    def lowest(self) -> int | None:
        """The lowest free value, or None."""
        return self.next_free(None)

    def __iter__(self) -> Iterator[int]:
        """The free values in order (each step O(log n))."""
        value = self.next_free(None)
        while value is not None:
            yield value
            value = self.next_free(value + 1) if value < self.high else None
