"""Shared test helpers: a store on a real SQLite file, the whole HTTP API
in process through StubTreq, and tokens of every role."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.task import Clock

from luna2d.config import APIConfig, Config, DatabaseConfig, FilesConfig, ServiceConfig
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.store import bootstrap, db
from luna2d.store.crypto import Crypto
from luna2d.store.store import Store

ADMIN = "luna"
PASSWORD = "luna-test-password"
SECRET = "test-secret-key-0123456789abcdef"


def make_config(folder: Path, bootstrap_enabled: bool = True) -> Config:
    return Config(
        path=folder / "luna.ini",
        api=APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0),
        database=DatabaseConfig("SQLite3", folder / "luna.db"),
        files=FilesConfig(folder / "files", folder / "images", folder / "luna.key"),
        dhcp=ServiceConfig(False),
        tftp=ServiceConfig(False),
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


def open_store(folder: Path | None = None, bootstrap_enabled: bool = True, key: bytes | None = None,
               clock: Clock | None = None) -> tuple[Store, Config]:
    """A Store on a real SQLite file, run synchronously (SyncPool)."""
    folder = folder or Path(tempfile.mkdtemp(prefix="luna2d-test-"))
    cfg = make_config(folder, bootstrap_enabled)
    key = key or Fernet.generate_key()
    cfg.files.keyfile.write_bytes(key)
    store = Store(db.SyncPool(cfg.database.database), Crypto(key), clock or Clock())
    result_of(defer.ensureDeferred(store.open()))
    if store.empty:
        result_of(store.write(bootstrap.seed, cfg))
    return store, cfg


class API:
    """The whole HTTP API in process, with tokens of each role."""

    def __init__(self, store: Store | None = None, bootstrap_enabled: bool = True) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        if store is None:
            store, self.cfg = open_store(bootstrap_enabled=bootstrap_enabled, clock=self.clock)
        self.store = store
        self.auth = Auth(APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), store, self.clock)
        self.resource = build(store, self.auth, ADMIN)
        self.treq = StubTreq(self.resource)
        self.admin_token = self.auth.issue(ADMIN, "admin")

    def token(self, role: str = "admin", name: str | None = None, node: str | None = None) -> str:
        return self.auth.issue(name or (node or ADMIN), role, node=node)

    def request(self, method: str, path: str, body: Any = None, token: str | None | bool = True,
                raw: bytes | None = None, headers: dict | None = None) -> tuple[int, Any, dict]:
        """(status, parsed JSON body or text or None, headers) of one request."""
        all_headers = dict(headers or {})
        if token is True:
            token = self.admin_token
        if token:
            all_headers["x-access-tokens"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        d = self.treq.request(method, "http://luna" + path, data=data, headers=all_headers)
        self.treq.flush()
        response = result_of(d)
        content_d = response.content()
        self.treq.flush()
        content = result_of(content_d)
        ctype = response.headers.getRawHeaders(b"content-type", [b""])[0]
        parsed: Any = None
        if content:
            parsed = json.loads(content) if ctype.startswith(b"application/json") else content.decode()
        return response.code, parsed, {k: v for k, v in response.headers.getAllRawHeaders()}

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        code, body, _ = self.request("GET", path, **kw)
        return code, body

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        code, body, _ = self.request("POST", path, body, **kw)
        return code, body
