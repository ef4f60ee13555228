# -*- test-case-name: tests.test_requests -*-
"""The table of long-running and bulk requests (bulk control now, osimage
pack and clone later), and their per-item results.

A request has an id, a kind (``control``, ``config``: the status route that
answers for it), a total number of items and, in the order they land, one
:class:`Entry` per finished item. Readers poll it the way the luna CLI and
lpower do: each :meth:`RequestTable.read` hands over the entries that
arrived since the last read; the read that finds the request finished hands
over the last ones and drops the request, so the next read finds nothing
(the clients stop polling on that 404).

Bounds, so that no client can make the table grow without end:

- a finished request nobody reads is dropped ``expiry`` seconds after it
  finished (:data:`EXPIRY`, ten minutes);
- at most ``max_requests`` requests (:data:`MAX_REQUESTS`) and
  ``max_items`` items over all of them (:data:`MAX_ITEMS`) are kept; to make
  room a new request pushes out the oldest finished ones, and when running
  requests alone fill the table it is refused (:class:`Busy`, 503).

Pure: the time comes from the injected clock (``seconds()``), nothing here
schedules a call or touches I/O."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from luna2d.errors import Unavailable

EXPIRY = 600.0
MAX_REQUESTS = 1000
MAX_ITEMS = 200_000


class Clock(Protocol):
    """What the table needs of a reactor: the time."""

    def seconds(self) -> float: ...


class Busy(Unavailable):
    """Running requests fill the table: try again once some finish (503)."""


@dataclass(frozen=True)
class Entry:
    """One item's result: ``ok`` tells success from failure, ``detail`` is
    the value (a power state, SEL lines, a message) or the reason."""

    item: str
    ok: bool
    detail: Any
    at: float


@dataclass(frozen=True)
class Progress:
    """How far a request has come: items done out of ``total``."""

    done: int
    total: int
    finished: bool

    def as_json(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "finished": self.finished}


@dataclass
class Request:
    """One tracked request. Only its table changes it."""

    id: str
    kind: str
    subject: dict[str, str]
    total: int
    started: float
    entries: list[Entry] = field(default_factory=list)
    finished: float | None = None
    read_up_to: int = 0

    def progress(self) -> Progress:
        return Progress(len(self.entries), self.total, self.finished is not None)


@dataclass(frozen=True)
class Reading:
    """What one read hands over: the new entries, the progress after them
    and whether this read was the last (the request is gone after it)."""

    request: Request
    entries: list[Entry]
    progress: Progress
    last: bool


def random_id() -> str:
    """A request id nobody can guess (128 random bits, hex)."""
    return secrets.token_hex(16)


class RequestTable:
    """Requests by id, with their results, bounded and expiring."""

    def __init__(
        self,
        clock: Clock,
        expiry: float = EXPIRY,
        max_requests: int = MAX_REQUESTS,
        max_items: int = MAX_ITEMS,
        new_id: Callable[[], str] = random_id,
    ) -> None:
        self.clock = clock
        self.expiry = expiry
        self.max_requests = max_requests
        self.max_items = max_items
        self.new_id = new_id
        self._requests: dict[str, Request] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._requests)

    # -- starting and recording ---------------------------------------------------------------
    def start(self, kind: str, total: int, subject: dict[str, str] | None = None) -> Request:
        """A new running request of ``total`` items; :class:`Busy` when
        running requests leave no room for it."""
        if total < 0:
            raise ValueError("a request has no negative number of items")
        self._expire()
        self._make_room(total)
        request_id = self.new_id()
        while request_id in self._requests:
            request_id = self.new_id()
        request = Request(request_id, kind, dict(subject or {}), total, self.clock.seconds())
        self._requests[request_id] = request
        return request

    def record(self, request: Request, item: str, ok: bool, detail: Any) -> None:
        """One item of ``request`` is done. A request that was dropped
        meanwhile (expired, read to the end) takes no more entries."""
        if request.finished is not None or self._requests.get(request.id) is not request:
            return
        request.entries.append(Entry(item, ok, detail, self.clock.seconds()))

    def finish(self, request: Request) -> None:
        """``request`` has nothing more to come; its expiry starts now."""
        if request.finished is None:
            request.finished = self.clock.seconds()

    # -- reading ---------------------------------------------------------------------------------
    def read(self, kind: str, request_id: str) -> Reading | None:
        """The entries of request ``request_id`` that no read has handed
        over yet; None when there is no such request of this kind (never
        made, expired, or already read to its end). A read that finds the
        request finished is its last: the request is dropped."""
        self._expire()
        request = self._requests.get(request_id)
        if request is None or request.kind != kind:
            return None
        new = request.entries[request.read_up_to :]
        request.read_up_to = len(request.entries)
        last = request.finished is not None
        if last:
            del self._requests[request_id]
        return Reading(request, new, request.progress(), last)

    def peek(self, request_id: str) -> Request | None:
        """The request, without handing anything over (None when gone)."""
        self._expire()
        return self._requests.get(request_id)

    # -- bounds ------------------------------------------------------------------------------------
    def _expire(self) -> None:
        now = self.clock.seconds()
        gone = [
            key
            for key, request in self._requests.items()
            if request.finished is not None and now - request.finished >= self.expiry
        ]
        for key in gone:
            del self._requests[key]

    def _items(self) -> int:
        return sum(request.total for request in self._requests.values())

    def _make_room(self, total: int) -> None:
        if total > self.max_items:
            raise Busy(
                f"a request of {total} items is more than the {self.max_items} "
                f"luna2d tracks at once"
            )
        finished = sorted(
            (request for request in self._requests.values() if request.finished is not None),
            key=lambda request: (request.finished or 0.0, request.started),
        )
        while (
            len(self._requests) >= self.max_requests or self._items() + total > self.max_items
        ) and finished:
            del self._requests[finished.pop(0).id]
        if len(self._requests) >= self.max_requests:
            raise Busy(
                f"{len(self._requests)} requests are running, the most luna2d "
                f"tracks at once; try again when some have finished"
            )
        if self._items() + total > self.max_items:
            raise Busy(
                f"running requests hold {self._items()} items and this one has {total}: "
                f"more than the {self.max_items} luna2d tracks at once; "
                f"try again when some have finished"
            )


__all__ = [
    "EXPIRY",
    "MAX_ITEMS",
    "MAX_REQUESTS",
    "Busy",
    "Entry",
    "Progress",
    "Reading",
    "Request",
    "RequestTable",
]
