"""``twistd luna2d``: the command-line options and the one service tree."""

from __future__ import annotations

import gc
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

from luna2d import config as configmod
from luna2d.errors import ConfigError
from luna2d.ipmi.client import IPMIClient
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.resources.service import Services
from luna2d.resources.site import make_site
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


def raise_file_limit() -> None:
    """A boot storm holds a TFTP socket and an HTTP connection per booting
    node: take the open-files soft limit up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
        except (ValueError, OSError):
            log.warn("cannot raise the open-files limit above {soft}", soft=soft)  # noqa: G010


class Options(usage.Options):
    optParameters = [  # noqa: RUF012 - twisted.python.usage reads this class attribute
        ["config", "c", "/trinity/local/luna/daemon/config/luna.ini", "The luna2d ini file."],
        ["port", "p", None, "Listen on this TCP port instead of the ini's [API] ENDPOINT port."],
        ["interface", "i", None, "Listen on this address instead of the ini's [API] ENDPOINT host."],
    ]

    def postOptions(self) -> None:
        try:
            self.loaded = configmod.load(self["config"])
        except ConfigError as exc:
            raise usage.UsageError(f"{self['config']}: {exc}") from None
        port = self["port"]
        if port is not None and (not port.isdigit() or not 0 <= int(port) <= 65535):
            raise usage.UsageError(f"--port: {port!r} is not a TCP port")
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
        self.ipmi: IPMIClient | None = None  # the one IPMI client (/control)
        # Not ``services``: MultiService keeps its child services under that name.
        self.health_checks: Services | None = None  # health checks of the embedded services (/monitor/service)

    def privilegedStartService(self) -> None:
        from twisted.internet import reactor

        raise_file_limit()

        cfg = self.cfg
        try:
            key = load_or_create_key(cfg.files.keyfile)
        except (ConfigError, OSError) as exc:
            raise SystemExit(f"luna2d: {exc}") from None
        self._make_database_dir()
        try:
            startup = db.SyncPool(cfg.database.database, cfg.database.synchronous)
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
        # The loaded image lives as long as the daemon: keep it out of every
        # garbage collection, whose full passes over 10,000 nodes would
        # otherwise stall the reactor for tens of milliseconds.
        gc.collect()
        gc.freeze()
        auth = Auth(cfg.api, store, reactor)
        self.health_checks = Services.from_config(cfg)
        control = cfg.control
        self.ipmi = IPMIClient(reactor, sockets=control.sockets, timeout=control.timeout,
                               retries=control.retries, cipher_suite=control.cipher_suite)
        site = make_site(build(store, auth, cfg.api.username, cfg.files.image_files, self.health_checks,
                               ipmi=self.ipmi, ipxe=cfg.tftp.ipxe, control_parallel=control.parallel))
        from twisted.internet.error import CannotListenError

        try:
            self.listening = reactor.listenTCP(self.port_number, site, interface=self.host)
        except CannotListenError as exc:
            raise SystemExit(f"luna2d: cannot listen on {self.host}:{self.port_number}: {exc.socketError}") from None
        log.info("luna2d API listening on {host}:{port}", host=self.host, port=self.listening.getHost().port)
        if cfg.dhcp.enabled:
            dhcp = dhcp_server(cfg, store, reactor, self.listening.getHost().port)
            dhcp.setServiceParent(self)
            self.health_checks.register("dhcp", dhcp.health, dhcp.reload)
        if cfg.tftp.enabled:
            tftp = tftp_server(cfg, reactor)
            tftp.setServiceParent(self)
            self.health_checks.register("tftp", tftp.health, tftp.reload)
        super().privilegedStartService()

    def _make_database_dir(self) -> None:
        try:
            self.cfg.database.database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SystemExit(f"luna2d: [DATABASE] DATABASE: cannot create {self.cfg.database.database.parent}: {exc}")

    def stopService(self) -> defer.Deferred:
        d = defer.maybeDeferred(super().stopService)
        if self.listening is not None:
            d.addCallback(lambda _: self.listening.stopListening())
        if self.ipmi is not None:
            d.addCallback(lambda _: self.ipmi.stop())
        if self.store is not None:
            d.addCallback(lambda _: self.store.pool.close())
        return d


def dhcp_server(cfg: configmod.Config, store: Store, reactor: Any, http_port: int) -> Any:
    """The [DHCP] server over the store's boot index and lease table, bound
    to its interfaces (SystemExit naming the interface when it cannot be)."""
    from luna2d.protocols.dhcp.policy import Policy, Settings
    from luna2d.protocols.dhcp.protocol import DHCPServer, InterfaceError
    from luna2d.store import bootindex, leases

    if not cfg.dhcp.interfaces:
        raise SystemExit("luna2d: [DHCP] INTERFACES: name the interfaces to serve (comma-separated) "
                         "when ENABLED = yes")
    indexer = bootindex.BootIndexer(store)
    policy = Policy(indexer.current, Settings(lease_time=cfg.dhcp.lease_time,
                                              http_port=http_port))
    server = DHCPServer(reactor, cfg.dhcp.interfaces, policy,
                        load=lambda: leases.load(store.pool),
                        save=lambda changes: leases.apply(store.pool, changes))
    try:
        server.bind()
    except InterfaceError as exc:
        raise SystemExit(f"luna2d: [DHCP] INTERFACES: {exc}") from None
    return server


def tftp_server(cfg: configmod.Config, reactor: Any) -> Any:
    """The [TFTP] server over ROOT (created if missing) with the iPXE
    directory as the fallback for the boot binaries, bound on PORT now
    (SystemExit naming the key when it cannot be)."""
    from twisted.internet.error import CannotListenError

    from luna2d.protocols.tftp.policy import Limits
    from luna2d.protocols.tftp.server import TFTPService

    tftp = cfg.tftp
    try:
        tftp.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"luna2d: [TFTP] ROOT: cannot create {tftp.root}: {exc}") from None
    limits = Limits(max_transfers=tftp.max_transfers, max_per_client=tftp.max_per_client,
                    max_timeout=tftp.max_timeout, first_ack_timeout=tftp.first_ack_timeout,
                    request_rate=tftp.request_rate)
    server = TFTPService(reactor, tftp.port, tftp.root, tftp.ipxe, limits=limits)
    try:
        server.bind()
    except CannotListenError as exc:
        raise SystemExit(f"luna2d: [TFTP] PORT: cannot listen on UDP {tftp.port}: {exc.socketError}") from None
    log.info("luna2d TFTP serving {root} on UDP {port}", root=tftp.root, port=server.bound_port)
    return server


def makeService(options: Options) -> service.MultiService:
    cfg: configmod.Config = options.loaded
    host = options["interface"] or cfg.api.host
    port = int(options["port"]) if options["port"] is not None else cfg.api.port
    return LunaDaemon(cfg, host, port)
