"""Shared test helpers: a store on a real SQLite file, the whole HTTP API
in process through StubTreq, tokens of every role, password hashing run
inline, and a TestCase for tests that wait on the real reactor."""

from __future__ import annotations

import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from treq.testing import StubTreq
from twisted.internet import defer, protocol
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from luna2d.config import (
    APIConfig,
    Config,
    DatabaseConfig,
    DHCPConfig,
    FilesConfig,
    ServiceConfig,
    TFTPConfig,
)
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.resources.site import make_site
from luna2d.store import bootstrap, db
from luna2d.store import store as store_module
from luna2d.store.crypto import Crypto
from luna2d.store.store import Store

ADMIN = "luna"
PASSWORD = "luna-test-password"
SECRET = "test-secret-key-0123456789abcdef"


def env(kind: str, name: str, fields: Any) -> dict:
    """A ``{"config": {kind: {name: fields}}}`` body."""
    return {"config": {kind: {name: fields}}}


def make_config(folder: Path, bootstrap_enabled: bool = True) -> Config:
    return Config(
        path=folder / "luna.ini",
        api=APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0),
        database=DatabaseConfig("SQLite3", folder / "luna.db"),
        files=FilesConfig(folder / "files", folder / "images", folder / "luna.key"),
        dhcp=DHCPConfig(False),
        tftp=TFTPConfig(False),
        dns=ServiceConfig(False),
        bootstrap=bootstrap_enabled,
        controller_name="controller",
        controller_ip=None,
        cluster_name="cluster",
        log_level="info",
    )


def result_of(d: defer.Deferred) -> Any:
    """The result of a Deferred that must already have fired."""
    box: list = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    if hasattr(box[0], "raiseException"):
        box[0].raiseException()
    return box[0]


def load_store(cfg: Config, clock: Clock | None = None) -> Store:
    """A Store on ``cfg``'s database and key file, run synchronously
    (SyncPool), migrated and loaded as a (re)start loads it; nothing is
    seeded. The caller closes its pool."""
    store = Store(
        db.SyncPool(cfg.database.database), Crypto(cfg.files.keyfile.read_bytes()), clock or Clock()
    )
    result_of(defer.ensureDeferred(store.open()))
    return store


def open_store(
    folder: Path | None = None,
    bootstrap_enabled: bool = True,
    key: bytes | None = None,
    clock: Clock | None = None,
) -> tuple[Store, Config]:
    """A Store on a real SQLite file, run synchronously (SyncPool), seeded
    with bootstrap's sample cluster when the file is new."""
    folder = folder or Path(tempfile.mkdtemp(prefix="luna2d-test-"))
    cfg = make_config(folder, bootstrap_enabled)
    cfg.files.keyfile.write_bytes(key or Fernet.generate_key())
    store = load_store(cfg, clock)
    if store.empty:
        result_of(store.write(bootstrap.seed, cfg))
    return store, cfg


class InlineThreads:
    """Stands in for ``twisted.internet.threads`` in luna2d.store.store:
    password hashing runs inline, so user creation and login answer within
    one StubTreq flush (StubTreq has no thread pool)."""

    @staticmethod
    def deferToThread(f: Any, *args: Any, **kwargs: Any) -> defer.Deferred:
        return defer.maybeDeferred(f, *args, **kwargs)


def hash_inline(case: unittest.TestCase) -> None:
    """Hash passwords inline for the rest of ``case``."""
    case.patch(store_module, "threads", InlineThreads)


def the_reactor() -> Any:
    """The running reactor (imported late, after trial installed it)."""
    from twisted.internet import reactor

    return reactor


class ReactorCase(unittest.TestCase):
    """For tests that wait on the real reactor, under ``trial --jobs`` too.
    There each test is its own suite and trial fires the reactor's
    "shutdown" event after it, whose reactor.crash() calls asyncio's
    loop.stop() while the loop is not running; the stop stays pending and
    ends the next test's reactor.run() at once (the test errors and the
    worker dies). One iteration with a stop of our own consumes it."""

    def setUp(self) -> None:
        loop = getattr(the_reactor(), "_asyncioEventloop", None)
        if loop is not None and not loop.is_running():
            loop.call_soon(loop.stop)
            loop.run_forever()


