# -*- test-case-name: tests.test_jsonbody -*-
"""Large JSON bodies parsed in slices on the reactor, with the answers and
errors of ``common.read_json``.

A thread does not help here: CPython's JSON parser holds the GIL for the
whole of a large document (a 34 MiB body stalled the reactor 1.4 s from a
thread). So the parse is cut in steps that each cost at most a 64 KiB
window: a value that fits a window is decoded whole by the C parser; a
larger object or array is opened here, member by member, with the same
error messages and positions as the standard decoder; a long string or
number is decoded directly (linear in its length). Between steps the
cooperator gives the reactor back; the garbage collector waits meanwhile
(see ``luna2d.collector``).

The checks ``read_json`` makes after a parse are made on the way: an
unpaired surrogate is reported after a successful parse, as there; nesting
past ``MAX_DEPTH`` is reported as soon as it is seen (``read_json`` reports
a malformed body first, this reports the depth first)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator, Iterator
from typing import Any

from twisted.internet import defer, task

from luna2d import collector
from luna2d.errors import Invalid
from luna2d.resources.common import (
    _SURROGATE_ESCAPE,
    MAX_DEPTH,
    _depth,
    _finite,
    _has_surrogate,
    _no_constant,
)

WINDOW = 64 * 1024
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


class _TooDeep(Exception):
    pass


def parse_sliced(raw: bytes, cooperator: task.Cooperator) -> defer.Deferred[tuple[bool, Any]]:
    """Parse ``raw`` in steps run by ``cooperator``: (True, value) or
    (False, Invalid) as ``read_json`` would answer (the size is checked by
    the caller)."""
    out: list[tuple[bool, Any]] = []

    def steps() -> Iterator[None]:
        # Building millions of containers sets off full garbage collections
        # whose passes over the half-built body stalled the reactor 230 ms at
        # a time; JSON values hold no reference cycles, so automatic
        # collection waits until the parse ends (reference counting frees
        # them as before).
        collector.pause()
        try:
            value = yield from _steps(raw)
            out.append((True, value))
        except Invalid as exc:
            out.append((False, exc))
        finally:
            collector.resume()

    done = cooperator.cooperate(steps()).whenDone()
    return done.addCallback(lambda _: out[0])


def parse(raw: bytes) -> Any:
    """The same parse run to its end at once (for tests and small callers)."""
    steps = _steps(raw)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


# Decoding and the surrogate search go over the whole body; done in 1 MiB
# pieces, each step costs about a millisecond instead of 25 ms at 34 MiB.
CHUNK = 1 << 20


def _decode(raw: bytes) -> Generator[None, None, str]:
    """``raw`` decoded as ``read_json`` decodes it, a piece per step; a
    decoding error is the one-shot decoder's, with its positions."""
    encoding = json.detect_encoding(raw)
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    parts: list[str] = []
    try:
        for start in range(0, len(raw), CHUNK):
            piece = raw[start : start + CHUNK]
            parts.append(decoder.decode(piece, final=start + CHUNK >= len(raw)))
            yield
    except UnicodeDecodeError:
        raw.decode(encoding)  # raises the same error with whole-body positions
        raise
    return "".join(parts)


def _has_surrogate_escape(text: str) -> Generator[None, None, bool]:
    """Whether ``text`` holds a ``\\udXXX`` escape, searched a piece per step
    (pieces overlap so that an escape across a boundary is found)."""
    for start in range(0, len(text), CHUNK):
        if _SURROGATE_ESCAPE.search(text, max(0, start - 8), start + CHUNK) is not None:
            return True
        yield
    return False


