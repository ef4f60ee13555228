# -*- test-case-name: tests.clients.test_control -*-
"""``GET /config/status/<request_id>``: progress of the long-running
``/config`` requests (osimage pack, clone, grab, push) tracked in the request
table (luna2d.requests), in the form the luna CLI polls.

Each look answers 200 with the lines that arrived since the previous one,
joined by ``;;`` in ``message`` (the CLI splits there and prints each), an
integer ``status`` (200 while every item so far succeeded, else 500: the CLI
marks the lines failed), the ``request_id`` and the ``progress``. Once the
request has finished and every line was handed over, the answer is 404: the
CLI stops polling on it."""

from __future__ import annotations

from typing import Any

from luna2d.errors import NotFound
from luna2d.requests import Reading, RequestTable
from luna2d.resources.auth import Auth
from luna2d.resources.common import reply

KIND = "config"


def config_answer(reading: Reading) -> dict[str, Any]:
    """The body of one look at a /config request."""
    lines = [
        f"{entry.item}: {entry.detail}" if entry.item else str(entry.detail)
        for entry in reading.entries
    ]
    failed = any(not entry.ok for entry in reading.request.entries)
    return {
        "request_id": reading.request.id,
        "message": ";;".join(lines),
        "status": 500 if failed else 200,
        "progress": reading.progress.as_json(),
    }


def config_status(auth: Auth, requests: RequestTable, request: Any, request_id: str) -> bytes:
    """Answer one ``GET /config/status/<request_id>`` (admin tokens: only
    they start such requests, and a look hands the lines over)."""
    auth.admin(request)
    reading = requests.read(KIND, request_id)
    if reading is None:
        raise NotFound(
            f"no config request {request_id[:80]!r}: it never was, or it has "
            f"finished and every line was handed over, or it expired"
        )
    return reply(request, config_answer(reading))


__all__ = ["KIND", "config_answer", "config_status"]
