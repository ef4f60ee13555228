# -*- test-case-name: tests.test_config,tests.test_logging -*-
"""The ini file, read once into frozen dataclasses. This is the only module
that reads it. Keys follow the TrinityX ``luna.ini`` layout; relative paths
are taken relative to the directory holding the ini file."""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from luna2d.errors import ConfigError
from luna2d.model import fields
from luna2d.model.fields import NAME_RE

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, where: str) -> int:
    """Parse ``1h``, ``30m``, ``45s``, ``2d`` or plain seconds into seconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{where}: {text!r} is not a duration such as 1h, 30m or 3600")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str, where: str) -> int:
    """Parse ``256M``, ``64K``, ``1G`` or plain bytes into bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{where}: {text!r} is not a size such as 256M, 64K or 1G")
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


def parse_bool(text: str, where: str) -> bool:
    """Parse yes/no, true/false, on/off, 1/0 (the one reading of a boolean,
    ``luna2d.model.fields.parse_bool``)."""
    value = fields.parse_bool(text)
    if value is None:
        raise ConfigError(f"{where}: {text!r} is not a boolean (yes or no)")
    return value


def parse_endpoint(text: str, where: str) -> tuple[str, int]:
    """Parse ``host:port`` (``[v6]:port`` too) into its parts."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: {text!r} is not host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(frozen=True)
class APIConfig:
    username: str
    password: str
    secret_key: str
    expiry: int
    host: str
    port: int
    protocol: str = "http"
    # https: the certificate chain and its private key (PEM files).
    certificate: Path | None = None
    certificate_key: Path | None = None
    # https: the plain-HTTP port that serves only what iPXE fetches ([WEBSERVER] PORT).
    boot_port: int = 7051
    # The HTTP edge: bytes of request bodies held at once, and how long a
    # request may take to arrive / a body may pause.
    body_memory: int = 256 << 20
    body_idle_timeout: int = 30
    body_timeout: int = 300


@dataclass(frozen=True)
class DatabaseConfig:
    driver: str
    database: Path
    synchronous: str = "NORMAL"


@dataclass(frozen=True)
class FilesConfig:
    image_files: Path
    image_directory: Path
    keyfile: Path


@dataclass(frozen=True)
class ServiceConfig:
    enabled: bool
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DHCPConfig(ServiceConfig):
    """[DHCP]: the interfaces to serve (each matched to the configured network
    holding its address) and the lease time of answers. MAX_OFFERS bounds
    the dynamic-range offers held at once (in all networks), OFFER_RATE and
    OFFER_BURST the new offers to unknown machines per second and in one
    burst (per network); known nodes are never limited."""

    interfaces: tuple[str, ...] = ()
    lease_time: int = 3600
    max_offers: int = 1024
    offer_rate: int = 20
    offer_burst: int = 100


@dataclass(frozen=True)
class TFTPConfig(ServiceConfig):
    """[TFTP]: the UDP port, the root served, and the directory the iPXE
    binaries come from when the root does not hold them (Debian's ``ipxe``).

    What a client that never answers may hold: MAX_TRANSFERS transfers run
    at once, MAX_PER_CLIENT of them from one client address; a ``timeout``
    option over MAX_TIMEOUT seconds is declined; a transfer whose client has
    not acknowledged anything FIRST_ACK_TIMEOUT seconds after its first
    packet ends; one address sends at most REQUEST_RATE requests a second
    (bursts of twice that) (docs/BOOT.md, "Room for every client")."""

    port: int = 69
    root: Path = Path("tftpboot")
    ipxe: Path = Path("/usr/lib/ipxe")
    max_transfers: int = 1000
    max_per_client: int = 32
    max_timeout: int = 5
    first_ack_timeout: int = 6
    request_rate: int = 200


@dataclass(frozen=True)
class ControlConfig:
    """[CONTROL]: how power and chassis control talks to the BMCs. TIMEOUT
    is the wait for each answer (seconds), RETRIES how often a request is
    resent before the BMC is reported as timed out, CIPHER_SUITE the RMCP+
    suite offered (3: SHA-1, 17: SHA-256), SOCKETS how many UDP sockets all
    BMCs share, PARALLEL how many BMCs one bulk request talks to at once."""

    timeout: float = 1.0
    retries: int = 2
    cipher_suite: int = 3
    sockets: int = 4
    parallel: int = 256


@dataclass(frozen=True)
class Config:
    path: Path
    api: APIConfig
    database: DatabaseConfig
    files: FilesConfig
    dhcp: DHCPConfig
    tftp: TFTPConfig
    dns: ServiceConfig
    bootstrap: bool
    controller_name: str
    controller_ip: str | None
    cluster_name: str
    log_level: str
    control: ControlConfig = field(default_factory=ControlConfig)
    # [LOGGER] LOGFILE: where the daemon's log goes (None: where twistd logs).
    log_file: Path | None = None


_KNOWN = {
    "API": {
        "USERNAME",
        "PASSWORD",
        "SECRET_KEY",
        "EXPIRY",
        "ENDPOINT",
        "PROTOCOL",
        "VERIFY_CERTIFICATE",
        "SSL_CERTIFICATE",
        "SSL_CERTIFICATE_KEY",
        "MAX_BODY_MEMORY",
        "BODY_TIMEOUT",
        "BODY_IDLE_TIMEOUT",
    },
    "WEBSERVER": {"PORT", "PROTOCOL"},
    "DATABASE": {"DRIVER", "DATABASE", "DBUSER", "DBPASSWORD", "HOST", "PORT", "SYNCHRONOUS"},
    "FILES": {"IMAGE_FILES", "IMAGE_DIRECTORY", "KEYFILE", "TARBALL", "MAXPACKAGINGTIME"},
    "BOOTSTRAP": {"ENABLED", "CONTROLLER", "CONTROLLER_IP", "CLUSTER"},
    "LOGGER": {"LEVEL", "LOGFILE"},
    "DHCP": {"ENABLED", "INTERFACES", "LEASE_TIME", "MAX_OFFERS", "OFFER_RATE", "OFFER_BURST"},
    "TFTP": {
        "ENABLED",
        "PORT",
        "ROOT",
        "IPXE",
        "MAX_TRANSFERS",
        "MAX_PER_CLIENT",
        "MAX_TIMEOUT",
        "FIRST_ACK_TIMEOUT",
        "REQUEST_RATE",
    },
    "CONTROL": {"TIMEOUT", "RETRIES", "CIPHER_SUITE", "SOCKETS", "PARALLEL"},
}
_DRIVERS = {"sqlite3": "SQLite3", "sqlite": "SQLite3"}
_SYNC = {"OFF", "NORMAL", "FULL", "EXTRA"}


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check the ini at ``path``. Raises ConfigError naming the
    section and key of the first problem; never returns a half-valid Config."""
    ini_path = Path(path)
    if not ini_path.is_file():
        raise ConfigError(f"config file {str(ini_path)!r} does not exist")
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str.upper  # type: ignore[assignment,method-assign]
    try:
        with open(ini_path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ini_path}: cannot parse: {exc}".splitlines()[0]) from None
    base = ini_path.resolve().parent

    for section, keys in _KNOWN.items():
        if parser.has_section(section):
            for key in parser[section]:
                if key not in keys:
                    raise ConfigError(
                        f"[{section}] {key}: unknown key (known: {', '.join(sorted(keys))})"
                    )

    def get(section: str, key: str, default: str | None = None) -> str:
        if parser.has_section(section) and key in parser[section]:
            value = parser[section][key].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
        if default is None:
            raise ConfigError(f"[{section}] {key}: required key is missing")
        return default

    def where(section: str, key: str) -> str:
        return f"[{section}] {key}"

    def as_path(section: str, key: str, default: str | None = None) -> Path:
        value = get(section, key, default)
        if not value:
            raise ConfigError(f"[{section}] {key}: must not be empty")
        if "\x00" in value:
            raise ConfigError(f"[{section}] {key}: a path must not contain NUL characters")
        candidate = Path(os.path.expanduser(value))
        return candidate if candidate.is_absolute() else base / candidate

    username = get("API", "USERNAME")
    password = get("API", "PASSWORD")
    secret_key = get("API", "SECRET_KEY")
    if not username:
        raise ConfigError("[API] USERNAME: must not be empty")
    if len(password) < 4:
        raise ConfigError("[API] PASSWORD: must be at least 4 characters")
    if len(secret_key) < 16:
        raise ConfigError("[API] SECRET_KEY: must be at least 16 characters")
    host, port = parse_endpoint(get("API", "ENDPOINT", "0.0.0.0:7050"), where("API", "ENDPOINT"))
    api = APIConfig(
        username=username,
        password=password,
        secret_key=secret_key,
        expiry=parse_duration(get("API", "EXPIRY", "1h"), where("API", "EXPIRY")),
        host=host,
        port=port,
        protocol=get("API", "PROTOCOL", "http").lower(),
        body_memory=parse_size(
            get("API", "MAX_BODY_MEMORY", "256M"), where("API", "MAX_BODY_MEMORY")
        ),
        body_idle_timeout=parse_duration(
            get("API", "BODY_IDLE_TIMEOUT", "30s"), where("API", "BODY_IDLE_TIMEOUT")
        ),
        body_timeout=parse_duration(get("API", "BODY_TIMEOUT", "5m"), where("API", "BODY_TIMEOUT")),
    )
    if api.protocol not in ("http", "https"):
        raise ConfigError("[API] PROTOCOL: must be http or https")
    if api.body_memory < 64 << 20:
        raise ConfigError("[API] MAX_BODY_MEMORY: must be at least 64M (one largest body)")
    if api.protocol == "https":
        for key in ("SSL_CERTIFICATE", "SSL_CERTIFICATE_KEY"):
            if not get("API", key, ""):
                raise ConfigError(f"[API] {key}: required when PROTOCOL = https (a PEM file)")
        api = replace(
            api,
            certificate=as_path("API", "SSL_CERTIFICATE"),
            certificate_key=as_path("API", "SSL_CERTIFICATE_KEY"),
        )
    web_port = get("WEBSERVER", "PORT", "7051")
    if not (web_port.isascii() and web_port.isdigit()) or not 0 <= int(web_port) <= 65535:
        raise ConfigError(f"[WEBSERVER] PORT: {web_port!r} is not a TCP port")
    if get("WEBSERVER", "PROTOCOL", "http").lower() != "http":
        raise ConfigError(
            "[WEBSERVER] PROTOCOL: must be http (iPXE fetches the boot files from it)"
        )
    api = replace(api, boot_port=int(web_port))

    driver = _DRIVERS.get(get("DATABASE", "DRIVER", "SQLite3").lower())
    if driver is None:
        raise ConfigError("[DATABASE] DRIVER: only SQLite3 is supported")
    synchronous = get("DATABASE", "SYNCHRONOUS", "NORMAL").upper()
    if synchronous not in _SYNC:
        raise ConfigError("[DATABASE] SYNCHRONOUS: must be one of OFF, NORMAL, FULL, EXTRA")
    database = DatabaseConfig(
        driver=driver, database=as_path("DATABASE", "DATABASE"), synchronous=synchronous
    )

    files = FilesConfig(
        image_files=as_path("FILES", "IMAGE_FILES", "files"),
        image_directory=as_path("FILES", "IMAGE_DIRECTORY", "images"),
        keyfile=as_path("FILES", "KEYFILE", "luna.key"),
    )

    def service(section: str) -> ServiceConfig:
        enabled = parse_bool(get(section, "ENABLED", "no"), where(section, "ENABLED"))
        options = dict(parser[section]) if parser.has_section(section) else {}
        options.pop("ENABLED", None)
        return ServiceConfig(enabled=enabled, options=options)

    def dhcp_service() -> DHCPConfig:
        base = service("DHCP")
        names = tuple(n.strip() for n in get("DHCP", "INTERFACES", "").split(",") if n.strip())
        for name in names:
            if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,14}$", name):
                raise ConfigError(f"[DHCP] INTERFACES: {name!r} is not an interface name")
        lease_time = parse_duration(get("DHCP", "LEASE_TIME", "1h"), where("DHCP", "LEASE_TIME"))
        own = _KNOWN["DHCP"] - {"ENABLED"}
        options = {k: v for k, v in base.options.items() if k not in own}
        return DHCPConfig(
            enabled=base.enabled,
            options=options,
            interfaces=names,
            lease_time=lease_time,
            max_offers=integer("DHCP", "MAX_OFFERS", 1024, 1, 1 << 20),
            offer_rate=integer("DHCP", "OFFER_RATE", 20, 1, 100000),
            offer_burst=integer("DHCP", "OFFER_BURST", 100, 1, 100000),
        )

    def tftp_service() -> TFTPConfig:
        base = service("TFTP")
        port_text = get("TFTP", "PORT", "69")
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) <= 65535:
            raise ConfigError(f"[TFTP] PORT: {port_text!r} is not a UDP port (1-65535)")
        max_transfers = integer("TFTP", "MAX_TRANSFERS", 1000, 1, 65535)
        # The default share shrinks with a small table; a share set larger is an error.
        max_per_client = integer("TFTP", "MAX_PER_CLIENT", min(32, max_transfers), 1, 65535)
        if max_per_client > max_transfers:
            raise ConfigError(
                f"[TFTP] MAX_PER_CLIENT: {max_per_client} is more than "
                f"MAX_TRANSFERS ({max_transfers})"
            )
        return TFTPConfig(
            enabled=base.enabled,
            options=base.options,
            port=int(port_text),
            root=as_path("TFTP", "ROOT", "tftpboot"),
            ipxe=as_path("TFTP", "IPXE", "/usr/lib/ipxe"),
            max_transfers=max_transfers,
            max_per_client=max_per_client,
            max_timeout=integer("TFTP", "MAX_TIMEOUT", 5, 1, 255),
            first_ack_timeout=integer("TFTP", "FIRST_ACK_TIMEOUT", 6, 1, 60),
            request_rate=integer("TFTP", "REQUEST_RATE", 200, 1, 100000),
        )

    def integer(section: str, key: str, default: int, low: int, high: int) -> int:
        text = get(section, key, str(default))
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise ConfigError(
                f"[{section}] {key}: {text!r} is not a whole number from {low} to {high}"
            )
        return int(text)

    def control() -> ControlConfig:
        text = get("CONTROL", "TIMEOUT", "1")
        try:
            timeout = float(text)
        except ValueError:
            timeout = -1.0
        if not 0.1 <= timeout <= 60:
            raise ConfigError(
                f"[CONTROL] TIMEOUT: {text!r} is not a number of seconds from 0.1 to 60"
            )
        suite = integer("CONTROL", "CIPHER_SUITE", 3, 0, 255)
        if suite not in (3, 17):
            raise ConfigError(f"[CONTROL] CIPHER_SUITE: {suite} is not supported (3 or 17)")
        return ControlConfig(
            timeout=timeout,
            retries=integer("CONTROL", "RETRIES", 2, 0, 10),
            cipher_suite=suite,
            sockets=integer("CONTROL", "SOCKETS", 4, 1, 64),
            parallel=integer("CONTROL", "PARALLEL", 256, 1, 4096),
        )

    controller_ip = get("BOOTSTRAP", "CONTROLLER_IP", "") or None
    if controller_ip is not None:
        import ipaddress

        try:
            ipaddress.ip_address(controller_ip)
        except ValueError:
            raise ConfigError(
                f"[BOOTSTRAP] CONTROLLER_IP: {controller_ip!r} is not an IP address"
            ) from None
    level = get("LOGGER", "LEVEL", "info").lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError("[LOGGER] LEVEL: must be debug, info, warning, error or critical")
    controller_name = get("BOOTSTRAP", "CONTROLLER", "controller")
    if not NAME_RE.fullmatch(controller_name):
        raise ConfigError("[BOOTSTRAP] CONTROLLER: not a valid host name")
    cluster_name = get("BOOTSTRAP", "CLUSTER", "cluster")
    if not NAME_RE.fullmatch(cluster_name):
        raise ConfigError(
            f"[BOOTSTRAP] CLUSTER: {cluster_name!r} is not a valid name "
            "(lower-case letters, digits, '.', '_', '-'; up to 63)"
        )
    return Config(
        path=ini_path.resolve(),
        api=api,
        database=database,
        files=files,
        dhcp=dhcp_service(),
        tftp=tftp_service(),
        dns=service("DNS"),
        bootstrap=parse_bool(get("BOOTSTRAP", "ENABLED", "yes"), where("BOOTSTRAP", "ENABLED")),
        controller_name=controller_name,
        controller_ip=controller_ip,
        cluster_name=cluster_name,
        log_level=level,
        control=control(),
        log_file=as_path("LOGGER", "LOGFILE") if get("LOGGER", "LOGFILE", "") else None,
    )