def _steps(raw: bytes) -> Generator[None, None, Any]:
    if not raw.strip():
        raise Invalid("request body is empty; a JSON object is required")
    try:
        text = yield from _decode(raw)
        surrogates = yield from _has_surrogate_escape(text)
        value, bad = yield from _parse(text, surrogates)
    except _TooDeep:
        raise Invalid(f"request body is nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"request body is not valid JSON: {str(exc)[:120]}") from None
    if bad:
        raise Invalid(
            "request body is not valid JSON: it holds an unpaired UTF-16 surrogate (\\udXXX)"
        )
    return value


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _error(message: str, text: str, pos: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, text, pos)


def _parse(text: str, surrogates: bool) -> Generator[None, None, tuple[Any, bool]]:
    """(value, holds an unpaired surrogate) of the JSON document ``text``;
    yields between steps."""
    size = len(text)
    bad = False
    stack: list[list[Any]] = []  # [container, pending key]
    pos = _skip(text, 0)
    steps = 0
    while True:
        # A value starts at ``pos``.
        value, end, opened = _whole(text, pos, size)
        if opened is not None or end - pos > 4096:
            yield None  # a window's work was done: give the reactor back
        if opened is None:
            if surrogates and not bad and _has_surrogate(value):
                bad = True
            if isinstance(value, (dict, list)) and len(stack) + _depth(value) > MAX_DEPTH:
                raise _TooDeep()
        else:
            if len(stack) + 1 > MAX_DEPTH:
                raise _TooDeep()
            pos = _skip(text, pos + 1)
            char = text[pos : pos + 1]
            if opened == "{":
                if char == "}":
                    value, end = {}, pos + 1
                elif char == '"':
                    key, pos = _key(text, pos)
                    bad = bad or (surrogates and _has_surrogate(key))
                    stack.append([{}, key])
                    continue
                else:
                    raise _error("Expecting property name enclosed in double quotes", text, pos)
            else:
                if char == "]":
                    value, end = [], pos + 1
                else:
                    stack.append([[], None])
                    continue
        # ``value`` ends at ``end``: hand it to its container, close what ends.
        while True:
            steps += 1
            if steps % 128 == 0:
                yield None
            if not stack:
                tail = _skip(text, end)
                if tail != size:
                    raise _error("Extra data", text, tail)
                return value, bad
            frame = stack[-1]
            container = frame[0]
            after = _skip(text, end)
            char = text[after : after + 1]
            is_object = isinstance(container, dict)
            if is_object:
                container[frame[1]] = value
            else:
                container.append(value)
            if char == ("}" if is_object else "]"):
                stack.pop()
                value, end = container, after + 1
                continue
            if char != ",":
                raise _error("Expecting ',' delimiter", text, after)
            pos = _skip(text, after + 1)
            if is_object:
                if text[pos : pos + 1] != '"':
                    raise _error("Expecting property name enclosed in double quotes", text, pos)
                key, pos = _key(text, pos)
                bad = bad or (surrogates and _has_surrogate(key))
                frame[1] = key
            break


def _key(text: str, quote: int) -> tuple[str, int]:
    """The key whose opening quote is at ``quote``, and where its value starts."""
    key, end = _scanstring(text, quote + 1, True)
    end = _skip(text, end)
    if text[end : end + 1] != ":":
        raise _error("Expecting ':' delimiter", text, end)
    return key, _skip(text, end + 1)


def _whole(text: str, pos: int, size: int) -> tuple[Any, int, str | None]:
    """(value, end, None) when the value at ``pos`` is decoded whole at the
    cost of at most a window (or of its own length for a string or number);
    (None, pos, "{" or "[") for a container to open member by member."""
    if size - pos <= WINDOW:
        try:
            value, end = _DECODER.raw_decode(text, pos)
            return value, end, None
        except RecursionError:
            pass  # nested too deep for the C parser: opened below, depth-checked
    elif text[pos : pos + 1] in ("{", "["):
        window = text[pos : pos + WINDOW]
        try:
            value, end = _DECODER.raw_decode(window)
            if end < len(window):  # ended inside the window, so not cut by it
                return value, pos + end, None
        except (ValueError, RecursionError):
            pass  # cut by the window, or an error found again below with its true position
    char = text[pos : pos + 1]
    if char in ("{", "["):
        return None, pos, char
    value, end = _DECODER.raw_decode(text, pos)
    return value, end, None
