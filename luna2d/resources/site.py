# -*- test-case-name: tests.test_edge,tests.integration.test_edge,tests.integration.test_logging -*-
# mypy: disable-error-code="no-untyped-call"
# (twisted.web's Request and Resource are not annotated)
"""The HTTP edge: the Site luna2d serves its resource tree from, and what a
request must show before its body is taken.

twisted.web would keep a request's whole body before any handler runs (in a
temporary file past 100 kB), whatever its size and whoever sends it.
``EdgeRequest`` decides from the request line and headers alone, before
the first byte of the body is kept:

- a body is taken only from a valid token (any role), except on
  ``POST /token``; without one the answer is 401 at once and the body is
  read and dropped, never stored;
- its size may not pass what the endpoint and the token's role allow
  (``body_limit``): 413 at once, or as soon as a chunked body grows past it;
- bodies are kept in memory, and the sum of those in flight is bounded
  (``[API] MAX_BODY_MEMORY``; anonymous bodies get a sixteenth of it): past
  it, 503 at once;
- a request must arrive whole within ``[API] BODY_TIMEOUT`` of its request
  line, and a body may not pause longer than ``[API] BODY_IDLE_TIMEOUT``:
  otherwise 408 and the connection is closed.

Answers given before the body arrived carry ``Connection: close``; the rest
of the body is dropped as it comes and the connection closed when it ends
(or at the timeouts). Bodies above ``PARSE_IN_SLICES`` are parsed as JSON in
slices (``jsonbody``) before the handler runs, so no body stalls the
reactor; ``read_json`` hands the handler that result.

Each answered request is logged in one line (``LunaSite.log``): method,
path without its query, status, the user it was answered for (the token's
user, the node of a node token, the username a login names) and the
client's address; a 4xx adds the answer's ``message``, why it was
refused (a 5xx too, what failed). Refusals of identity (401, 403, 429) are warnings, 5xx errors,
the rest info. Tokens and passwords never reach the log: headers are not
logged, and a message that would echo a string the body held under a
password, secret, token, key, content or community field is logged with
that string masked."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from twisted.internet import task
from twisted.logger import Logger, LogLevel
from twisted.web import server
from twisted.web.http import RESPONSES
from twisted.web.resource import Resource

from luna2d.errors import LunaError
from luna2d.resources import jsonbody
from luna2d.resources.common import JSON_TYPE, MAX_BODY, MAX_LOGIN_BODY, _size

log = Logger()

# The largest body each role may send, and the endpoints with a smaller one.
ROLE_LIMITS = {"admin": MAX_BODY, "node": 1 << 20, "readonly": MAX_LOGIN_BODY}
PATH_LIMITS = (("/monitor/", 1 << 20),)
# A body larger than this is parsed in slices before its handler runs.
PARSE_IN_SLICES = 256 * 1024
# How much of a refusal's answer is kept for the log line, and logged.
REFUSAL_BYTES = 4096
REFUSAL_CHARS = 300
# Body fields whose string values are masked in the log.
SECRET_KEYS = re.compile(r"pass|secret|token|key|content|community|credential", re.IGNORECASE)
MASK = "***"


@dataclass(frozen=True)
class EdgeSettings:
    """What the edge enforces (``[API]`` keys, see luna2d.config)."""

    body_memory: int = 256 << 20
    body_idle_timeout: float = 30.0
    body_timeout: float = 300.0


class BodyBudget:
    """The bytes of request bodies held in memory, against a bound; the
    anonymous ones (POST /token) against a sixteenth of it, so that no one
    without a token can take the room writes need."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.anonymous_total = max(total // 16, MAX_LOGIN_BODY)
        self.used = 0
        self.anonymous = 0

    def take(self, size: int, anonymous: bool) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) past the bound."""
        if self.used + size > self.total:
            return False
        if anonymous and self.anonymous + size > self.anonymous_total:
            return False
        self.used += size
        if anonymous:
            self.anonymous += size
        return True

    def give(self, size: int, anonymous: bool) -> None:
        """Release what ``take`` reserved."""
        self.used -= size
        if anonymous:
            self.anonymous -= size


def body_limit(method: bytes, path: bytes, role: str | None) -> int:
    """The largest body a request may carry: by the token's role (None: no
    token, only POST /token takes a body) and the endpoint."""
    if role is None:
        return MAX_LOGIN_BODY
    limit = ROLE_LIMITS.get(role, MAX_LOGIN_BODY)
    text = path.split(b"?", 1)[0].decode("latin-1")
    for prefix, cap in PATH_LIMITS:
        if text.startswith(prefix):
            limit = min(limit, cap)
    return limit


class EdgeRequest(server.Request):
    """A twisted.web request that checks token, size and room from its
    headers before it takes a body, keeps the body in memory, and times out
    slow senders."""

    # luna2d takes JSON, never forms: no multipart parsing on the reactor.
    _parsePOSTFormSubmission = False

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        site = getattr(self.channel, "site", None)
        self.edge: LunaSite | None = site if isinstance(site, LunaSite) else None
        self.answered = False  # an answer went out before the body was read
        self.json_body: tuple[bool, Any] | None = None  # (ok, value or error), parsed in slices
        self._limit = MAX_BODY
        self._received = 0
        self._held = 0
        self._anonymous = True
        self._dropping = False
        self._idle: Any = None
        self._deadline: Any = None
        self.refusal = b""  # the start of an error answer's body, for the log
        if self.edge is not None:
            self._deadline = self.edge.clock.callLater(
                self.edge.settings.body_timeout,
                self._timed_out,
                f"the request did not arrive within {self.edge.settings.body_timeout:g} s",
            )
        self.notifyFinish().addBoth(lambda _: self._release())

    # -- headers ----------------------------------------------------------------------
    def gotLength(self, length: int | None) -> None:
        # Always in memory: the budget, not the temp disk, bounds what is held.
        self.content = BytesIO()
        if self.edge is None or length == 0:
            return
        channel = self.channel
        method = getattr(channel, "_command", b"")
        path = getattr(channel, "_path", b"")
        try:
            self._admit(method, path, length)
        except LunaError as exc:
            self._answer_early(exc.status, exc.message)
        except Exception:  # noqa: BLE001 - a failed check must not leave the body unguarded
            log.failure("checking a request's headers")
            self._answer_early(500, "internal error; the daemon's log has the details")
        if not self._dropping:
            self._arm_idle()

    def _admit(self, method: bytes, path: bytes, length: int | None) -> None:
        """Raise the LunaError a request with these headers is refused with."""
        assert self.edge is not None
        role: str | None = None
        if not (method == b"POST" and path.split(b"?", 1)[0] == b"/token"):
            role = self.edge.auth.need(self).role
        self._anonymous = role is None
        self._limit = body_limit(method, path, role)
        if length is not None and length > self._limit:
            raise _TooLarge(self._limit)
        if length is not None:
            self._reserve(length)

    def _reserve(self, size: int) -> None:
        assert self.edge is not None
        if not self.edge.budget.take(size, self._anonymous):
            raise _Busy()
        self._held += size

    # -- body -------------------------------------------------------------------------
    def handleContentChunk(self, data: bytes) -> None:
        if self._dropping:
            self._arm_idle()
            return
        self._received += len(data)
        if self.edge is not None:
            if self._received > self._limit:
                self._answer_early(413, _TooLarge(self._limit).message)
                self._arm_idle()
                return
            if self._received > self._held:
                try:
                    self._reserve(self._received - self._held)
                except _Busy as exc:
                    self._answer_early(exc.status, exc.message)
                    self._arm_idle()
                    return
            self._arm_idle()
        elif self._received > self._limit:
            self._answer_early(413, _TooLarge(self._limit).message)
            return
        super().handleContentChunk(data)

    def write(self, data: bytes) -> None:
        if self.code >= 400 and len(self.refusal) < REFUSAL_BYTES:
            self.refusal += data[: REFUSAL_BYTES - len(self.refusal)]
        super().write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._stop_timers()
        super().requestReceived(command, path, version)

    def process(self) -> None:
        channel: Any = self.channel
        if self.answered:
            # The answer went out already; the body that followed is dropped.
            channel.loseConnection()
            return
        content: Any = self.content
        size = content.seek(0, 2)
        content.seek(0)
        if self.method == b"POST" and size > PARSE_IN_SLICES and self.edge is not None:
            raw = content.getvalue()
            parsed = jsonbody.parse_sliced(raw, self.edge.cooperator)

            def done(result: tuple[bool, Any]) -> None:
                self.json_body = result
                if not self._disconnected:
                    super(EdgeRequest, self).process()

            parsed.addCallback(done)
            parsed.addErrback(lambda f: log.failure("parsing a request body", f))
            return
        super().process()

    # -- early answers and timeouts ---------------------------------------------------------
    def _answer_early(self, code: int, text: str) -> None:
        """Answer now, before the body is in, and drop what is left of it."""
        self._dropping = True
        self.content = BytesIO()
        self._release()
        if self.answered or self._disconnected:
            return
        self.answered = True
        # No "100 Continue" for a body that is refused.
        self.requestHeaders.removeHeader(b"expect")
        channel: Any = self.channel
        channel.persistent = False
        body = json.dumps({"message": text}).encode()
        version = getattr(channel, "_version", b"HTTP/1.1") or b"HTTP/1.1"
        reason = RESPONSES.get(code, b"Error")
        head = (
            version
            + b" %d " % code
            + reason
            + b"\r\ncontent-type: "
            + JSON_TYPE
            + b"\r\ncontent-length: %d\r\nconnection: close\r\n" % len(body)
        )
        if code == 503:
            head += b"retry-after: 1\r\n"
        channel.transport.write(head + b"\r\n" + body)
        path = (getattr(channel, "_path", b"") or b"-").split(b"?", 1)[0]
        client = self.getClientAddress()
        log.emit(
            _level(code),
            "{method} {path} {code} user={user} from {client}: {why} (before the body)",
            method=(getattr(channel, "_command", b"") or b"-").decode("latin-1"),
            path=path.decode("utf-8", "replace"),
            code=code,
            user=request_user(self, self.edge.auth) if self.edge is not None else "-",
            client=getattr(client, "host", "-"),
            why=text,
        )

    def _arm_idle(self) -> None:
        if self.edge is None:
            return
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.edge.settings.body_idle_timeout)
            return
        self._idle = self.edge.clock.callLater(
            self.edge.settings.body_idle_timeout,
            self._timed_out,
            f"the request body paused longer than {self.edge.settings.body_idle_timeout:g} s",
        )

    def _timed_out(self, text: str) -> None:
        self._stop_timers()
        if self._disconnected:
            return
        if not self.answered:
            self._answer_early(408, text)
        channel: Any = self.channel
        transport = channel.transport
        if transport is not None:
            transport.loseConnection()
            # A peer that does not read its answer is cut off a little later.
            assert self.edge is not None
            self.edge.clock.callLater(5, _abort, transport)

    def _stop_timers(self) -> None:
        for timer in (self._deadline, self._idle):
            if timer is not None and timer.active():
                timer.cancel()
        self._deadline = self._idle = None

    def _release(self) -> None:
        if self._held and self.edge is not None:
            self.edge.budget.give(self._held, self._anonymous)
        self._held = 0

    def connectionLost(self, reason: Any) -> None:
        self._stop_timers()
        self._release()
        super().connectionLost(reason)


def _abort(transport: Any) -> None:
    if not getattr(transport, "disconnected", True):
        transport.abortConnection()


class _TooLarge(LunaError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {_size(limit)}")


class _Busy(LunaError):
    status = 503

    def __init__(self) -> None:
        super().__init__("too many request bodies are in flight; try again shortly")


class LunaSite(server.Site):
    """The Site with what the edge needs: the token checker, the settings,
    the shared body budget, the clock its timers run on."""

    def __init__(self, resource: Resource, auth: Any, settings: EdgeSettings, clock: Any) -> None:
        super().__init__(resource, requestFactory=EdgeRequest, reactor=clock)
        self.auth = auth
        self.settings = settings
        self.clock = clock
        self.budget = BodyBudget(settings.body_memory)
        self.cooperator = task.Cooperator(scheduler=lambda step: clock.callLater(0, step))
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        """One line per answered request (see the module docstring)."""
        code = int(request.code)
        why = refusal_reason(request) if code >= 400 else None
        log.emit(
            _level(code),
            "{method} {path} {code} user={user} from {client} agent={agent!r}{why}",
            method=request.method.decode("latin-1"),
            path=request.path.decode("utf-8", "replace"),
            code=code,
            user=request_user(request, self.auth),
            client=getattr(request.getClientAddress(), "host", "-"),
            agent=_agent(request),
            why=f": {why}" if why else "",
        )


def _agent(request: Any) -> str:
    """The client's User-Agent for the log: printable ASCII only, at most
    100 characters, so that a client cannot forge or flood log lines."""
    raw = request.getHeader(b"user-agent") or b""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    return "".join(c for c in raw[:100] if " " <= c <= "~")


def _level(code: int) -> Any:
    """The LogLevel (an untyped constant) of an answer's line: refusals of
    identity are warnings, failures errors, the rest info."""
    level = LogLevel.info
    if code >= 500:
        level = LogLevel.error
    elif code in (401, 403, 429):
        level = LogLevel.warn
    return level


def _body(request: Any) -> Any:
    """The request's JSON body, if it is small or was parsed already; else None."""
    parsed = getattr(request, "json_body", None)
    if parsed is not None:
        return parsed[1] if parsed[0] else None
    content = getattr(request, "content", None)
    if content is None or getattr(request, "method", None) != b"POST":
        return None
    try:
        raw = content.getvalue()
    except (AttributeError, ValueError):
        return None
    if not raw or len(raw) > PARSE_IN_SLICES:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _secret_strings(value: Any, under_secret: bool = False) -> set[str]:
    """The strings of ``value`` held under a secret-looking key."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= _secret_strings(item, under_secret or bool(SECRET_KEYS.search(str(key))))
    elif isinstance(value, list):
        for item in value:
            found |= _secret_strings(item, under_secret)
    elif under_secret and isinstance(value, (str, int, float)) and str(value):
        found.add(str(value))
    return found


def request_user(request: Any, auth: Any) -> str:
    """Who a request was answered for, as the log names them."""
    try:
        who = auth.principal(request)
    except LunaError as exc:
        return f"- ({exc.message})"
    if who is not None:
        return f"node:{who.node}" if who.role == "node" else str(who.name)
    if getattr(request, "method", None) == b"POST" and getattr(request, "path", None) == b"/token":
        body = _body(request)
        name = body.get("username") if isinstance(body, dict) else None
        if isinstance(name, str) and name:
            return json.dumps(name[:64])
    return "-"


def refusal_reason(request: Any) -> str | None:
    """An error answer's message, with the body's secrets masked, shortened."""
    raw = getattr(request, "refusal", b"")
    try:
        text = json.loads(raw).get("message")
    except (ValueError, AttributeError):
        return None
    if not isinstance(text, str):
        return None
    forms: set[str] = set()
    for secret in _secret_strings(_body(request)):
        # as sent, and as a repr() or JSON string in a message would echo it
        forms |= {
            secret,
            repr(secret)[1:-1],
            json.dumps(secret)[1:-1],
            secret.replace("\\", "\\\\").replace("'", "\\'"),
        }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    text = " ".join(text.split())
    return text if len(text) <= REFUSAL_CHARS else text[: REFUSAL_CHARS - 3] + "..."


# What the plain boot listener serves when the API is https: what iPXE and
# the node installer fetch, and the reports the installer sends back.
BOOT_READS = ("/boot", "/files", "/version")
BOOT_WRITES = ("/monitor/node/", "/monitor/status/", "/config/node/")


class BootOnly(Resource):
    """The resource tree as the plain boot listener shows it: GET and HEAD
    of the boot paths for anyone, the installer's POSTs for node tokens
    only; everything else is 404 pointing at the https API."""

    isLeaf = True

    def __init__(self, inner: Resource, auth: Any) -> None:
        super().__init__()
        self.inner = inner
        self.auth = auth

    def render(self, request: Any) -> Any:
        path = request.path.decode("latin-1")
        if request.method in (b"GET", b"HEAD") and _under(path, BOOT_READS):
            return self.inner.render(request)
        if request.method == b"POST" and path.startswith(BOOT_WRITES):
            try:
                role = self.auth.need(request).role
            except LunaError as exc:
                return _answer(request, exc.status, exc.message)
            if role == "node":
                return self.inner.render(request)
            return _answer(request, 403, "the boot port takes only node reports; use the https API")
        return _answer(request, 404, f"{path} is not served on the boot port; use the https API")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _answer(request: Any, code: int, text: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    return json.dumps({"message": text}).encode()


def boot_only(resource: Resource, auth: Any) -> Resource:
    """``resource`` limited to what the plain boot listener serves."""
    return BootOnly(resource, auth)


def make_site(
    resource: Resource, auth: Any, settings: EdgeSettings | None = None, clock: Any = None
) -> LunaSite:
    """The Site for ``resource``: tokens and sizes checked before bodies,
    bounded bodies in memory, slow senders timed out, no tracebacks."""
    if clock is None:
        from twisted.internet import reactor as clock
    return LunaSite(resource, auth, settings or EdgeSettings(), clock)


# The name this request class had before the edge checked tokens.
BoundedRequest = EdgeRequest

__all__ = [
    "BodyBudget",
    "BootOnly",
    "BoundedRequest",
    "EdgeRequest",
    "EdgeSettings",
    "LunaSite",
    "body_limit",
    "boot_only",
    "make_site",
]
