# -*- test-case-name: tests.dhcp.test_protocol,tests.dhcp.test_integration -*-
"""The DHCP server's transport: one UDP socket per served interface.

Each socket is bound to port 67 on 0.0.0.0 and to its interface
(``SO_BINDTODEVICE``), so that broadcasts arriving on several networks are
told apart by the socket they arrive on, and may send broadcasts
(``SO_BROADCAST``), so that replies reach clients that have no address yet.
``DHCPProtocol`` decodes, drops and counts what is malformed, asks the
policy and writes the reply; lease changes go to a writer that persists them
in batches, off the reactor thread (through whatever ``save`` it is given).

Nothing here knows the store: ``luna2d.tap`` hands in the policy and the
functions that load and save leases."""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from luna2d.counters import Counters
from luna2d.protocols.dhcp import codec
from luna2d.protocols.dhcp.policy import EVENTS, Inbound, LeaseChange, Link, Policy
from luna2d.protocols.udp import set_buffer

log = Logger()

SIOCGIFADDR = 0x8915
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
RECEIVE_BUFFER = 4 * 1024 * 1024


class InterfaceError(Exception):
    """A configured interface cannot be served (missing, no IPv4 address)."""


# What one DHCP server counts: datagrams and their fate, then one counter per
# policy outcome (``policy.EVENTS``), then the lease store's writes.
COUNTERS = (
    "received",
    "malformed",
    "ignored",
    "not_ready",
    "errors",
    "oversized",
    "sent",
    "send_errors",
    *EVENTS,
    "lease_writes",
    "lease_write_errors",
)


def interface_address(name: str) -> str:
    """The primary IPv4 address of interface ``name`` (one ioctl, no I/O)."""
    if not name or len(name.encode()) > 15:
        raise InterfaceError(f"{name!r} is not an interface name")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise InterfaceError(f"interface {name} does not exist") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InterfaceError(f"interface {name} has no IPv4 address") from None
            raise InterfaceError(f"interface {name}: {exc.strerror}") from None
    return socket.inet_ntoa(answer[20:24])


