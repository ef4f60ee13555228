# -*- test-case-name: tests.tftp.test_policy -*-
"""TFTP decisions, pure: which names may be served, which options are
accepted, netascii conversion, the read transfer state machine, and which
clients hold the server's transfer places (:class:`Admission`).

Nothing here touches sockets, files or the clock. The state machine is given
the packets the peer sent and the time (seconds, from the reactor clock the
transport reads); it answers with the packets to send and keeps a deadline
the transport arms a timer for."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Protocol

from luna2d.protocols.rate import TokenBucket
from luna2d.protocols.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    Options,
    Packet,
    options_dict,
)

MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
DEFAULT_BLKSIZE = 512
MAX_TIMEOUT = 255  # RFC 2349's largest timeout option
MODES = ("octet", "netascii")
Peer = tuple[str, int]  # a client: IPv4 address and UDP port


@dataclass(frozen=True)
class Limits:
    """What the server allows, whatever a client asks for.

    ``max_windowsize`` bounds how many blocks are in flight (RFC 7440 allows
    up to 65535; a burst that size would only overflow the client's socket
    buffer). ``timeout`` is the retransmission interval when the client does
    not negotiate one, ``retries`` how many retransmissions of the same window
    are made before the transfer is given up.

    The rest bounds what a client that never answers can hold:
    ``max_timeout`` is the largest ``timeout`` option accepted (a larger one
    is left out of the OACK: RFC 2349 lets the server only echo the value or
    decline the option); ``first_ack_timeout`` is how long (seconds) a
    transfer waits for its first acknowledgement, whatever was negotiated;
    ``max_transfers`` is how many transfers run at once and
    ``max_per_client`` how many of them one client address may hold (see
    :class:`Admission`); one address may send ``request_rate`` requests a
    second, in bursts of twice that (see :class:`RequestRate`)."""

    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64
    timeout: float = 1.0
    retries: int = 5
    max_timeout: int = 5
    first_ack_timeout: float = 6.0
    max_transfers: int = 1000
    max_per_client: int = 32
    request_rate: float = 200.0

    @property
    def request_burst(self) -> float:
        """The burst one address may send at once: twice its rate."""
        return 2 * self.request_rate

    def __post_init__(self) -> None:
        if not MIN_BLKSIZE <= self.max_blksize <= MAX_BLKSIZE:
            raise ValueError(f"max_blksize must be {MIN_BLKSIZE}..{MAX_BLKSIZE}")
        if not 1 <= self.max_windowsize <= 65535:
            raise ValueError("max_windowsize must be 1..65535")
        if self.timeout <= 0 or self.retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        if not 1 <= self.max_timeout <= MAX_TIMEOUT:
            raise ValueError(f"max_timeout must be 1..{MAX_TIMEOUT}")
        if self.first_ack_timeout <= 0:
            raise ValueError("first_ack_timeout must be positive")
        if not 1 <= self.max_per_client <= self.max_transfers:
            raise ValueError("max_per_client must be 1..max_transfers")
        if self.request_rate < 1:
            raise ValueError("request_rate must be at least 1 a second")


@dataclass(frozen=True)
class Settings:
    """The parameters one transfer runs with, after negotiation."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float = 1.0
    retries: int = 5
    first_ack_timeout: float = 6.0


def safe_path(filename: str) -> tuple[str, ...] | None:
    """The path components of a requested name, relative to the TFTP root, or
    None when the name is refused: empty, absolute, or holding a ``..``
    component. Backslashes count as separators (some firmware sends DOS-style
    names); empty and ``.`` components are dropped. Symbolic links are the file
    layer's business: it checks where the path really leads."""
    if not filename or filename[0] in "/\\":
        return None
    parts = tuple(part for part in filename.replace("\\", "/").split("/") if part not in ("", "."))
    if not parts or ".." in parts:
        return None
    return parts


