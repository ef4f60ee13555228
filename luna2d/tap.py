# -*- test-case-name: tests.test_tap,tests.integration.test_daemon,tests.integration.test_edge -*-
# mypy: disable-error-code="no-untyped-call"
# (twisted.application's services and endpoints are not annotated)
"""``twistd luna2d``: the command-line options and the one service tree.

``makeService`` returns a ``MultiService`` whose children, in start order,
are the store (key file, database, migrations, seeding, the adbapi pool),
the IPMI client, the HTTP API (plain or TLS), the plain boot listener
when the API is https, DHCP and TFTP. Each is started and stopped by the
service machinery: privileged ports are bound in ``privilegedStartService``,
the stop runs in reverse order, so the pool closes after the last listener.

luna2d runs on Twisted's asyncio reactor so that asyncio libraries can
share its loop (planned for SNMP polling); nothing needs it yet."""

from __future__ import annotations

import gc
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from twisted.application import internet, service
from twisted.internet import defer, endpoints, ssl
from twisted.internet.error import CannotListenError
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.web.resource import Resource

from luna2d import config as configmod
from luna2d.errors import ConfigError
from luna2d.ipmi.client import IPMIClient
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.resources.service import Services
from luna2d.resources.site import EdgeSettings, boot_only, make_site
from luna2d.store import bootstrap, db
from luna2d.store.crypto import Crypto, load_or_create_key
from luna2d.store.store import Store

log = Logger()
# A boot storm opens hundreds of API connections at once; the default
# listen backlog of 50 drops some of them before they are accepted.
BACKLOG = 1024


def ensure_asyncio_reactor() -> None:
    """luna2d runs on Twisted's asyncio reactor, so that asyncio libraries
    can share its loop: refuse any other. twistd has installed its reactor
    by the time these options are parsed, so it is chosen with
    ``--reactor=asyncio``."""
    from twisted.internet import reactor

    if type(reactor).__name__ != "AsyncioSelectorReactor":
        raise usage.UsageError(
            "luna2d needs the asyncio reactor: run twistd --reactor=asyncio luna2d ..."
        )


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


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def tls_options(api: configmod.APIConfig) -> ssl.CertificateOptions:
    """The TLS server options of ``[API] SSL_CERTIFICATE`` (the server's
    certificate, then its chain) and ``SSL_CERTIFICATE_KEY``: TLS 1.2 or
    newer, Twisted's forward-secret AEAD cipher list. Raises ConfigError
    naming the key when a file is missing, unreadable or does not match."""
    from OpenSSL import SSL, crypto

    assert api.certificate is not None and api.certificate_key is not None
    texts: dict[str, bytes] = {}
    for name, path in (
        ("SSL_CERTIFICATE", api.certificate),
        ("SSL_CERTIFICATE_KEY", api.certificate_key),
    ):
        try:
            texts[name] = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"[API] {name}: cannot read {path}: {exc.strerror}") from None
    blocks = _PEM_CERT.findall(texts["SSL_CERTIFICATE"])
    if not blocks:
        raise ConfigError(f"[API] SSL_CERTIFICATE: {api.certificate} holds no PEM certificate")
    try:
        chain = [crypto.load_certificate(crypto.FILETYPE_PEM, block) for block in blocks]
    except crypto.Error:
        raise ConfigError(
            f"[API] SSL_CERTIFICATE: {api.certificate} is not a valid certificate"
        ) from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, texts["SSL_CERTIFICATE_KEY"])
    except crypto.Error:
        raise ConfigError(
            f"[API] SSL_CERTIFICATE_KEY: {api.certificate_key} is not a PEM private key "
            "(without a passphrase)"
        ) from None
    options = ssl.CertificateOptions(
        privateKey=key,
        certificate=chain[0],
        extraCertChain=chain[1:],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )
    try:
        options.getContext()
    except SSL.Error:
        raise ConfigError(
            f"[API] SSL_CERTIFICATE_KEY: {api.certificate_key} does not match the "
            f"certificate in {api.certificate}"
        ) from None
    return options


# [LOGGER] LEVEL -> the least level of twisted.logger that is written.
LOG_LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}


