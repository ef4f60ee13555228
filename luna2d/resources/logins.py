# -*- test-case-name: tests.test_logins,tests.test_login_flood -*-
"""How many logins luna2d checks, for whom, and in what order.

Two policies keep ``POST /token`` from being a password oracle or a way to
starve real users, both pure (time is handed in, work is handed in):

- ``Throttle`` counts failed logins per key (a source address, a user
  name). A key has a budget of free attempts, in which logins still being
  checked count as failures; once failures use it up, each further failure
  blocks the key for a time that doubles, up to a cap, and a blocked key
  has one attempt at a time. A refusal happens before any hashing, so it
  costs nothing. Counts are forgotten after a quiet while.
- A user name blocked by failures stays open to the sources it has
  lately logged in from (``Remembered``): a stranger's guesses cannot lock
  the admin out of their own workstation.
- ``FairGate`` runs at most a few password checks at once (each is a
  scrypt derivation in a thread) and queues the rest per source; a freed
  slot goes to the source with the fewest checks running, so a source with
  many attempts waiting delays another source's login by at most the one
  check that is already running. The queue is bounded; beyond it, logins
  are refused as busy."""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer


@dataclass(frozen=True)
class Limits:
    """The backoff of one kind of key.

    free: failed logins (counting those in flight) before backoff starts.
    base, cap: the first block after the budget is used up, in seconds; it
        doubles with every further failure, up to ``cap``.
    forget: seconds without a failure after which a key starts afresh.
    entries: how many keys are remembered; the longest quiet go first."""

    free: int
    cap: float
    base: float = 1.0
    forget: float = 900.0
    entries: int = 10_000


# A source may try 5 passwords, then waits 1, 2, 4 ... up to 300 s between
# tries. A user name gets 10 failures from all sources together, then 1, 2,
# 4 ... up to 60 s: a lower cap, because anyone can lock a name out, the
# real owner included (one source alone not in a burst: 5 < 10).
SOURCE_LIMITS = Limits(free=5, cap=300.0)
USER_LIMITS = Limits(free=10, cap=60.0)
# Longer names than any luna2d user name are counted by their start.
MAX_KEY = 128


@dataclass
class _Entry:
    failures: int = 0
    pending: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """Why an attempt may not be checked now, and when to try again."""

    message: str
    retry_after: int


class Throttle:
    """Failed-login counts and backoff for one kind of key."""

    def __init__(self, limits: Limits, what: Callable[[str], str]) -> None:
        self.limits = limits
        self._what = what  # describes a key in a refusal: "from 10.0.0.1", "for user 'bob'"
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, key: str, now: float) -> _Entry:
        entry = self._entries.get(key)
        if entry is not None and entry.pending == 0 and now - entry.last > self.limits.forget:
            del self._entries[key]
            entry = None
        if entry is None:
            entry = self._entries[key] = _Entry(last=now)
            self._prune()
        return entry

    def _prune(self) -> None:
        # The longest quiet keys go first; keys with a login in flight stay
        # (there are few: the gate bounds logins in flight).
        turns = len(self._entries)
        while len(self._entries) > self.limits.entries and turns > 0:
            turns -= 1
            key, entry = next(iter(self._entries.items()))
            if entry.pending:
                self._entries.move_to_end(key)
            else:
                del self._entries[key]

    def refusal(self, key: str, now: float) -> Refusal | None:
        """Why ``key`` may not try now, or None if it may."""
        key = key[:MAX_KEY]
        entry = self._entry(key, now)
        free = self.limits.free
        if entry.failures + entry.pending < free:
            return None
        if entry.pending == 0 and now >= entry.blocked_until:
            return None
        wait = max(1, math.ceil(entry.blocked_until - now))
        if entry.failures < free:
            text = f"too many logins in progress {self._what(key)}"
        else:
            text = f"too many failed logins {self._what(key)}"
        return Refusal(f"{text}; try again in {wait} s", wait)

    def start(self, key: str, now: float) -> None:
        """An attempt for ``key`` is being checked."""
        self._entry(key[:MAX_KEY], now).pending += 1

    def end(self, key: str, now: float, failed: bool | None, reset: bool = False) -> None:
        """The attempt ended: ``failed`` True counts a failure, False a
        success (which clears the count when ``reset``), None neither."""
        key = key[:MAX_KEY]
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.pending = max(0, entry.pending - 1)
        if failed:
            entry.failures += 1
            entry.last = now
            self._entries.move_to_end(key)
            over = entry.failures - self.limits.free
            if over >= 0:
                wait = min(self.limits.base * 2.0 ** min(over, 64), self.limits.cap)
                entry.blocked_until = now + wait
        elif failed is False and reset:
            entry.failures = 0
            entry.blocked_until = 0.0