def _number(text: str) -> int | None:
    """A plain ASCII decimal (RFC 2347 option values), else None."""
    if not text or len(text) > 12 or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def negotiate(options: Options, size: int, limits: Limits) -> tuple[Settings, OptionAck | None]:
    """Settle the options of an RRQ for a file of ``size`` bytes (as sent:
    after netascii conversion).

    Known options with usable values are accepted, blksize and windowsize
    clamped to ``limits`` (RFC 2348 and RFC 7440 let the server answer a
    smaller value). RFC 2349 wants a ``timeout`` echoed as asked, so one over
    ``limits.max_timeout`` is declined rather than lowered. Unknown options
    and unusable values are left out of the OACK, as RFC 2347 allows.
    Returns the transfer's settings and the OACK to send, or None when no
    option was accepted (the transfer then starts with DATA 1)."""
    asked = options_dict(options)
    accepted: dict[str, str] = {}
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, limits.timeout

    value = _number(asked.get("blksize", ""))
    if value is not None and value >= MIN_BLKSIZE:
        blksize = min(value, limits.max_blksize)
        accepted["blksize"] = str(blksize)
    value = _number(asked.get("timeout", ""))
    if value is not None and 1 <= value <= limits.max_timeout:
        timeout = float(value)
        accepted["timeout"] = str(value)
    if _number(asked.get("tsize", "")) is not None:
        accepted["tsize"] = str(size)
    value = _number(asked.get("windowsize", ""))
    if value is not None and 1 <= value <= 65535:
        windowsize = min(value, limits.max_windowsize)
        accepted["windowsize"] = str(windowsize)

    settings = Settings(
        blksize=blksize,
        windowsize=windowsize,
        timeout=timeout,
        retries=limits.retries,
        first_ack_timeout=limits.first_ack_timeout,
    )
    if not accepted:
        return settings, None
    # The OACK names options the way the client spelled them, in its order.
    answer: list[tuple[str, str]] = []
    for name, _ in options:
        key = name.lower()
        if key in accepted:
            answer.append((name, accepted.pop(key)))
    return settings, OptionAck(tuple(answer))


def to_netascii(data: bytes) -> bytes:
    """RFC 764 netascii as TFTP uses it: CR becomes CR NUL, LF becomes CR LF."""
    return data.replace(b"\r", b"\r\x00").replace(b"\n", b"\r\n")


class Source(Protocol):
    """The bytes a transfer sends. ``read`` answers None while a part is not
    loaded yet; the transport calls :meth:`ReadTransfer.resume` once it is."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes | None: ...

    def release(self, offset: int) -> None:
        """Bytes before ``offset`` will not be read again."""


class BytesSource:
    """A file already in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        """The number of bytes to send."""
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes | None:
        """``length`` bytes from ``offset`` (fewer at the end)."""
        return self.data[offset : offset + length]

    def release(self, offset: int) -> None:
        """Nothing to free: the bytes are shared with the file cache."""


# Outcomes of a transfer.
COMPLETE = "complete"
TIMED_OUT = "timed out"
UNANSWERED = "never acknowledged"


