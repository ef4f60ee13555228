"""The HTTP site luna2d serves its resource tree from.

twisted.web keeps a request's whole body before any handler runs (in
memory, or in a temporary file past 100 kB), whatever its size and whether
or not the client has a token. ``BoundedRequest`` keeps at most
``common.MAX_BODY`` bytes: a body announced or found to be larger is read
and dropped as it arrives, never stored, and the request answers 400 with
a JSON message without reaching any handler."""

from __future__ import annotations

import json
from typing import Any

from twisted.web import server
from twisted.web.resource import Resource

from luna2d.resources.common import JSON_TYPE, MAX_BODY


class BoundedRequest(server.Request):
    """A twisted.web request whose body is capped at ``limit`` bytes."""

    limit = MAX_BODY

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.too_large = False
        self._received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.limit:
            self.too_large = True
            length = 0  # an in-memory buffer that will stay empty
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._received += len(data)
        if self._received > self.limit:
            # A chunked body that grew past the limit: drop what was kept.
            self.too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self.too_large:
            super().process()
            return
        self.site = self.channel.site
        body = json.dumps({"message": f"request body is larger than {self.limit >> 20} MiB"}).encode()
        self.setResponseCode(400)
        self.setHeader(b"content-type", JSON_TYPE)
        self.setHeader(b"content-length", str(len(body)).encode())
        self.write(body)
        self.finish()


def make_site(resource: Resource) -> server.Site:
    """The Site for ``resource``: bounded request bodies, no tracebacks."""
    site = server.Site(resource, requestFactory=BoundedRequest)
    site.displayTracebacks = False
    return site


__all__ = ["BoundedRequest", "make_site"]