class Remembered:
    """Keys seen lately (a user name logged in from a source): at most
    ``entries``, each for ``ttl`` seconds after it was last seen."""

    def __init__(self, ttl: float = 7 * 86400.0, entries: int = 10_000) -> None:
        self.ttl = ttl
        self.entries = entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, key: str, now: float) -> None:
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.entries:
            self._seen.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def seen(self, key: str, now: float) -> bool:
        """Whether ``key`` was added within the last ``ttl`` seconds."""
        when = self._seen.get(key)
        return when is not None and now - when <= self.ttl


def source_key(address: Any) -> str:
    """Whom a login comes from: an IPv4 address, or an IPv6 /64 (one
    machine may hold a whole /64); "local" for anything else."""
    host = getattr(address, "host", None)
    if not isinstance(host, str):
        return "local"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class Busy(Exception):
    """The login queue is full."""


class FairGate:
    """Runs at most ``slots`` jobs at once; the rest wait in per-source
    queues, at most ``queued`` in all. A freed slot goes to the source with
    the fewest jobs running, and among those to the one served longest ago."""

    def __init__(self, slots: int = 2, queued: int = 64) -> None:
        self.slots = slots
        self.queued = queued
        self.running = 0
        self.waiting = 0
        self._busy: dict[str, int] = {}  # source -> its jobs running
        self._served: dict[str, int] = {}  # source -> when it last had a slot (a count)
        self._turn = 0
        self._queues: OrderedDict[
            str, deque[tuple[Callable[[], defer.Deferred[Any]], defer.Deferred[Any]]]
        ] = OrderedDict()

    def submit(self, source: str, job: Callable[[], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        """``job()``'s result once it has had its turn; raises Busy when
        ``queued`` jobs already wait."""
        if self.running < self.slots and not self._queues:
            return self._run(source, job)
        if self.waiting >= self.queued:
            raise Busy()
        done: defer.Deferred[Any] = defer.Deferred()
        queue = self._queues.get(source)
        if queue is None:
            queue = self._queues[source] = deque()
        queue.append((job, done))
        self.waiting += 1
        return done

    def _run(self, source: str, job: Callable[[], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        self.running += 1
        self._busy[source] = self._busy.get(source, 0) + 1
        self._turn += 1
        self._served[source] = self._turn
        d = defer.maybeDeferred(job)

        def finished(result: Any) -> Any:
            self.running -= 1
            left = self._busy.pop(source) - 1
            if left:
                self._busy[source] = left
            elif source not in self._queues:
                del self._served[source]
            self._next()
            return result

        d.addBoth(finished)
        return d

    def _next(self) -> None:
        while self.running < self.slots and self._queues:
            # Few sources wait (at most ``queued``): a scan is cheap.
            source = min(self._queues, key=lambda s: (self._busy.get(s, 0), self._served.get(s, 0)))
            queue = self._queues[source]
            job, done = queue.popleft()
            self.waiting -= 1
            if not queue:
                del self._queues[source]
            self._run(source, job).chainDeferred(done)
