"""``twistd luna2d``: the command-line options and the one service tree."""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

if "twisted.internet.reactor" not in sys.modules:
    # Before anything below imports the default reactor.
    from twisted.internet import asyncioreactor

    asyncioreactor.install()

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.server import Site

from luna2d import config as configmod
from luna2d.errors import ConfigError
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.store import bootstrap, db
from luna2d.store.crypto import Crypto, load_or_create_key
from luna2d.store.store import Store

log = Logger()


def ensure_asyncio_reactor() -> None:
    """luna2d runs on Twisted's asyncio reactor (pysnmp needs asyncio)."""
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
        return
    from twisted.internet import reactor

    if type(reactor).__name__ != "AsyncioSelectorReactor":
        raise usage.UsageError("luna2d needs the asyncio reactor: run twistd --reactor=asyncio luna2d ...")


class Options(usage.Options):
    optParameters = [
        ["config", "c", "/trinity/local/luna/daemon/config/luna.ini", "The luna2d ini file."],
        ["port", "p", None, "Listen on this TCP port instead of the ini's [API] ENDPOINT port."],
        ["interface", "i", None, "Listen on this address instead of the ini's [API] ENDPOINT host."],
    ]

    def postOptions(self) -> None:
        try:
            self.loaded = configmod.load(self["config"])
        except ConfigError as exc:
            raise usage.UsageError(f"{self['config']}: {exc}") from None
        if self["port"] is not None:
            if not self["port"].isdigit() or not 0 <= int(self["port"]) <= 65535:
                raise usage.UsageError(f"--port: {self['port']!r} is not a TCP port")
        ensure_asyncio_reactor()


class LunaDaemon(service.MultiService):
    """Loads the store before the reactor runs, then serves the API."""

    def __init__(self, cfg: configmod.Config, host: str, port: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.host = host
        self.port_number = port
        self.store: Store | None = None
        self.listening: Any = None

    def privilegedStartService(self) -> None:
        from twisted.internet import reactor

        cfg = self.cfg
        try:
            key = load_or_create_key(cfg.files.keyfile)
        except (ConfigError, OSError) as exc:
            raise SystemExit(f"luna2d: {exc}") from None
        try:
            startup = db.SyncPool(cfg.database.database, cfg.database.synchronous) if self._dir_ok() else None
        except sqlite3.Error as exc:
            raise SystemExit(f"luna2d: [DATABASE] DATABASE: cannot open {cfg.database.database}: {exc}") from None
        store = Store(startup, Crypto(key), reactor)
        try:
            result = defer.ensureDeferred(store.open())
            if store.empty:
                result.addCallback(lambda _: store.write(bootstrap.seed, cfg))
            failures: list = []
            result.addErrback(failures.append)
            if failures:
                raise SystemExit(f"luna2d: cannot open the database {cfg.database.database}: "
                                 f"{failures[0].getErrorMessage()}")
        finally:
            startup.close()
        store.pool = db.open_pool(cfg.database.database, cfg.database.synchronous)
        self.store = store
        auth = Auth(cfg.api, store, reactor)
        site = Site(build(store, auth, cfg.api.username))
        site.displayTracebacks = False
        from twisted.internet.error import CannotListenError

        try:
            self.listening = reactor.listenTCP(self.port_number, site, interface=self.host)
        except CannotListenError as exc:
            raise SystemExit(f"luna2d: cannot listen on {self.host}:{self.port_number}: {exc.socketError}") from None
        log.info("luna2d API listening on {host}:{port}", host=self.host, port=self.listening.getHost().port)
        super().privilegedStartService()

    def _dir_ok(self) -> bool:
        try:
            self.cfg.database.database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SystemExit(f"luna2d: [DATABASE] DATABASE: cannot create {self.cfg.database.database.parent}: {exc}")
        return True

    def stopService(self) -> defer.Deferred:
        d = defer.maybeDeferred(super().stopService)
        if self.listening is not None:
            d.addCallback(lambda _: self.listening.stopListening())
        if self.store is not None:
            d.addCallback(lambda _: self.store.pool.close())
        return d


def makeService(options: Options) -> service.MultiService:
    cfg: configmod.Config = options.loaded
    host = options["interface"] or cfg.api.host
    port = int(options["port"]) if options["port"] is not None else cfg.api.port
    return LunaDaemon(cfg, host, port)
