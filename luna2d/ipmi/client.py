# -*- test-case-name: tests.ipmi.test_client -*-
"""The IPMI client on the reactor: a few UDP sockets shared by every BMC
luna2d talks to, one :class:`~luna2d.ipmi.session.Session` per command, and
timers on the reactor's clock.

Each socket is a thin ``DatagramProtocol``: it decodes a datagram (bad ones
are dropped and counted), hands the packet to the session waiting on that
address, and writes what the session answers. No thread, no blocking call,
no state outside the sessions: a dead BMC costs one timer, and it fails
alone ("timeout") while the others go on. :meth:`IPMIClient.fan_out` runs a
command on many BMCs with a cap on how many run at once."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from luna2d.counters import Counters
from luna2d.ipmi import codec
from luna2d.ipmi.commands import Command
from luna2d.ipmi.session import Credentials, Fault, Outcome, Output, Session

__all__ = ["COUNTERS", "IPMIClient", "Target"]

log = Logger()
IPMI_PORT = 623
SOCKET_BUFFER = 1 << 20
# Errors from sendto that no retry will cure.
PERMANENT_SEND_ERRORS = {
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.EACCES,
    errno.EPERM,
    errno.EADDRNOTAVAIL,
    errno.EINVAL,
    errno.EAFNOSUPPORT,
}


@dataclass(frozen=True)
class Target:
    """One BMC to run a command on; ``key`` names it in results (the node)."""

    key: str
    host: str
    credentials: Credentials
    port: int = IPMI_PORT


# What the client's sockets saw: ``malformed`` did not decode, ``stray`` came
# from an address no session waits on, ``rejected`` decoded but the session
# did not take it; ``sessions`` counts the sessions started.
COUNTERS = ("sent", "received", "malformed", "stray", "rejected", "send_errors", "sessions")


@dataclass
class _Run:
    session: Session
    target: Target
    address: tuple[str, int]
    deferred: defer.Deferred[Outcome]
    socket: _Socket | None = None
    timer: Any = None
    reported: bool = False


class _Socket(DatagramProtocol):
    """One UDP socket; sessions on it are keyed by the BMC's address."""

    def __init__(self, client: IPMIClient) -> None:
        self.client = client
        self.runs: dict[tuple[str, int], _Run] = {}

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """Decode (drop and count what does not), hand to the waiting session."""
        stats = self.client.stats
        stats.incr("received")
        run = self.runs.get((addr[0], addr[1]))
        if run is None:
            stats.incr("stray")
            return
        try:
            packet = codec.decode(datagram)
        except codec.DecodeError:
            stats.incr("malformed")
            return
        output = run.session.receive(packet, self.client.reactor.seconds())
        if output.dropped:
            stats.incr("rejected")
        self.client._apply(run, output)


