# -*- test-case-name: tests.tftp -*-
"""The TFTP transport: thin DatagramProtocols around the codec and policy.

:class:`TFTPServer` listens on the configured port (69 by default). Each RRQ
is served from a new ephemeral port of its own (a new socket, bound to the
local address the request was sent to, read with ``IP_PKTINFO``, so a
multi-homed controller answers from the address the client expects; see
:class:`TransferPort`). WRQ is refused: the server is read-only.
Datagrams that do not decode are dropped and counted."""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import threads, udp
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from luna2d.counters import Counters
from luna2d.protocols.tftp import codec
from luna2d.protocols.tftp.codec import (
    DecodeError,
    Error,
    ErrorCode,
    Packet,
    ReadRequest,
    WriteRequest,
)
from luna2d.protocols.tftp.files import (
    IPXE_BINARIES,
    AccessDenied,
    FileNotFound,
    TFTPFiles,
    TooLarge,
)
from luna2d.protocols.tftp.policy import (
    BUSY,
    COMPLETE,
    MODES,
    UNANSWERED,
    Admission,
    Limits,
    LineBudget,
    ReadTransfer,
    RequestRate,
    negotiate,
    safe_path,
)
from luna2d.protocols.udp import set_buffer

log = Logger()

EVICTED = "evicted to make room (never acknowledged)"

# Linux's value; Python 3.11's socket module does not name it.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
RECEIVE_BUFFER = 4 * 1024 * 1024
# Requests read from the listening socket in one reactor turn. Twisted's
# default (256 KiB) is thousands of small RRQs in one go: a flood would then
# push out a new client's place before the reactor turns to read its ACK.
READS_PER_TURN = 64
_READ_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNREFUSED, errno.EMSGSIZE)
Address = tuple[str, int]


class PacketInfoPort(udp.Port):
    """A UDP port that also tells its protocol which local address each
    datagram was sent to: ``protocol.datagramReceivedOn(data, addr, local)``.
    Used for the listening socket only; it is bound to all addresses."""

    def createInternetSocket(self) -> socket.socket:
        sock: socket.socket = super().createInternetSocket()
        if self.addressFamily == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        set_buffer(sock, RECEIVE_BUFFER)  # a boot storm sends its RRQs in a burst
        return sock

    def doRead(self) -> None:
        for _ in range(READS_PER_TURN):
            try:
                data, ancillary, _flags, addr = self.socket.recvmsg(self.maxPacketSize, 64)
            except OSError as exc:
                if exc.errno not in _READ_AGAIN:
                    # Never let an odd socket error close the listening port.
                    log.emit(
                        LogLevel.warn,
                        "TFTP: receive error on the listening port: {error}",
                        error=exc,
                    )
                return
            local = None
            for level, kind, payload in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= 12:
                    local = socket.inet_ntoa(payload[4:8])  # ipi_spec_dst
            try:
                self.protocol.datagramReceivedOn(data, addr[:2], local)
            except Exception:  # noqa: BLE001 - one bad datagram must not close the port
                log.failure("TFTP: unexpected error handling a datagram")


def listen(reactor: Any, port: int, protocol: TFTPServer, interface: str = "") -> PacketInfoPort:
    """Bind ``protocol`` to UDP ``port`` on ``interface`` (all by default).
    Raises CannotListenError as ``listenUDP`` does."""
    listening = PacketInfoPort(
        port,
        protocol,
        interface,
        65535,  # type: ignore[no-untyped-call]
        reactor,
    )
    listening.startListening()  # type: ignore[no-untyped-call]
    return listening


# UDP segmentation offload (Linux 4.18+): one sendmsg, many datagrams.
SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
_GSO_SIZE = struct.Struct("=H")
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000  # the whole buffer is one UDP payload before it is cut


def _gso_groups(datagrams: list[bytes]) -> list[list[bytes]]:
    """Split ``datagrams`` (in order) into groups one segmented send can
    carry: equal sizes, except that the last may be shorter, at most 64 of
    them and 65,000 bytes in all."""
    groups: list[list[bytes]] = []
    group: list[bytes] = []
    size = total = 0
    for datagram in datagrams:
        length = len(datagram)
        if (
            group
            and length <= size
            and len(group) < GSO_MAX_SEGMENTS
            and total + length <= GSO_MAX_BYTES
        ):
            group.append(datagram)
            total += length
            if length < size:  # a shorter one ends its group
                groups.append(group)
                group = []
            continue
        if group:
            groups.append(group)
        group, size, total = [datagram], length, length
    if group:
        groups.append(group)
    return groups