def bound_socket(interface: str, port: int) -> socket.socket:
    """A non-blocking UDP socket on 0.0.0.0:``port``, bound to ``interface``,
    allowed to broadcast."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
        set_buffer(sock, RECEIVE_BUFFER)  # rides out a boot storm's bursts
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class DHCPProtocol(DatagramProtocol):
    """Decode, ask the policy, write the reply; never let a datagram escape.

    ``clock`` is an IReactorTime (the reactor, or a Clock in tests)."""

    def __init__(
        self,
        link: Link,
        policy: Policy,
        clock: Any,
        stats: Counters,
        changed: Callable[[Sequence[LeaseChange]], None],
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.link = link
        self.policy = policy
        self.clock = clock
        self.stats = stats
        self.changed = changed
        self.ready = ready

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        stats = self.stats
        stats.incr("received")
        try:
            message = codec.decode(data)
        except codec.DecodeError:
            stats.incr("malformed")
            return
        if message.op != codec.BOOTREQUEST:
            stats.incr("ignored")
            return
        if not self.ready():
            stats.incr("not_ready")
            return
        try:
            outcome = self.policy.handle(Inbound(message, self.link), self.clock.seconds())
        except Exception:  # noqa: BLE001 (a datagram must never stop the server)
            self._failed(message)
            return
        if outcome is None:
            stats.incr("ignored")
            return
        if outcome.changes:
            # The policy's lease table holds them already, whether or not the reply goes out.
            self.changed(outcome.changes)
        reply, wire = outcome.reply, None
        if reply is not None:
            try:
                wire = reply.encode(max_size=outcome.max_size, min_size=300)
            except codec.EncodeError:
                # The client's own options (a long client identifier or relay
                # agent information echoed back) leave no room: bad input, not a fault.
                stats.incr("oversized")
                log.warn(  # noqa: G010 - twisted.logger.Logger has warn, not warning
                    "DHCP: the {event} for {mac} on {interface} does not fit "
                    "in {size} octets; not sent",
                    event=outcome.event,
                    mac=message.mac,
                    interface=self.link.interface,
                    size=outcome.max_size,
                )
                return
            except Exception:  # noqa: BLE001 (a datagram must never stop the server)
                self._failed(message)
                return
        stats.incr(outcome.event)
        if outcome.detail:
            log.info(
                "DHCP {event} on {interface}: {detail}",
                event=outcome.event,
                interface=self.link.interface,
                detail=outcome.detail,
            )
        if (
            wire is not None
            and reply is not None
            and outcome.destination is not None
            and self.transport is not None
        ):
            transport: Any = self.transport
            try:
                transport.write(wire, outcome.destination)
                stats.incr("sent")
                log.info(
                    "DHCP {event} {mac} on {interface}: {address} file {file!r}",
                    event=outcome.event,
                    mac=message.mac,
                    interface=self.link.interface,
                    address=reply.yiaddr,
                    file=reply.file.rstrip(b"\x00").decode("latin-1"),
                )
            except OSError as exc:
                stats.incr("send_errors")
                log.warn(  # noqa: G010 - twisted.logger.Logger has warn, not warning
                    "DHCP: cannot send to {dest} on {interface}: {error}",
                    dest=outcome.destination,
                    interface=self.link.interface,
                    error=exc,
                )

    def _failed(self, message: codec.Message) -> None:
        self.stats.incr("errors")
        log.failure(
            "DHCP: cannot answer a request from {mac} on {interface}",
            mac=message.mac,
            interface=self.link.interface,
        )


class LeaseWriter:
    """Persists lease changes in order, one batch at a time: changes that
    arrive while a write runs go together into the next one."""

    def __init__(
        self, save: Callable[[Sequence[LeaseChange]], defer.Deferred[Any]], stats: Counters
    ) -> None:
        self.save = save
        self.stats = stats
        self.pending: list[LeaseChange] = []
        self.writing: defer.Deferred[Any] | None = None
        self._idle: list[defer.Deferred[Any]] = []

    def __call__(self, changes: Sequence[LeaseChange]) -> None:
        self.pending.extend(changes)
        if self.writing is None:
            self._next()

    def _next(self) -> None:
        if not self.pending:
            self.writing = None
            idle, self._idle = self._idle, []
            for waiter in idle:
                waiter.callback(None)
            return
        batch, self.pending = self.pending, []
        d = defer.maybeDeferred(self.save, batch)
        self.writing = d
        d.addCallbacks(self._written, self._failed, errbackArgs=(batch,))
        d.addBoth(lambda _: self._next())

    def _written(self, _: Any) -> None:
        self.stats.incr("lease_writes")

    def _failed(self, failure: Any, batch: list[LeaseChange]) -> None:
        self.stats.incr("lease_write_errors")
        log.failure("DHCP: cannot store {count} lease changes", failure, count=len(batch))

    def flushed(self) -> defer.Deferred[Any]:
        """Fires once every change handed in so far is written (or failed)."""
        if self.writing is None and not self.pending:
            return defer.succeed(None)
        waiter: defer.Deferred[Any] = defer.Deferred()
        self._idle.append(waiter)
        return waiter


# Bytes of datagrams one reactor callback reads from a DHCP socket (about a
# hundred requests). Twisted's default, 256 KiB, let a flood's backlog be
# handled in one callback of 100 to 300 ms (bench/dhcp's lag figures); at
# 32 KiB the reactor comes back between batches and nothing more is dropped.
READ_BUDGET = 32 * 1024


class DHCPServer(service.Service):
    """Serves DHCP on the named interfaces: binds in privilegedStartService
    (port 67 needs privileges), loads the leases in startService and answers
    once they are loaded."""

    def __init__(
        self,
        reactor: Any,
        interfaces: Sequence[str],
        policy: Policy,
        load: Callable[[], defer.Deferred[Any]],
        save: Callable[[Sequence[LeaseChange]], defer.Deferred[Any]],
        port: int = 67,
        address_of: Callable[[str], str] = interface_address,
    ) -> None:
        self.setName("dhcp")  # type: ignore[no-untyped-call]
        self.reactor = reactor
        self.interfaces = list(interfaces)
        self.policy = policy
        self.load = load
        self.port = port
        self.address_of = address_of
        self.stats = Counters(COUNTERS)
        self.writer = LeaseWriter(save, self.stats)
        self.links: list[Link] = []
        self.ports: list[Any] = []
        self.loaded = False

    def privilegedStartService(self) -> None:
        """Bind one socket per interface; InterfaceError names what is wrong."""
        self.bind()
        super().privilegedStartService()  # type: ignore[no-untyped-call]

    def bind(self) -> None:
        """Open the sockets (idempotent)."""
        if self.ports:
            return
        try:
            for name in self.interfaces:
                link = Link(name, self.address_of(name))
                try:
                    sock = bound_socket(name, self.port)
                except OSError as exc:
                    raise InterfaceError(
                        f"interface {name}: cannot bind UDP port {self.port}: {exc.strerror}"
                    ) from None
                protocol = DHCPProtocol(
                    link, self.policy, self.reactor, self.stats, self.writer, lambda: self.loaded
                )
                try:
                    port = self.reactor.adoptDatagramPort(sock.fileno(), socket.AF_INET, protocol)
                finally:
                    sock.close()  # the reactor holds its own duplicate
                port.maxThroughput = READ_BUDGET
                self.links.append(link)
                self.ports.append(port)
                log.info(
                    "DHCP serving {interface} as {address}", interface=name, address=link.address
                )
        except Exception:
            for port in self.ports:
                port.stopListening()
            self.ports, self.links = [], []
            raise

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.bind()
        d = defer.maybeDeferred(self.load)

        def loaded(rows: Any) -> None:
            self.policy.load_leases(rows)
            self.loaded = True

        d.addCallback(loaded)
        d.addErrback(lambda f: log.failure("DHCP: cannot load the leases; not answering", f))

    @property
    def healthy(self) -> bool:
        """Listening on every configured interface with the leases loaded."""
        return bool(self.running and self.loaded and len(self.ports) == len(self.interfaces))

    def health(self) -> tuple[bool, str]:
        """(ok, text) for monitoring: what is served and what was answered."""
        if not self.ports:
            return False, "DHCP is not listening"
        if not self.loaded:
            return False, "DHCP is listening but the leases are not loaded; not answering"
        served = ", ".join(f"{link.interface} ({link.address})" for link in self.links)
        stats = self.stats
        text = (
            f"DHCP serving {served}: {stats['received']} received, {stats['sent']} answered, "
            f"{stats['throttled']} new machines over the offer rate, "
            f"{stats['exhausted']} with no free address, "
            f"{stats['malformed']} malformed, {stats['oversized']} too large to send, "
            f"{stats['errors']} errors"
        )
        return self.healthy, text

    def reload(self) -> str:
        """Read the served interfaces' addresses again (the server identifier
        and boot URLs follow an address change); the index needs no reload."""
        changed = []
        for number, port in enumerate(self.ports):
            link = self.links[number]
            try:
                address = self.address_of(link.interface)
            except InterfaceError as exc:
                changed.append(str(exc))
                continue
            if address != link.address:
                self.links[number] = port.protocol.link = Link(link.interface, address)
                changed.append(f"{link.interface}: {link.address} -> {address}")
        return "DHCP reloaded" + (": " + "; ".join(changed) if changed else ", addresses unchanged")

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()  # type: ignore[no-untyped-call]
        ports, self.ports, self.links = self.ports, [], []
        self.loaded = False
        stopped = [defer.maybeDeferred(port.stopListening) for port in ports]
        return defer.gatherResults(stopped + [self.writer.flushed()]).addCallback(lambda _: None)