class ReadTransfer:
    """One RRQ being served, from the first packet to the final ACK.

    Blocks are numbered 1.. internally (the wire number is that modulo 65536,
    so files over 65535 blocks roll over to 0 as common clients expect). A
    window of ``windowsize`` blocks is sent; an ACK for block n within the
    window starts the next window at n + 1 (RFC 7440), so a client that lost
    a block in the middle gets the rest again at once. ACKs for blocks already
    acknowledged are ignored (no Sorcerer's Apprentice doubling). When the
    deadline passes without progress the window is sent again, at most
    ``retries`` times in a row; then the transfer ends as timed out. The
    transfer is complete when the last block (shorter than ``blksize``,
    possibly empty) is acknowledged.

    Until the peer has acknowledged something (ACK 0 of the OACK, or ACK 1)
    the transfer is *unanswered*, and it ends as :data:`UNANSWERED` once
    ``first_ack_timeout`` seconds have passed since its first packet went
    out, whatever timeout was negotiated: a client that asks for a long
    timeout and never answers holds nothing for long."""

    def __init__(self, source: Source, settings: Settings, oack: OptionAck | None = None) -> None:
        self.source = source
        self.settings = settings
        self.oack = oack
        self.blocks = source.size // settings.blksize + 1
        self.acked = 0
        self.sent = 0
        self.waiting_oack_ack = oack is not None
        self.deadline: float | None = None
        self.outcome: str | None = None
        self.retransmissions = 0
        self.answered = False
        # When an unanswered transfer ends: set as its first packet goes out.
        self.give_up_at: float | None = None
        self._retries_left = settings.retries

    @property
    def finished(self) -> bool:
        """True once the transfer is over, one way or the other."""
        return self.outcome is not None

    def start(self, now: float) -> list[Packet]:
        """The first packets: the OACK, or the first window of DATA."""
        if self.waiting_oack_ack:
            assert self.oack is not None
            self._arm(now)
            return [self.oack]
        return self._fill(now)

    def receive(self, packet: Packet, now: float) -> list[Packet]:
        """Packets to send in answer to ``packet`` from the peer."""
        if self.finished:
            return []
        if isinstance(packet, Ack):
            return self._ack(packet.block, now)
        if isinstance(packet, Error):
            self._finish(f"peer error {packet.code}: {packet.message}")
            return []
        self._finish("illegal operation")
        return [Error(ErrorCode.ILLEGAL_OPERATION, "illegal TFTP operation")]

    def expire(self, now: float) -> list[Packet]:
        """Called when the timer fires: retransmit, or give up."""
        if self.finished or self.deadline is None or now < self.deadline:
            return []
        if not self.answered and self.give_up_at is not None and now >= self.give_up_at:
            self._finish(UNANSWERED)
            return [Error(ErrorCode.NOT_DEFINED, "timed out")]
        if self._retries_left <= 0:
            self._finish(TIMED_OUT)
            return [Error(ErrorCode.NOT_DEFINED, "timed out")]
        self._retries_left -= 1
        self.retransmissions += 1
        if self.waiting_oack_ack:
            assert self.oack is not None
            self._arm(now)
            return [self.oack]
        self.sent = self.acked
        return self._fill(now)

    def resume(self, now: float) -> list[Packet]:
        """More of the source is readable: send what the window allows."""
        if self.finished or self.waiting_oack_ack:
            return []
        return self._fill(now)

    def abort(self, code: int, message: str, outcome: str | None = None) -> list[Packet]:
        """End the transfer from the server side (a read error, shutdown,
        its place given to another client): an ERROR with ``message``; the
        outcome is ``outcome``, else "aborted: <message>"."""
        if self.finished:
            return []
        self._finish(outcome or f"aborted: {message}")
        return [Error(code, message)]

    def _ack(self, block: int, now: float) -> list[Packet]:
        if self.waiting_oack_ack:
            if block != 0:
                return []
            self.waiting_oack_ack = False
            self.answered = True
            self._retries_left = self.settings.retries
            return self._fill(now)
        delta = (block - self.acked) & 0xFFFF
        if delta == 0 or self.acked + delta > self.sent:
            return []  # a duplicate, stale or not-yet-sent block
        self.answered = True
        self.acked += delta
        self._retries_left = self.settings.retries
        if self.acked == self.blocks:
            self._finish(COMPLETE)
            return []
        self.source.release(self.acked * self.settings.blksize)
        # An ACK inside the window: the peer lost what followed; resend from there.
        self.sent = min(self.sent, self.acked)
        return self._fill(now)

    def _fill(self, now: float) -> list[Packet]:
        # Runs once per window: locals rather than attributes in the loop.
        blksize = self.settings.blksize
        end = min(self.acked + self.settings.windowsize, self.blocks)
        read = self.source.read
        sent = self.sent
        out: list[Packet] = []
        while sent < end:
            chunk = read(sent * blksize, blksize)
            if chunk is None:
                break
            sent += 1
            out.append(Data(sent & 0xFFFF, chunk))
        self.sent = sent
        if out:
            self._arm(now)
        elif self.sent == self.acked:
            # Nothing in flight: waiting for the source (an unanswered
            # transfer that already sent something still gives up in time).
            self.deadline = None if self.answered else self.give_up_at
        return out

    def _arm(self, now: float) -> None:
        """Something was just sent: the deadline is one timeout away, or
        sooner when an unanswered transfer must give up first."""
        deadline = now + self.settings.timeout
        if not self.answered:
            if self.give_up_at is None:
                self.give_up_at = now + self.settings.first_ack_timeout
            deadline = min(deadline, self.give_up_at)
        self.deadline = deadline

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.deadline = None


# Why a request is turned away when no place can be made for it.
BUSY = "server busy, try again"
CLIENT_BUSY = "too many transfers from this address, try again"


@dataclass(frozen=True)
class Verdict:
    """The answer of :meth:`Admission.admit`: the request is admitted, after
    ``evict`` (a client whose transfer was never acknowledged) gave up its
    place when that is set; or it is refused, with the ``refuse`` message."""

    evict: Peer | None = None
    refuse: str | None = None


