# -*- test-case-name: tests.test_jsonlist -*-
"""Long JSON answers built a slice at a time (issue 9, point 10).

``GET /config/node`` of 10,000 nodes renders 10,000 views and 17 MB of
JSON: 0.58 s of CPU in one handler call held the reactor. Here the answer
``{"config": {kind: {name: view, ...}}}`` is encoded one object at a time
by steps of the site's ``task.Cooperator``, each step ending after
``PER_STEP`` objects, so every other request, packet and timer runs
between them. The bytes are those ``common.reply`` writes for the same
dict: ``json.dumps`` with the same separators of each name and each view,
joined with the same punctuation, is the same text as ``json.dumps`` of
the whole (it is ASCII-escaped either way). The answer is written once,
when complete, through the same path as any handler's bytes, so status
and headers are unchanged too.

A client that goes away mid-list cancels the Deferred (Klein does, on a
lost connection): the steps stop and what they built is dropped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from twisted.internet import defer, task

from luna2d.resources.common import JSON_TYPE

# About 60 µs of CPU an object for a node (view and JSON) on the
# development machine: 200 make a step of about 12 ms. The cooperator runs
# further steps in the same reactor turn only while its turn is under
# 10 ms, so a turn stays under ~25 ms.
PER_STEP = 200

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def envelope_sliced(
    request: Any,
    cooperator: task.Cooperator,
    kind: str,
    items: Iterable[tuple[str, Any]],
    per_step: int | None = None,
) -> defer.Deferred[bytes]:
    """``{"config": {kind: {name: value, ...}}}`` as ``reply`` would
    encode it, with ``items`` (name, value) consumed ``per_step`` at a
    time (default ``PER_STEP``) by ``cooperator``; the Deferred fires with
    the whole body."""
    per = per_step or PER_STEP
    parts: list[bytes] = [b'{"config":{', _ENCODE(kind).encode("ascii"), b":{"]
    source = iter(items)

    def steps() -> Iterator[None]:
        first = True
        while True:
            count = 0
            chunk: list[str] = []
            for name, value in source:
                if not first or chunk:
                    chunk.append(",")
                chunk.append(_ENCODE(name))
                chunk.append(":")
                chunk.append(_ENCODE(value))
                count += 1
                if count >= per:
                    break
            if chunk:
                first = False
                parts.append("".join(chunk).encode("ascii"))
            if count < per:
                return
            yield None

    work = cooperator.cooperate(steps())

    cancelled: list[bool] = []

    def cancel(_: object) -> None:
        # Only while the steps run: the last one fires ``result`` at once.
        cancelled.append(True)
        work.stop()

    result: defer.Deferred[bytes] = defer.Deferred(cancel)

    def done(_: object) -> None:
        parts.append(b"}}}")
        request.setResponseCode(200)
        request.setHeader(b"content-type", JSON_TYPE)
        result.callback(b"".join(parts))

    def failed(reason: Any) -> None:
        if not cancelled:  # else the client went away: ``result`` fails as cancelled
            result.errback(reason)

    work.whenDone().addCallbacks(done, failed)
    return result