class CallbackMeter:
    """The reactor thread's CPU time (``time.thread_time``) in each callback
    of the event loop: every timer, socket event and call from a thread the
    asyncio reactor runs is an ``asyncio.Handle``. CPU time, not wall time,
    so that other processes on a loaded machine do not count, and a wait
    for the GIL held by a worker thread does not either (the lag probe
    measures those)."""

    def __init__(self) -> None:
        self.on = False
        self.callbacks = 0
        self.longest = 0.0
        self.total = 0.0
        self.which = ""

    def install(self, case: unittest.TestCase) -> None:
        import asyncio

        original = asyncio.Handle._run
        meter = self

        def run(handle: asyncio.Handle) -> None:
            if not meter.on:
                return original(handle)
            start = time.thread_time()
            try:
                return original(handle)
            finally:
                spent = time.thread_time() - start
                meter.callbacks += 1
                meter.total += spent
                if spent > meter.longest:
                    meter.longest, meter.which = spent, repr(handle)[:300]

        case.patch(asyncio.Handle, "_run", run)


def serve_frozen(
    case: unittest.TestCase, reactor: Any, store: Store
) -> tuple[str, HTTPConnectionPool, str]:
    """The whole API over ``store`` on a real port (port 0) of ``reactor``,
    after the collector has been frozen as the daemon does once it has
    loaded (tap.py). Returns the base URL, a non-persistent connection pool
    and an admin token; the port, the pool and the freeze are undone at
    cleanup."""
    gc.collect()
    gc.freeze()
    case.addCleanup(gc.unfreeze)
    auth = Auth(APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), store, reactor)
    site = make_site(build(store, auth, ADMIN), auth)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    case.addCleanup(port.stopListening)
    http = HTTPConnectionPool(reactor, persistent=False)
    case.addCleanup(http.closeCachedConnections)
    return f"http://127.0.0.1:{port.getHost().port}", http, auth.issue(ADMIN, "admin")


class API:
    """The whole HTTP API in process, with tokens of each role; ``ipmi`` is
    the IPMI client /control uses (none: control actions answer 503)."""

    def __init__(
        self, store: Store | None = None, bootstrap_enabled: bool = True, ipmi: Any = None
    ) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        if store is None:
            store, self.cfg = open_store(bootstrap_enabled=bootstrap_enabled, clock=self.clock)
        self.store = store
        self.auth = Auth(
            APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), store, self.clock
        )
        self.resource = build(store, self.auth, ADMIN, ipmi=ipmi)
        self.treq = StubTreq(self.resource)
        self.admin_token = self.auth.issue(ADMIN, "admin")

    def token(self, role: str = "admin", name: str | None = None, node: str | None = None) -> str:
        return self.auth.issue(name or (node or ADMIN), role, node=node)

    def raw(
        self, method: str, path: str, data: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, bytes, dict]:
        """(status, content-type, body bytes, headers) of one request, as sent."""
        d = self.treq.request(method, "http://luna" + path, data=data, headers=headers or {})
        self.treq.flush()
        response = result_of(d)
        content_d = response.content()
        self.treq.flush()
        content = result_of(content_d)
        ctype = response.headers.getRawHeaders(b"content-type", [b""])[0]
        return response.code, ctype, content, {k: v for k, v in response.headers.getAllRawHeaders()}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None | bool = True,
        raw: bytes | None = None,
        headers: dict | None = None,
    ) -> tuple[int, Any, dict]:
        """(status, parsed JSON body or text or None, headers) of one request."""
        all_headers = dict(headers or {})
        if token is True:
            token = self.admin_token
        if token:
            all_headers["x-access-tokens"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        code, ctype, content, answer_headers = self.raw(method, path, data, all_headers)
        parsed: Any = None
        if content:
            parsed = (
                json.loads(content) if ctype.startswith(b"application/json") else content.decode()
            )
        return code, parsed, answer_headers

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        code, body, _ = self.request("GET", path, **kw)
        return code, body

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, body, _ = self.request("POST", path, body, **kw)
        return code, body

    def show(self, kind: str, name: str) -> dict:
        """The fields of one object as an admin's GET answers them (which must be 200)."""
        code, body = self.get(f"/config/{kind}/{name}")
        assert code == 200, (kind, name, code, body)
        return body["config"][kind][name]


class Output(protocol.ProcessProtocol):
    """A child's stdout and stderr, kept together, and how it ended:
    ``reason`` once it has, and ``done`` fires with it."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.reason: Any = None
        self.done: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.reason = reason.value
        self.done.callback(self.reason)

    @property
    def ended(self) -> bool:
        return self.reason is not None

    def text(self) -> str:
        return bytes(self.out).decode("utf-8", "replace")