class TransferPort:
    """One transfer's UDP socket: bound to an ephemeral port on the local
    address the request came to, connected to the client (the kernel then
    keeps strangers' datagrams away, and an ICMP port-unreachable from a
    client that went away reaches the protocol as ``connectionRefused``).
    A quiet, minimal reader for the reactor: thousands of them come and go
    in a boot storm."""

    gso = True  # until the kernel says otherwise

    def __init__(self, reactor: Any, protocol: DatagramProtocol, local: str, peer: Address) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((local, 0))
            sock.connect(peer)
        except OSError:
            sock.close()
            raise
        self.socket: socket.socket | None = sock
        self._fileno = sock.fileno()
        self.reactor = reactor
        self.protocol = protocol
        self.peer = peer
        self._reading = False

    def start(self) -> None:
        """Hand the port to its protocol and start reading."""
        # The part of IUDPTransport a transfer uses: write, stopListening, getHost.
        self.protocol.makeConnection(self)  # type: ignore[arg-type]
        if self.socket is not None:  # the protocol may have closed it at once
            self.reactor.addReader(self)
            self._reading = True

    def fileno(self) -> int:
        return self._fileno if self.socket is not None else -1

    def logPrefix(self) -> str:
        return "TFTP transfer"

    def getHost(self) -> IPv4Address:
        """The local address and port."""
        host, port = self.socket.getsockname() if self.socket is not None else ("0.0.0.0", 0)
        return IPv4Address("UDP", host, port)

    def doRead(self) -> None:
        for _ in range(64):
            sock = self.socket
            if sock is None:
                return
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                self.protocol.connectionRefused()  # type: ignore[no-untyped-call]
                return
            except OSError:
                return
            self.protocol.datagramReceived(data, self.peer)

    def write(self, datagram: bytes, addr: Address | None = None) -> None:
        """Send one datagram to the client. Raises OSError (a full socket
        buffer, ConnectionRefusedError) for the caller to handle."""
        if self.socket is not None:
            self.socket.send(datagram)

    def write_many(self, datagrams: list[bytes]) -> None:
        """Send a window of datagrams, in order. Runs of equal-sized ones
        (a window of DATA; the last may be shorter) go out in one system call
        with UDP segmentation offload: the kernel cuts the buffer into the
        separate datagrams the client receives. Where the kernel or device
        cannot, each goes alone. Raises OSError as :meth:`write`."""
        sock = self.socket
        if sock is None:
            return
        for group in _gso_groups(datagrams):
            if len(group) == 1 or not TransferPort.gso:
                for datagram in group:
                    sock.send(datagram)
                continue
            try:
                segment = _GSO_SIZE.pack(len(group[0]))
                sock.sendmsg([b"".join(group)], [(SOL_UDP, UDP_SEGMENT, segment)])
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                    raise
                TransferPort.gso = False  # not on this machine: one send per datagram from now on
                log.info(
                    "TFTP: UDP segmentation offload unavailable ({error}); sending "
                    "datagrams one by one",
                    error=exc,
                )
                for datagram in group:
                    sock.send(datagram)

    def stopListening(self) -> None:
        """Close the socket and stop the protocol."""
        sock, self.socket = self.socket, None
        if sock is None:
            return
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False
        sock.close()
        if self.protocol.numPorts:  # not while the protocol is still starting
            self.protocol.doStop()  # type: ignore[no-untyped-call]
        if self.protocol.transport is self:
            # Closed while starting (a one-shot answer, an unreachable
            # client): doStop did not run, and the protocol and this port
            # would hold each other until a full garbage collection.
            self.protocol.transport = None

    def connectionLost(self, reason: Failure) -> None:
        self.stopListening()


def open_transfer_port(
    reactor: Any, protocol: DatagramProtocol, local: str, peer: Address
) -> TransferPort:
    """A started :class:`TransferPort` for ``protocol``. Raises OSError."""
    port = TransferPort(reactor, protocol, local, peer)
    port.start()
    return port