class Admission:
    """Who holds the server's transfer places, by client (address, port).

    At most ``max_transfers`` places, and at most ``max_per_client`` for one
    client address. A place is *silent* until its client acknowledges
    something (:meth:`answered`); requests whose file is still being looked
    up are silent too. When a request finds no room, the oldest silent
    place makes room for it: its own address's oldest when that address is
    at its limit, else the oldest of all. Only when every place in the way
    has answered is the request refused. So a flood of requests that are
    never acknowledged (from one address or many, spoofed or not) cannot
    keep a new client out: it only pushes out older silent requests, and a
    real client is past the silent stage within one round trip.

    Every operation is O(1); nothing here sends, closes or reads a clock."""

    def __init__(self, max_transfers: int, max_per_client: int) -> None:
        if not 1 <= max_per_client <= max_transfers:
            raise ValueError("need 1 <= max_per_client <= max_transfers")
        self.max_transfers = max_transfers
        self.max_per_client = max_per_client
        self._held: set[Peer] = set()
        self._per_host: Counter[str] = Counter()
        # Silent places, oldest first: all of them, and by host.
        self._silent: OrderedDict[Peer, None] = OrderedDict()
        self._silent_by_host: dict[str, OrderedDict[Peer, None]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, peer: object) -> bool:
        return peer in self._held

    def held_by(self, host: str) -> int:
        """How many places the client address ``host`` holds."""
        return self._per_host[host]

    @property
    def silent(self) -> int:
        """How many places are held by clients that have not answered yet."""
        return len(self._silent)

    def admit(self, peer: Peer) -> Verdict:
        """Give ``peer`` a place (silent) if one can be had. When the verdict
        names a client to evict, that client's place is already released;
        the caller ends its transfer. A peer that holds a place already is
        released first (a new request replaces the old one)."""
        self.release(peer)
        host = peer[0]
        victim: Peer | None = None
        if self._per_host[host] >= self.max_per_client:
            own = self._silent_by_host.get(host)
            if not own:
                return Verdict(refuse=CLIENT_BUSY)
            victim = next(iter(own))
        elif len(self._held) >= self.max_transfers:
            if not self._silent:
                return Verdict(refuse=BUSY)
            victim = next(iter(self._silent))
        if victim is not None:
            self.release(victim)
        self._held.add(peer)
        self._per_host[host] += 1
        self._silent[peer] = None
        self._silent_by_host.setdefault(host, OrderedDict())[peer] = None
        return Verdict(evict=victim)

    def answered(self, peer: Peer) -> None:
        """``peer`` acknowledged something: its place is no longer silent,
        and no newcomer can take it."""
        self._unsilence(peer)

    def release(self, peer: Peer) -> None:
        """``peer``'s transfer ended (or never started): free its place.
        Releasing a peer that holds none does nothing."""
        if peer not in self._held:
            return
        self._held.discard(peer)
        host = peer[0]
        self._per_host[host] -= 1
        if not self._per_host[host]:
            del self._per_host[host]
        self._unsilence(peer)

    def clear(self) -> None:
        """Free every place."""
        self._held.clear()
        self._per_host.clear()
        self._silent.clear()
        self._silent_by_host.clear()

    def _unsilence(self, peer: Peer) -> None:
        if peer in self._silent:
            del self._silent[peer]
            own = self._silent_by_host[peer[0]]
            del own[peer]
            if not own:
                del self._silent_by_host[peer[0]]


class LineBudget:
    """How many log lines of one kind may be written: at most ``lines`` per
    ``window`` seconds of the clock the caller reads. A flood of requests
    must not turn into a flood of log lines (disk, and the CPU to format
    them); what is held back is counted, for one summary line."""

    def __init__(self, lines: int = 100, window: float = 10.0) -> None:
        if lines < 1 or window <= 0:
            raise ValueError("need at least one line per a positive window")
        self.lines = lines
        self.window = window
        self.held_back = 0
        self._window_end: float | None = None
        self._used = 0

    def take(self, now: float) -> bool:
        """True when one more line may be written at ``now``; else it is
        counted as held back."""
        if self._window_end is None or now >= self._window_end:
            self._window_end = now + self.window
            self._used = 0
        if self._used < self.lines:
            self._used += 1
            return True
        self.held_back += 1
        return False

    def window_end(self) -> float | None:
        """When the current window ends (None before the first line)."""
        return self._window_end

    def drain(self) -> int:
        """How many lines were held back since the last drain; starts again at 0."""
        count, self.held_back = self.held_back, 0
        return count


class RequestRate:
    """How fast one client address may send requests: a token bucket per
    address, ``rate`` requests a second on average and bursts of ``burst``.
    A client fetching files one after the other on a LAN can ask for about a
    hundred a second (curl in a loop does 80 on loopback; GRUB fetches its
    modules in a row), far below what a flood sends and what the server
    can serve. A request over the rate is dropped before it costs a socket,
    a file lookup or a log line, so one address flooding costs little more
    than reading its datagrams. At most ``max_hosts`` addresses are
    remembered, the least recently heard forgotten first (a forgotten
    address starts again with a full bucket). Pure: the caller gives the
    time."""

    def __init__(self, rate: float, burst: float, max_hosts: int = 4096) -> None:
        if rate <= 0 or burst < 1 or max_hosts < 1:
            raise ValueError("need a positive rate, a burst of at least 1 and room for a host")
        self.rate = rate
        self.burst = burst
        self.max_hosts = max_hosts
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, host: str, now: float) -> bool:
        """True when ``host`` may send one more request at ``now`` (and take
        a token for it); False when it is over its rate."""
        buckets = self._buckets
        bucket = buckets.get(host)
        if bucket is None:
            if len(buckets) >= self.max_hosts:
                buckets.popitem(last=False)
            bucket = buckets[host] = TokenBucket(self.rate, self.burst)
        else:
            buckets.move_to_end(host)
        return bucket.take(now)