def open_log(path: Path) -> Any:
    """``path`` opened for appending text (created 0640, its folder too), or
    ConfigError naming ``[LOGGER] LOGFILE``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except OSError as exc:
        raise ConfigError(f"[LOGGER] LOGFILE: cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


def log_observer(level: str, stream: Any) -> ILogObserver:
    """An observer writing the events of ``level`` and above to ``stream``."""
    # zope interfaces are not types mypy knows: these providers are cast.
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=LOG_LEVELS[level])
    writer: Any = textFileLogObserver(stream)
    return cast(ILogObserver, FilteringLogObserver(writer, [predicate]))


def twistd_observer_factory(
    cfg: configmod.Config, twistd: Any
) -> Callable[[], ILogObserver] | None:
    """The ``--logger`` twistd will use, honouring ``[LOGGER]``: events
    below ``LEVEL`` dropped, written to ``LOGFILE`` when set (a ``--logfile``
    on twistd's command line takes precedence), else where twistd would have
    written them (stdout with ``-n``, else twistd.log). None (twistd's own
    choice) when twistd was given ``--logger`` or ``--syslog``."""
    if twistd.get("logger") or twistd.get("syslog"):
        return None
    logfile = twistd.get("logfile")
    target: Path | None = None
    if logfile and logfile != "-":
        target = Path(logfile)
    elif not logfile and cfg.log_file is not None:
        target = cfg.log_file
    elif not logfile and not twistd.get("nodaemon"):
        target = Path("twistd.log")
    if target is not None:
        open_log(target).close()  # refuse an unwritable file now, as a usage error

    def factory() -> ILogObserver:
        stream = open_log(target) if target is not None else sys.stdout
        return log_observer(cfg.log_level, stream)

    return factory


# twistd takes its --logger as a dotted name: the factory the options chose
# is kept here for ``twistd_logger`` to call.
_chosen_logger: list[Callable[[], ILogObserver]] = []


def twistd_logger() -> ILogObserver:
    """The observer of the ``[LOGGER]`` settings (twistd's ``--logger``)."""
    return _chosen_logger[-1]()


class Options(usage.Options):
    optParameters = [  # noqa: RUF012 - twisted.python.usage reads this class attribute
        [
            "config",
            "c",
            "/trinity/local/luna/daemon/config/luna.ini",
            "The luna2d ini file.",
        ],
        [
            "port",
            "p",
            None,
            "Listen on this TCP port instead of the ini's [API] ENDPOINT port.",
        ],
        [
            "interface",
            "i",
            None,
            "Listen on this address instead of the ini's [API] ENDPOINT host.",
        ],
    ]

    def postOptions(self) -> None:
        try:
            self.loaded = configmod.load(self["config"])
        except ConfigError as exc:
            raise usage.UsageError(f"{self['config']}: {exc}") from None
        port = self["port"]
        if port is not None and (not port.isdigit() or not 0 <= int(port) <= 65535):
            raise usage.UsageError(f"--port: {port!r} is not a TCP port")
        self.tls: ssl.CertificateOptions | None = None
        if self.loaded.api.protocol == "https":
            try:
                self.tls = tls_options(self.loaded.api)
            except ConfigError as exc:
                raise usage.UsageError(f"{self['config']}: {exc}") from None
        ensure_asyncio_reactor()
        twistd = getattr(self, "parent", None)
        if twistd is not None:
            try:
                factory = twistd_observer_factory(self.loaded, twistd)
            except ConfigError as exc:
                raise usage.UsageError(f"{self['config']}: {exc}") from None
            if factory is not None:
                _chosen_logger.append(factory)
                twistd["logger"] = f"{__name__}.twistd_logger"


class StoreService(service.Service):
    """The store: opens (creating the key file and the database when they
    are missing), migrates and loads it before the reactor runs, seeds the
    sample cluster on an empty database, and closes its pool on stop."""

    name = "store"

    def __init__(self, cfg: configmod.Config, reactor: Any) -> None:
        self.cfg = cfg
        self.reactor = reactor
        self.store: Store | None = None

    def privilegedStartService(self) -> None:
        if self.store is None:
            self.store = self._open()
        super().privilegedStartService()

    def _open(self) -> Store:
        cfg = self.cfg
        try:
            key = load_or_create_key(cfg.files.keyfile)
        except (ConfigError, OSError) as exc:
            raise SystemExit(f"luna2d: {exc}") from None
        try:
            cfg.database.database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SystemExit(
                f"luna2d: [DATABASE] DATABASE: cannot create {cfg.database.database.parent}: {exc}"
            ) from None
        try:
            startup = db.SyncPool(cfg.database.database, cfg.database.synchronous)
        except sqlite3.Error as exc:
            raise SystemExit(
                f"luna2d: [DATABASE] DATABASE: cannot open {cfg.database.database}: {exc}"
            ) from None
        store = Store(startup, Crypto(key), self.reactor)
        try:
            result = defer.ensureDeferred(store.open())
            if store.empty:
                result.addCallback(lambda _: store.write(bootstrap.seed, cfg))
            failures: list[Any] = []
            result.addErrback(failures.append)
            if failures:
                raise SystemExit(
                    f"luna2d: cannot open the database {cfg.database.database}: "
                    f"{failures[0].getErrorMessage()}"
                )
        finally:
            startup.close()
        store.pool = db.open_pool(cfg.database.database, cfg.database.synchronous)
        # The loaded image lives as long as the daemon: keep it out of every
        # garbage collection, whose full passes over 10,000 nodes would
        # otherwise stall the reactor for tens of milliseconds.
        gc.collect()
        gc.freeze()
        return store

    def stopService(self) -> Any:
        super().stopService()
        if self.store is not None:
            self.store.pool.close()
        return None


class IPMIService(service.Service):
    """The one IPMI client (/control): its sockets open on first use and
    close on stop."""

    name = "ipmi"

    def __init__(self, reactor: Any, control: configmod.ControlConfig) -> None:
        self.client = IPMIClient(
            reactor,
            sockets=control.sockets,
            timeout=control.timeout,
            retries=control.retries,
            cipher_suite=control.cipher_suite,
        )

    def stopService(self) -> Any:
        super().stopService()
        return self.client.stop()


class SiteServer(internet.StreamServerEndpointService):
    """An HTTP(S) listener whose site is made when it starts (the store is
    open by then); a port that cannot be bound ends the start with a
    message naming it."""

    def __init__(self, name: str, endpoint: Any, make: Callable[[], Any], where: str) -> None:
        super().__init__(endpoint, None)
        self.setName(name)
        self.make = make
        self.where = where
        self.port: Any = None
        self._raiseSynchronously = True

    def privilegedStartService(self) -> None:
        if self.factory is None:
            self.factory = self.make()
        try:
            super().privilegedStartService()
        except CannotListenError as exc:
            raise SystemExit(f"luna2d: cannot listen on {self.where}: {exc.socketError}") from None
        waiting: Any = self._waitingForPort
        waiting.addCallback(self._bound)

    def _bound(self, port: Any) -> Any:
        self.port = port
        log.info(
            "luna2d {name} listening on {where} (port {port})",
            name=self.name,
            where=self.where,
            port=port.getHost().port,
        )
        return port

    @property
    def bound_port(self) -> int | None:
        """The TCP port actually bound (useful when configured as 0)."""
        return self.port.getHost().port if self.port is not None else None


class LunaDaemon(service.MultiService):
    """The running daemon: a MultiService of the store, the IPMI client,
    the HTTP listener(s), DHCP and TFTP (see the module docstring)."""

    def __init__(
        self,
        cfg: configmod.Config,
        host: str,
        port: int,
        tls: ssl.CertificateOptions | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.cfg = cfg
        self.reactor = reactor
        # Not ``services``: MultiService keeps its child services under that name.
        self.health_checks = Services.from_config(cfg)
        self.store_service = StoreService(cfg, reactor)
        self.store_service.setServiceParent(self)
        self.ipmi_service = IPMIService(reactor, cfg.control)
        self.ipmi_service.setServiceParent(self)
        self._auth: Auth | None = None
        self._resource: Resource | None = None
        api = cfg.api
        endpoint: Any
        if tls is not None:
            endpoint = endpoints.SSL4ServerEndpoint(
                reactor, port, tls, backlog=BACKLOG, interface=host
            )
        else:
            endpoint = endpoints.TCP4ServerEndpoint(reactor, port, backlog=BACKLOG, interface=host)
        self.http = SiteServer("http", endpoint, self._api_site, f"{host}:{port}")
        self.http.setServiceParent(self)
        self.boot: SiteServer | None = None
        if tls is not None:
            boot = endpoints.TCP4ServerEndpoint(
                reactor, api.boot_port, backlog=BACKLOG, interface=host
            )
            self.boot = SiteServer(
                "boot",
                boot,
                self._boot_site,
                f"{host}:{api.boot_port} ([WEBSERVER] PORT)",
            )
            self.boot.setServiceParent(self)
        if cfg.dhcp.enabled:
            self.dhcp = dhcp_server(cfg, self.store_service, reactor, self.boot_port)
            self.dhcp.setServiceParent(self)
            self.health_checks.register("dhcp", self.dhcp.health, self.dhcp.reload)
        if cfg.tftp.enabled:
            tftp = tftp_server(cfg, reactor)
            tftp.setServiceParent(self)
            self.health_checks.register("tftp", tftp.health, tftp.reload)

    @property
    def store(self) -> Store | None:
        return self.store_service.store

    @property
    def ipmi(self) -> IPMIClient:
        return self.ipmi_service.client

    def boot_port(self) -> int:
        """The port iPXE fetches /boot from: the API's, or the plain boot
        listener's when the API is https."""
        server = self.boot if self.boot is not None else self.http
        return server.bound_port or 0

    def _tree(self) -> tuple[Resource, Auth]:
        if self._resource is None or self._auth is None:
            store = self.store_service.store
            assert store is not None, "the store starts before the listeners"
            cfg = self.cfg
            self._auth = Auth(cfg.api, store, self.reactor)
            self._resource = build(
                store,
                self._auth,
                cfg.api.username,
                cfg.files.image_files,
                self.health_checks,
                ipmi=self.ipmi,
                ipxe=cfg.tftp.ipxe,
                control_parallel=cfg.control.parallel,
            )
        return self._resource, self._auth

    def _settings(self) -> EdgeSettings:
        api = self.cfg.api
        return EdgeSettings(
            body_memory=api.body_memory,
            body_idle_timeout=api.body_idle_timeout,
            body_timeout=api.body_timeout,
        )

    def _api_site(self) -> Any:
        resource, auth = self._tree()
        return make_site(resource, auth, self._settings(), self.reactor)

    def _boot_site(self) -> Any:
        resource, auth = self._tree()
        return make_site(boot_only(resource, auth), auth, self._settings(), self.reactor)

    def privilegedStartService(self) -> None:
        raise_file_limit()
        super().privilegedStartService()


def dhcp_server(
    cfg: configmod.Config,
    stores: StoreService,
    reactor: Any,
    http_port: Callable[[], int],
) -> Any:
    """The [DHCP] server over the store's boot index and lease table; it
    binds its interfaces when it starts (SystemExit naming the interface
    when it cannot)."""
    from luna2d.protocols.dhcp.policy import Policy, Settings
    from luna2d.protocols.dhcp.protocol import DHCPServer, InterfaceError
    from luna2d.store import bootindex, leases

    if not cfg.dhcp.interfaces:
        raise SystemExit(
            "luna2d: [DHCP] INTERFACES: name the interfaces to serve (comma-separated) "
            "when ENABLED = yes"
        )

    class StoreDHCP(DHCPServer):
        """DHCP over the store the tree opened just before it."""

        indexer: Any = None

        def index(self) -> Any:
            return self.indexer.current()

        def privilegedStartService(self) -> None:
            store = stores.store
            assert store is not None, "the store starts before DHCP"
            if self.indexer is None:
                self.indexer = bootindex.BootIndexer(store)
                self.indexer.prime()  # before the reactor runs: 10,000 nodes take 0.1 s
            self.policy.settings = replace(self.policy.settings, http_port=http_port())
            try:
                super().privilegedStartService()
            except InterfaceError as exc:
                raise SystemExit(f"luna2d: [DHCP] INTERFACES: {exc}") from None

    def pool() -> Any:
        assert stores.store is not None
        return stores.store.pool

    policy = Policy(
        lambda: server.index(),
        Settings(
            lease_time=cfg.dhcp.lease_time,
            max_offers=cfg.dhcp.max_offers,
            offer_rate=cfg.dhcp.offer_rate,
            offer_burst=cfg.dhcp.offer_burst,
        ),
    )
    server = StoreDHCP(
        reactor,
        cfg.dhcp.interfaces,
        policy,
        load=lambda: leases.load(pool()),
        save=lambda changes: leases.apply(pool(), changes),
    )
    return server


def tftp_server(cfg: configmod.Config, reactor: Any) -> Any:
    """The [TFTP] server over ROOT (created when it starts, if missing) with
    the iPXE directory as the fallback for the boot binaries; it binds PORT
    when it starts (SystemExit naming the key when it cannot)."""
    from luna2d.protocols.tftp.policy import Limits
    from luna2d.protocols.tftp.server import TFTPService

    tftp = cfg.tftp

    class CheckedTFTP(TFTPService):
        def privilegedStartService(self) -> None:
            try:
                tftp.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SystemExit(f"luna2d: [TFTP] ROOT: cannot create {tftp.root}: {exc}") from None
            try:
                super().privilegedStartService()
            except CannotListenError as exc:
                raise SystemExit(
                    f"luna2d: [TFTP] PORT: cannot listen on UDP {tftp.port}: {exc.socketError}"
                ) from None
            log.info(
                "luna2d TFTP serving {root} on UDP {port}",
                root=tftp.root,
                port=self.bound_port,
            )

    limits = Limits(
        max_transfers=tftp.max_transfers,
        max_per_client=tftp.max_per_client,
        max_timeout=tftp.max_timeout,
        first_ack_timeout=tftp.first_ack_timeout,
        request_rate=tftp.request_rate,
    )
    server = CheckedTFTP(reactor, tftp.port, tftp.root, tftp.ipxe, limits=limits)
    server.setName("tftp")
    return server


def makeService(options: Options) -> service.MultiService:
    """The daemon's service tree for the parsed ``options``."""
    cfg: configmod.Config = options.loaded
    host = options["interface"] or cfg.api.host
    port = int(options["port"]) if options["port"] is not None else cfg.api.port
    return LunaDaemon(cfg, host, port, getattr(options, "tls", None))