class IPMIClient:
    """Runs IPMI commands on BMCs over RMCP+ (UDP 623)."""

    def __init__(
        self,
        reactor: Any,
        *,
        sockets: int = 4,
        timeout: float = 1.0,
        retries: int = 2,
        cipher_suite: int = 3,
        interface: str = "",
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if sockets < 1:
            raise ValueError("an IPMI client needs at least one socket")
        self.reactor = reactor
        self.socket_count = sockets
        self.timeout = timeout
        self.retries = retries
        self.cipher_suite = cipher_suite
        self.interface = interface
        self.random = random
        self.stats = Counters(COUNTERS)
        self._sockets: list[_Socket] = []
        self._ports: list[Any] = []
        self._waiting: dict[tuple[str, int], deque[_Run]] = {}
        self._runs: dict[int, _Run] = {}
        self._closed = False

    # -- sockets ------------------------------------------------------------------------------
    def _bind(self) -> None:
        for _ in range(self.socket_count):
            proto = _Socket(self)
            port = self.reactor.listenUDP(0, proto, interface=self.interface)
            handle = getattr(port, "getHandle", lambda: None)()
            if isinstance(handle, socket.socket):
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    try:
                        handle.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                    except OSError:
                        pass
            self._sockets.append(proto)
            self._ports.append(port)

    @property
    def ports(self) -> list[int]:
        """The local UDP ports the client sends from (empty before first use)."""
        return [port.getHost().port for port in self._ports]

    # -- running commands ---------------------------------------------------------------------
    def run(
        self, target: Target, command: Command, cipher_suite: int | None = None
    ) -> defer.Deferred[Outcome]:
        """Run ``command`` on one BMC. The Deferred fires with a Success or a
        Fault (it never errbacks) as soon as the outcome is known; the
        session is closed after that in the background."""
        deferred: defer.Deferred[Outcome] = defer.Deferred()
        if self._closed:
            deferred.callback(Fault("error", "the IPMI client is stopped"))
            return deferred
        try:
            address = ipaddress.ip_address(target.host)
        except ValueError:
            deferred.callback(Fault("error", f"BMC address {target.host!r} is not an IP address"))
            return deferred
        if address.version != 4:
            deferred.callback(
                Fault("unsupported", f"BMC address {target.host}: only IPv4 is supported")
            )
            return deferred
        if not self._sockets:
            self._bind()
        session = Session(
            target.credentials,
            command,
            cipher_suite=cipher_suite or self.cipher_suite,
            timeout=self.timeout,
            retries=self.retries,
            random=self.random,
        )
        run = _Run(session, target, (str(address), target.port), deferred)
        self.stats.incr("sessions")
        queue = self._waiting.get(run.address)
        if queue is not None:
            queue.append(run)  # the same BMC is busy on every socket: wait for one to finish
        else:
            self._start(run)
        return deferred

    def fan_out(
        self,
        targets: Iterable[Target],
        command: Callable[[], Command],
        limit: int = 64,
        cipher_suite: int | None = None,
    ) -> defer.Deferred[dict[str, Outcome]]:
        """Run a fresh ``command()`` on every target, at most ``limit`` at a
        time. Fires with ``{target.key: Success | Fault}`` once every BMC
        has answered or failed."""
        semaphore = defer.DeferredSemaphore(max(1, limit))
        results: dict[str, Outcome] = {}

        def one(target: Target) -> defer.Deferred[None]:
            """Run the command on one target under the semaphore; record its outcome."""

            def record(outcome: Outcome) -> None:
                results[target.key] = outcome

            return semaphore.run(self.run, target, command(), cipher_suite).addCallback(record)

        def all_done(_: object) -> dict[str, Outcome]:
            return results

        everything = defer.gatherResults([one(target) for target in targets], consumeErrors=True)
        return everything.addCallback(all_done)

    def _start(self, run: _Run) -> None:
        sock = min(
            (s for s in self._sockets if run.address not in s.runs),
            key=lambda s: len(s.runs),
            default=None,
        )
        if sock is None:
            self._waiting.setdefault(run.address, deque()).append(run)
            return
        run.socket = sock
        sock.runs[run.address] = run
        self._runs[id(run)] = run
        self._apply(run, run.session.start(self.reactor.seconds()))

    def _apply(self, run: _Run, output: Output) -> None:
        """Do what the session asked: send, report, re-arm or end."""
        outcome = output.outcome
        for datagram in output.send:
            failure = self._send(run, datagram)
            if failure is not None and outcome is None and not run.reported:
                outcome = failure
                output = Output(outcome=failure, finished=True)
                break
        if output.finished:
            self._end(run)
        elif output.deadline is not None:
            self._arm(run, output.deadline)
        if outcome is not None and not run.reported:
            run.reported = True
            run.deferred.callback(outcome)
        if output.finished and not run.reported:
            run.reported = True
            run.deferred.callback(Fault("error", "the session ended without an outcome"))

    def _send(self, run: _Run, datagram: bytes) -> Fault | None:
        sock = run.socket
        if sock is None or sock.transport is None:
            return Fault("error", "the IPMI client is stopped")
        try:
            sock.transport.write(datagram, run.address)  # type: ignore[call-arg,arg-type,misc]
        except OSError as exc:
            self.stats.incr("send_errors")
            if exc.errno in PERMANENT_SEND_ERRORS:
                return Fault(
                    "unreachable", f"cannot send to {run.address[0]}: {exc.strerror or exc}"
                )
            return None  # transient (buffer full): the retry timer resends
        self.stats.incr("sent")
        return None

    def _arm(self, run: _Run, deadline: float) -> None:
        timer = run.timer
        if timer is not None and timer.active():
            if timer.getTime() == deadline:
                return
            timer.cancel()
        delay = max(0.0, deadline - self.reactor.seconds())
        run.timer = self.reactor.callLater(delay, self._tick, run)

    def _tick(self, run: _Run) -> None:
        run.timer = None
        self._apply(run, run.session.tick(self.reactor.seconds()))

    def _end(self, run: _Run) -> None:
        if run.timer is not None and run.timer.active():
            run.timer.cancel()
        run.timer = None
        self._runs.pop(id(run), None)
        sock = run.socket
        if sock is not None and sock.runs.get(run.address) is run:
            del sock.runs[run.address]
        queue = self._waiting.get(run.address)
        if queue:
            self._start(queue.popleft())
            if not queue and self._waiting.get(run.address) is queue:
                del self._waiting[run.address]
        elif queue is not None:
            del self._waiting[run.address]

    @property
    def in_flight(self) -> int:
        """Sessions started and not yet finished (closing ones included)."""
        return len(self._runs)

    def stop(self) -> defer.Deferred[list[Any]]:
        """Fail whatever is in flight, then stop listening."""
        self._closed = True
        for run in list(self._runs.values()) + [r for q in self._waiting.values() for r in q]:
            if run.timer is not None and run.timer.active():
                run.timer.cancel()
            if not run.reported:
                run.reported = True
                run.deferred.callback(Fault("error", "the IPMI client is stopping"))
        self._runs.clear()
        self._waiting.clear()
        ports, self._ports, self._sockets = self._ports, [], []
        return defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in ports])
