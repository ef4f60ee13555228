# -*- test-case-name: tests.test_collector,tests.test_heavy_writes -*-
"""The garbage collector around work that makes many objects at once.

A write that renumbers a network of 10,000 nodes, or a boot index built
over them, allocates tens of thousands of containers. Left alone, the
collector runs its passes inside that work, and a pass holds the GIL for
its whole length: run in a thread, it still stalls the reactor. So the
collector is paused while such work runs (``pause``/``resume``, counted,
so nested pauses end with the last one and restore what was there), and
what a large write leaves in memory is moved out of every later
collection (``keep``, ``gc.freeze``): the objects of the State live until
a later write replaces them, and reference counting frees them then as
before. Call these on the reactor thread only."""

from __future__ import annotations

import gc

_paused = [0, False]  # pauses under way, whether the collector was enabled before


def pause() -> None:
    """Stop automatic collection until the matching ``resume``."""
    if _paused[0] == 0:
        _paused[1] = gc.isenabled()
        gc.disable()
    _paused[0] += 1


def resume() -> None:
    """End one ``pause``; the last one restores automatic collection as it was."""
    if _paused[0] <= 0:
        return
    _paused[0] -= 1
    if _paused[0] == 0 and _paused[1]:
        gc.enable()


def paused() -> int:
    """How many pauses are under way."""
    return _paused[0]


def keep() -> None:
    """Move every object tracked now out of later collections (the way the
    daemon treats its loaded image): the next full pass does not walk a
    State just made by a large write. Garbage caught in a cycle at this
    moment is kept too, which is why only large writes do it."""
    gc.freeze()