class TransferProtocol(DatagramProtocol):
    """One transfer: decode what the client sends, hand it to the state
    machine, send what that answers, keep a timer at its deadline."""

    noisy = False
    transport: Any

    def __init__(
        self,
        server: TFTPServer,
        machine: ReadTransfer,
        source: Any,
        peer: Address,
        request: ReadRequest,
    ) -> None:
        self.server = server
        self.machine = machine
        self.source = source
        self.peer = peer
        self.request = request
        self.clock = server.reactor
        self.started = self.clock.seconds()
        self._timer: Any = None  # an IDelayedCall
        self._closed = False

    def startProtocol(self) -> None:
        self.source.wakeup = self._wakeup
        self._send(self.machine.start(self.clock.seconds()))
        self._after()

    def datagramReceived(self, data: bytes, addr: Address) -> None:
        if self._closed:
            return
        try:
            packet = codec.decode(data)
        except DecodeError:
            self.server.stats.incr("dropped")
            return
        machine = self.machine
        was_answered = machine.answered
        self._send(machine.receive(packet, self.clock.seconds()))
        if machine.answered and not was_answered:
            self.server.transfer_answered(self)
        self._after()

    def connectionRefused(self) -> None:
        # ICMP port unreachable: the client is gone.
        if not self._closed:
            self.machine.abort(ErrorCode.NOT_DEFINED, "client unreachable")
            self._after()

    def _wakeup(self) -> None:
        if self._closed:
            return
        if getattr(self.source, "error", None):
            self._send(self.machine.abort(ErrorCode.NOT_DEFINED, "read error"))
        else:
            self._send(self.machine.resume(self.clock.seconds()))
        self._after()

    def _expire(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self.clock.seconds()
        deadline = self.machine.deadline
        if deadline is not None and now >= deadline:
            self._send(self.machine.expire(now))
        self._after()

    def _send(self, packets: list[Packet]) -> None:
        if not packets:
            return
        transport = self.transport
        write_many = getattr(transport, "write_many", None)
        try:
            if write_many is not None and len(packets) > 1:
                write_many([packet.encode() for packet in packets])
            else:
                for packet in packets:
                    transport.write(packet.encode())
        except ConnectionRefusedError:
            self.machine.abort(ErrorCode.NOT_DEFINED, "client unreachable")
        except OSError:
            # A full socket buffer: the rest of the window counts as lost and
            # the retransmission timer covers it.
            self.server.stats.incr("send_errors")

    def _after(self) -> None:
        machine = self.machine
        if machine.finished:
            self.close()
            return
        deadline = machine.deadline
        if deadline is None:
            return
        timer = self._timer
        if timer is None or not timer.active():
            # Deadlines mostly move later: one timer, re-armed when it fires.
            delay = max(deadline - self.clock.seconds(), 0)
            self._timer = self.clock.callLater(delay, self._expire)
        elif timer.getTime() > deadline:
            timer.reset(max(deadline - self.clock.seconds(), 0))

    def close(self) -> None:
        """Stop the timer, free the source and the port, tell the server."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.source.close()
        # The source's wakeup is this protocol's method: without this, every
        # ended transfer is a reference cycle that only a full garbage
        # collection frees (tests.tftp.test_flood_garbage).
        self.source.wakeup = None
        self.server.transfer_done(self)
        if self.transport is not None:
            self.transport.stopListening()

    def stopProtocol(self) -> None:
        # The port was closed under the transfer (the reactor shutting
        # down): the transfer ends with it, and leaves the server's table.
        if not self._closed:
            self.machine.abort(ErrorCode.NOT_DEFINED, "port closed")
            self.close()


class _OneShot(DatagramProtocol):
    """Sends one packet from a fresh port, then closes it."""

    noisy = False
    transport: Any

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def startProtocol(self) -> None:
        try:
            self.transport.write(self.payload)
        except OSError:
            pass
        self.transport.stopListening()


@dataclass(frozen=True, eq=False)
class Pending:
    """A request whose file is being looked up, and the local address it
    was sent to. Compared by identity: each request waits in its own."""

    request: ReadRequest
    local: str | None


# What a TFTP server counts (their meaning: TFTPServer's docstring).
COUNTERS = (
    "requests",
    "dropped",
    "stray",
    "rate_limited",
    "duplicates",
    "superseded",
    "refused",
    "started",
    "negotiated",
    "completed",
    "failed",
    "unanswered",
    "evicted",
    "send_errors",
    "retransmissions",
)


class TFTPServer(DatagramProtocol):
    """The listening protocol: validates requests and starts transfers.

    ``reactor`` is the clock (and, for the default ``open_port``, the
    reactor the transfer ports read in); ``open_port(reactor, protocol,
    local, peer)`` opens and starts the port of one transfer (tests pass a
    fake). Which requests get a place is :class:`Admission`'s decision, with
    ``limits.max_transfers`` and ``limits.max_per_client``.
    ``stats`` (:data:`COUNTERS`) counts what happened: ``requests``,
    ``dropped`` (datagrams that do not decode), ``stray`` (valid packets that are not requests),
    ``rate_limited`` (requests dropped: their address sent too many too
    fast), ``duplicates`` (an RRQ again from a client already being served),
    ``superseded``, ``refused`` (error answers), ``started``, ``negotiated``
    (transfers that began with an OACK), ``completed``, ``failed``,
    ``unanswered`` (failed: never acknowledged in time), ``evicted``
    (never acknowledged, and their place given to a newer request),
    ``send_errors``, ``retransmissions``."""

    transport: Any

    def __init__(
        self,
        files: TFTPFiles,
        reactor: Any,
        limits: Limits | None = None,
        interface: str = "",
        open_port: Callable[..., Any] = open_transfer_port,
    ) -> None:
        self.files = files
        self.open_port = open_port
        self.reactor = reactor
        self.limits = limits or Limits()
        self.interface = interface
        self.stats = Counters(COUNTERS)
        # Clients being served, by address: the transfer, or the request
        # while its file is being looked up. ``admission`` holds the same
        # peers and decides who may join.
        self.active: dict[Address, TransferProtocol | Pending] = {}
        self.admission = Admission(self.limits.max_transfers, self.limits.max_per_client)
        self.request_rate = RequestRate(self.limits.request_rate, self.limits.request_burst)
        self.log_budget = LineBudget()
        self._summary: Any = None  # the IDelayedCall of the next summary line

    def datagramReceived(self, data: bytes, addr: Address) -> None:
        self.datagramReceivedOn(data, addr, None)

    def datagramReceivedOn(self, data: bytes, addr: Address, local: str | None) -> None:
        """A datagram to the listening port; ``local`` is the address it was
        sent to, when known."""
        try:
            packet = codec.decode(data)
        except DecodeError:
            self.stats.incr("dropped")
            return
        if not isinstance(packet, (ReadRequest, WriteRequest)):
            self.stats.incr("stray")
            return
        self.stats.incr("requests")
        if not self.request_rate.allow(addr[0], self.reactor.seconds()):
            # Over its rate: dropped before it costs a socket or a log line.
            self.stats.incr("rate_limited")
            return
        if isinstance(packet, ReadRequest):
            self._read_request(packet, addr, local)
        else:
            self._refuse(
                addr, local, ErrorCode.ACCESS_VIOLATION, "read-only server", packet.filename
            )

    def _read_request(self, request: ReadRequest, peer: Address, local: str | None) -> None:
        current = self.active.get(peer)
        if current is not None:
            if current.request == request:
                # The client sent its RRQ again before our first answer reached
                # it; the transfer under way retransmits by itself.
                self.stats.incr("duplicates")
                return
            # Another request from the same port: the client gave up the first
            # (firmware asking tsize, then the file, does this).
            self.stats.incr("superseded")
            self._forget(peer)
            if isinstance(current, TransferProtocol):
                current.machine.abort(ErrorCode.NOT_DEFINED, "superseded by a new request")
                current.close()
        mode = request.mode.lower()
        if mode not in MODES:
            self._refuse(
                peer,
                local,
                ErrorCode.ILLEGAL_OPERATION,
                f"unsupported mode {request.mode!r}",
                request.filename,
            )
            return
        parts = safe_path(request.filename)
        if parts is None:
            self._refuse(peer, local, ErrorCode.FILE_NOT_FOUND, "file not found", request.filename)
            return
        verdict = self.admission.admit(peer)
        if verdict.refuse is not None:
            self._refuse(peer, local, ErrorCode.NOT_DEFINED, verdict.refuse, request.filename)
            return
        if verdict.evict is not None:
            self._evict(verdict.evict)
        pending = self.active[peer] = Pending(request, local)
        d = self.files.open(parts, netascii=mode == "netascii")
        d.addCallbacks(
            self._start, self._not_opened, callbackArgs=(pending, peer), errbackArgs=(pending, peer)
        )
        d.addErrback(self._internal_error, pending, peer)

    def _evict(self, peer: Address) -> None:
        """End ``peer``'s transfer, never acknowledged, to make room: it is
        told the server is busy (if it is a real client, it asks again)."""
        self.stats.incr("evicted")
        current = self.active.pop(peer, None)
        if isinstance(current, TransferProtocol):
            current._send(current.machine.abort(ErrorCode.NOT_DEFINED, BUSY, outcome=EVICTED))
            current.close()
        elif current is not None:
            # Its file is still being looked up (_start drops it). Nothing was
            # sent to it yet: it gets no answer, and asks again if it is real.
            self._note(
                "TFTP {host}:{port} {name!r} evicted before it started",
                host=peer[0],
                port=peer[1],
                name=current.request.filename,
            )

    def _forget(self, peer: Address) -> None:
        """``peer`` no longer holds a place."""
        self.active.pop(peer, None)
        self.admission.release(peer)

    def _start(self, source: Any, pending: Pending, peer: Address) -> None:
        if self.active.get(peer) is not pending:  # superseded, evicted, or the server stopped
            source.close()
            return
        request, local = pending.request, pending.local
        settings, oack = negotiate(request.options, source.size, self.limits)
        if oack is not None:
            self.stats.incr("negotiated")
        machine = ReadTransfer(source, settings, oack)
        protocol = TransferProtocol(self, machine, source, peer, request)
        # In the table before its first packet: a transfer that ends at
        # once (the client unreachable) is taken out by transfer_done.
        self.active[peer] = protocol
        try:
            self.open_port(self.reactor, protocol, local or self.interface, peer)
        except OSError as exc:
            source.close()
            self._forget(peer)
            log.emit(
                LogLevel.warn,
                "TFTP: no port for a transfer to {peer}: {error}",
                peer=peer,
                error=exc,
            )
            self._refuse(peer, local, ErrorCode.NOT_DEFINED, BUSY, request.filename)
            return
        self.stats.incr("started")

    def _not_opened(self, failure: Failure, pending: Pending, peer: Address) -> None:
        if self.active.get(peer) is not pending:  # superseded or evicted: the client moved on
            return
        self._forget(peer)
        name, local = pending.request.filename, pending.local
        if failure.check(FileNotFound):  # type: ignore[no-untyped-call]
            self._refuse(peer, local, ErrorCode.FILE_NOT_FOUND, "file not found", name)
        elif failure.check(AccessDenied):  # type: ignore[no-untyped-call]
            self._refuse(peer, local, ErrorCode.ACCESS_VIOLATION, "access denied", name)
        elif failure.check(TooLarge):  # type: ignore[no-untyped-call]
            self._refuse(peer, local, ErrorCode.NOT_DEFINED, failure.getErrorMessage(), name)
        else:
            log.failure("TFTP: cannot read {name!r}", failure, name=name)
            self._refuse(peer, local, ErrorCode.NOT_DEFINED, "read error", name)

    def _internal_error(self, failure: Failure, pending: Pending, peer: Address) -> None:
        log.failure("TFTP: unexpected error starting a transfer to {peer}", failure, peer=peer)
        if self.active.get(peer) is pending:
            self._forget(peer)

    def _refuse(
        self, peer: Address, local: str | None, code: int, message: str, name: str = ""
    ) -> None:
        """An ERROR answer from a fresh port (as a transfer would send it), logged."""
        self.stats.incr("refused")
        self._note(
            "TFTP {host}:{port} {name!r} refused: {message}",
            host=peer[0],
            port=peer[1],
            name=name,
            message=message,
        )
        payload = Error(code, message).encode()
        try:
            self.open_port(self.reactor, _OneShot(payload), local or self.interface, peer)
        except OSError:
            if self.transport is not None:
                try:
                    self.transport.write(payload, peer)
                except OSError:
                    pass

    def transfer_answered(self, transfer: TransferProtocol) -> None:
        """Called by a transfer's protocol once its client has acknowledged
        something: its place can no longer be taken by a newcomer."""
        if self.active.get(transfer.peer) is transfer:
            self.admission.answered(transfer.peer)

    def transfer_done(self, transfer: TransferProtocol) -> None:
        """Called by a transfer's protocol when it ends: counted and logged
        (one line per transfer, luna2d's TFTP request log)."""
        machine = transfer.machine
        if self.active.get(transfer.peer) is transfer:
            self._forget(transfer.peer)
        self.stats.incr("completed" if machine.outcome == COMPLETE else "failed")
        if machine.outcome == UNANSWERED:
            self.stats.incr("unanswered")
        self.stats.incr("retransmissions", machine.retransmissions)
        settings = machine.settings
        size = machine.source.size
        # What the client acknowledged, of the file's size: all of it only
        # when the transfer completed.
        sent = min(machine.acked * settings.blksize, size)
        write = log.info if machine.outcome == COMPLETE else self._note
        write(
            "TFTP {host}:{port} {name!r} {outcome}: {sent} of {size} bytes, "
            "blksize {blksize}, windowsize {window}, {seconds:.3f} s, "
            "{retransmissions} retransmissions",
            host=transfer.peer[0],
            port=transfer.peer[1],
            name=transfer.request.filename,
            outcome=machine.outcome,
            sent=sent,
            size=size,
            blksize=settings.blksize,
            window=settings.windowsize,
            seconds=self.reactor.seconds() - transfer.started,
            retransmissions=machine.retransmissions,
        )

    def _note(self, format: str, **fields: Any) -> None:
        """One line of the request log for what did not complete (a
        refusal, an eviction, a failed transfer), within the log budget;
        past it, counted for a summary line at the end of the window."""
        budget = self.log_budget
        if budget.take(self.reactor.seconds()):
            log.info(format, **fields)
            return
        if self._summary is None or not self._summary.active():
            end = budget.window_end()
            delay = max((end or 0.0) - self.reactor.seconds(), 0.0)
            self._summary = self.reactor.callLater(delay, self._summarize)

    def _summarize(self) -> None:
        self._summary = None
        held_back = self.log_budget.drain()
        if held_back:
            log.emit(
                LogLevel.warn,
                "TFTP: {count} more refusals and unfinished transfers were "
                "not logged in the last {window:g} s (over {lines} lines); the counters of "
                "/monitor/service/tftp have them all",
                count=held_back,
                window=self.log_budget.window,
                lines=self.log_budget.lines,
            )

    def stopProtocol(self) -> None:
        """The listening port closed: end every transfer (requests still
        being looked up are dropped when their file arrives)."""
        for current in list(self.active.values()):
            if isinstance(current, TransferProtocol):
                current.close()
        self.active.clear()
        self.admission.clear()
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
        self._summarize()


class TFTPService(service.Service):
    """The TFTP server as a child of the daemon's service tree: binds the
    listening port in ``privilegedStartService`` (port 69 needs root), warms
    the cache with the iPXE binaries on start, stops transfers on stop."""

    def __init__(
        self,
        reactor: Any,
        port: int,
        root: Path,
        ipxe_dir: Path | None,
        interface: str = "",
        limits: Limits | None = None,
    ) -> None:
        self.reactor = reactor
        self.port = port
        self.interface = interface
        pool = reactor.getThreadPool()
        self.files = TFTPFiles(
            root,
            reactor,
            lambda f, *a: threads.deferToThreadPool(reactor, pool, f, *a),
            ipxe_dir=ipxe_dir,
        )
        self.server = TFTPServer(self.files, reactor, limits, interface=interface)
        self.listening: PacketInfoPort | None = None

    def bind(self) -> None:
        """Bind the listening port now, unless it is bound. Raises
        CannotListenError when it cannot be."""
        if self.listening is None:
            self.listening = listen(self.reactor, self.port, self.server, self.interface)

    def privilegedStartService(self) -> None:
        """Bind the port (before privileges are dropped)."""
        self.bind()
        super().privilegedStartService()  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        """Read the iPXE binaries into the cache before the first node asks."""
        super().startService()  # type: ignore[no-untyped-call]
        for name in IPXE_BINARIES:
            self.files.open((name,)).addCallbacks(
                lambda source: source.close(), lambda _failure: None
            )

    def stopService(self) -> Any:
        """Stop listening; transfers under way end."""
        super().stopService()  # type: ignore[no-untyped-call]
        listening, self.listening = self.listening, None
        self.files.close()
        if listening is not None:
            return listening.stopListening()  # type: ignore[no-untyped-call]
        return None

    @property
    def bound_port(self) -> int | None:
        """The UDP port actually bound (useful when configured as 0)."""
        if self.listening is None:
            return None
        port: int = self.listening.getHost().port  # type: ignore[no-untyped-call]
        return port

    def health(self) -> tuple[bool, str]:
        """(ok, text) for /monitor/service/tftp: listening or not, and the counters."""
        if self.listening is None:
            return False, "TFTP is not listening"
        counters = self.server.stats.text()
        return True, (
            f"TFTP listening on UDP {self.bound_port}, "
            f"{len(self.server.active)} transfers "
            f"under way{'; ' + counters if counters else ''}"
        )

    def reload(self) -> str:
        """Forget the file cache: the next requests read the files again."""
        self.files.close()
        return "TFTP file cache cleared"
