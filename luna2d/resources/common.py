# -*- test-case-name: tests.test_review_inputs,tests.test_api_config,tests.test_jsonbody -*-
"""What every resource shares: JSON in and out, and the one mapping from
errors to status codes."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import RequestRedirect

from luna2d.errors import InsufficientStorage, Invalid, LunaError, disk_full

log = Logger()
MAX_BODY = 64 * 1024 * 1024
# POST /token is the one body read before any token is checked: a login is
# a few hundred bytes, so no one without a token makes the reactor parse more.
MAX_LOGIN_BODY = 64 * 1024
JSON_TYPE = b"application/json"
DISK_FULL = "disk full: the daemon could not write what this request needs; free space and retry"


def reply(request: Any, body: Any, code: int = 200) -> bytes:
    """A JSON answer."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def message(request: Any, text: str, code: int) -> bytes:
    return reply(request, {"message": text}, code)


def no_content(request: Any) -> bytes:
    request.setResponseCode(204)
    return b""


def read_json(request: Any, limit: int = MAX_BODY) -> Any:
    """The request body as JSON (at most ``limit`` bytes), or Invalid naming
    what is wrong. A large body was parsed in slices by the HTTP edge
    (``site.EdgeRequest``) before the handler ran: its result is used."""
    parsed = getattr(request, "json_body", None)
    if parsed is not None and request.content is not None:
        if request.content.seek(0, 2) > limit:
            raise Invalid(f"request body is larger than {_size(limit)}")
        ok, value = parsed
        if not ok:
            raise value
        return value
    raw = request.content.read(limit + 1) if request.content is not None else b""
    if len(raw) > limit:
        raise Invalid(f"request body is larger than {_size(limit)}")
    if not raw.strip():
        raise Invalid("request body is empty; a JSON object is required")
    try:
        # Decoded strictly: json.loads(bytes) would let encoded surrogates through.
        text = raw.decode(json.detect_encoding(raw))
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"request body is not valid JSON: {str(exc)[:120]}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(body):
        # "\ud800" parses, but no such text can be stored, encrypted or answered.
        raise Invalid(
            "request body is not valid JSON: it holds an unpaired UTF-16 surrogate (\\udXXX)"
        )
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        # No luna body comes close; deeper values break repr() in error messages.
        raise Invalid(f"request body is nested deeper than {MAX_DEPTH} levels")
    return body


MAX_DEPTH = 64


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


def _no_constant(name: str) -> Any:
    # Python's parser takes NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def envelope(body: Any, *path: str) -> Any:
    """Walk ``{"config": {"node": {...}}}`` along ``path`` with clear errors."""
    current = body
    walked: list[str] = []
    for key in path:
        if not isinstance(current, dict):
            where = ".".join(walked) or "the body"
            raise Invalid(f"{where}: expected a JSON object holding {key!r}")
        if key not in current:
            where = ".".join(walked) or "the body"
            raise Invalid(f"{where}: missing {key!r}")
        current = current[key]
        walked.append(key)
    return current


def single(body: Any, kind: str, name: str) -> Any:
    """The one object named ``name`` in a ``{"config": {kind: {name: ...}}}`` body."""
    objects = envelope(body, "config", kind)
    if not isinstance(objects, dict):
        raise Invalid(f"config.{kind}: expected a JSON object keyed by name")
    if name not in objects:
        names = ", ".join(repr(k) for k in list(objects)[:3]) or "nothing"
        raise Invalid(f"config.{kind}: the path names {name!r} but the body holds {names}")
    if len(objects) != 1:
        raise Invalid(f"config.{kind}: holds more than the one object {name!r}")
    return objects[name]


def install_error_handlers(app: Klein) -> None:
    """Map every error of a Klein app to a JSON answer; nothing else escapes."""

    @app.handle_errors(LunaError)
    def luna_error(self: Any, request: Any, failure: Failure) -> bytes:
        error = failure.value
        assert isinstance(error, LunaError)
        return message(request, error.message, error.status)

    def route_missing(request: Any) -> bytes:
        if request.method not in (b"GET", b"POST", b"HEAD"):
            return message(
                request, f"method {request.method.decode('latin-1')} is not supported", 405
            )
        return message(request, f"no such endpoint: {request.path.decode('utf-8', 'replace')}", 404)

    @app.handle_errors(RouteNotFound)
    def not_found(self: Any, request: Any, failure: Failure) -> bytes:
        return route_missing(request)

    @app.handle_errors(RequestRedirect)
    def redirect(self: Any, request: Any, failure: Failure) -> bytes:
        # werkzeug redirects paths with empty segments (a//b); no endpoint has one.
        return route_missing(request)

    @app.handle_errors(MethodNotAllowed)
    def not_allowed(self: Any, request: Any, failure: Failure) -> bytes:
        method = request.method.decode("latin-1")
        return message(
            request,
            f"method {method} is not supported on {request.path.decode('utf-8', 'replace')}",
            405,
        )

    @app.handle_errors(Exception)
    def unexpected(self: Any, request: Any, failure: Failure) -> bytes:
        if failure.value is not None and disk_full(failure.value):
            # A handler that wrote a file (not the store, which says so itself).
            log.error(
                "disk full answering {path}: {error}",
                path=request.path,
                error=failure.getErrorMessage(),
            )
            return message(request, DISK_FULL, InsufficientStorage.status)
        log.failure("unexpected error answering {path}", failure, path=request.path)
        return message(request, "internal error; the daemon's log has the details", 500)
