# -*- test-case-name: tests.test_counters -*-
"""Counters of what a service saw, for monitoring and tests.

One shape for every service (DHCP, TFTP and its file cache, the IPMI
client): the names are declared once, when the counters are made, and every
count or read names one of them. A name that was not declared raises
``KeyError`` at once, so a typo fails the first test that reaches it instead
of counting into a key nobody reads. Counts only go up.

This module imports nothing of luna2d: protocols, resources and the IPMI
client may all use it."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Counters"]


class Counters:
    """A fixed set of named counts, each starting at zero."""

    __slots__ = ("_counts",)

    def __init__(self, names: Iterable[str]) -> None:
        declared = list(names)
        counts = dict.fromkeys(declared, 0)
        if not counts:
            raise ValueError("counters need at least one name")
        if len(counts) != len(declared):
            raise ValueError("a counter name is declared twice")
        self._counts = counts

    def _check(self, name: str) -> None:
        if name not in self._counts:
            raise KeyError(f"no counter named {name!r}; declared: {', '.join(self._counts)}")

    def incr(self, name: str, n: int = 1) -> None:
        """Add ``n`` (0 or more) to the counter ``name``."""
        self._check(name)
        if n < 0:
            raise ValueError(f"counter {name!r} cannot go down (by {n})")
        self._counts[name] += n

    def __getitem__(self, name: str) -> int:
        self._check(name)
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """Every counter's value now, in declaration order (a copy)."""
        return dict(self._counts)

    def text(self) -> str:
        """``name count, name count, ...`` in name order, for health lines:
        the counters that are not zero (a quiet service says nothing)."""
        counts = self._counts
        return ", ".join(f"{name} {counts[name]}" for name in sorted(counts) if counts[name])

    def __repr__(self) -> str:
        return f"Counters({self._counts!r})"
