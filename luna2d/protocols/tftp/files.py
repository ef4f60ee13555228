# -*- test-case-name: tests.tftp.test_files,tests.tftp.test_flood_garbage -*-
"""The files the TFTP server sends, read without blocking the reactor.

Every file-system call (resolving a name, ``open``, ``fstat``, reads) runs
through an injected ``run_in_thread`` (the reactor's thread pool in the
daemon). Files up to ``small_limit`` bytes are read whole and kept in an
in-memory cache (the iPXE binaries every node asks for), re-checked against
the file's identity at most once per ``revalidate`` seconds of the reactor
clock. Larger files are read in chunks ahead of the transfers that use them.
Identical requests that arrive while a name is being looked up share that
one lookup and read; concurrent transfers of one large file share its
chunks.

Names are looked up in the TFTP root; a boot binary's name (``.efi``,
``.kpxe``, ``.kkpxe``, ``.pxe``, ``.lkrn``) without a directory part that is
not there is looked up in the iPXE directory (the distribution's ``ipxe``
package by default), so a fresh install serves ``undionly.kpxe``,
``ipxe.efi`` and ``snponly.efi`` with nothing to copy. A name whose real path
(symbolic links resolved) leaves the root is not found."""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from luna2d.counters import Counters
from luna2d.protocols.tftp.policy import BytesSource, to_netascii

log = Logger()

RunInThread = Callable[..., defer.Deferred[Any]]

SMALL_LIMIT = 8 * 1024 * 1024
CACHE_BUDGET = 64 * 1024 * 1024
NETASCII_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024
READ_AHEAD = 2
REVALIDATE = 1.0
IPXE_BINARIES = ("undionly.kpxe", "ipxe.efi", "snponly.efi")
# Only boot binaries come from the iPXE directory, whatever else it holds.
IPXE_SUFFIXES = (".efi", ".kpxe", ".kkpxe", ".pxe", ".lkrn")


class FileNotFound(Exception):
    """No regular file by that name inside the directories served."""


class AccessDenied(Exception):
    """The file exists but the daemon may not read it."""


class TooLarge(Exception):
    """The file cannot be sent in the mode asked for."""


class ReadFailed(Exception):
    """An I/O error while reading a file."""


Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _inside(path: bytes, base: bytes) -> bool:
    return path == base or path.startswith(base.rstrip(b"/") + b"/")


Base = tuple[bytes, bool]  # a directory, and whether its links may lead out of it


def _open_under(bases: Sequence[Base], parts: tuple[str, ...]) -> tuple[bytes, int, os.stat_result]:
    """Blocking: the real path, an open descriptor and the stat of the first
    regular file named ``parts`` under one of ``bases`` (whose real path
    stays inside that base unless the base allows links out)."""
    relative = os.path.join(*(part.encode("latin-1") for part in parts))
    denied = False
    for base, links_out in bases:
        real_base = os.path.realpath(base)
        real = os.path.realpath(os.path.join(real_base, relative))
        if not links_out and not _inside(real, real_base):
            continue
        try:
            # O_NONBLOCK: a FIFO in the root must not hang a pool thread.
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except PermissionError:
            denied = True
            continue
        except OSError:
            continue
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            continue
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            continue
        return real, fd, st
    if denied:
        raise AccessDenied()
    raise FileNotFound()


def _read_all(fd: int, size: int) -> bytes:
    """Blocking: exactly ``size`` bytes from the start of ``fd``, then close it."""
    try:
        pieces = []
        offset = 0
        while offset < size:
            piece = os.pread(fd, min(size - offset, 1 << 20), offset)
            if not piece:
                raise ReadFailed("the file shrank while being read")
            pieces.append(piece)
            offset += len(piece)
        return b"".join(pieces)
    except OSError as exc:
        raise ReadFailed(os.strerror(exc.errno or errno.EIO)) from None
    finally:
        os.close(fd)


def _resolve_and_read(
    bases: Sequence[Base], parts: tuple[str, ...], known: dict[bytes, Identity], small_limit: int
) -> tuple[bytes, Identity, bytes | None, int | None]:
    """Blocking, in a pool thread: find the file; read it whole when it is
    small and not already cached with the same identity. Returns the real
    path, the identity, the bytes (None when the cache holds them or the file
    is large) and, for a large file, its open descriptor."""
    real, fd, st = _open_under(bases, parts)
    ident = _identity(st)
    if known.get(real) == ident:
        os.close(fd)
        return real, ident, None, None
    if st.st_size <= small_limit:
        return real, ident, _read_all(fd, st.st_size), None
    return real, ident, None, fd


def _read_large_netascii(fd: int, size: int) -> bytes:
    return to_netascii(_read_all(fd, size))


@dataclass
class _Entry:
    identity: Identity
    data: bytes
    netascii: bytes | None = None


class ChunkedFile:
    """A large file shared by the transfers reading it: chunks are read in a
    pool thread ahead of the readers and dropped once every reader is past
    them. The descriptor is closed when the last reader is done."""

    def __init__(self, owner: TFTPFiles, key: tuple[bytes, Identity], fd: int, size: int) -> None:
        self.owner = owner
        self.key = key
        self.fd = fd
        self.size = size
        self.chunk = owner.chunk
        self.chunks: dict[int, bytes] = {}
        self.loading: set[int] = set()
        self.readers: set[ChunkReader] = set()
        self.error: str | None = None
        self.closed = False

    def reader(self) -> ChunkReader:
        """A new reader (one per transfer), positioned at the start."""
        reader = ChunkReader(self)
        self.readers.add(reader)
        self.want(0)
        return reader

    def want(self, index: int) -> None:
        """Start reading chunk ``index`` unless it is there or on its way."""
        if (
            self.error
            or index in self.chunks
            or index in self.loading
            or index * self.chunk >= max(self.size, 1)
        ):
            return
        self.loading.add(index)
        d = self.owner.run_in_thread(os.pread, self.fd, self.chunk, index * self.chunk)
        d.addCallbacks(self._loaded, self._failed, callbackArgs=(index,), errbackArgs=(index,))

    def _loaded(self, data: bytes, index: int) -> None:
        self.loading.discard(index)
        expected = min(self.chunk, self.size - index * self.chunk)
        if len(data) != expected:
            self._fail(index, "the file changed while being sent")
            return
        if not self.closed:
            self.chunks[index] = data
        self._wake()

    def _failed(self, failure: Failure, index: int) -> None:
        self.loading.discard(index)
        self._fail(index, failure.getErrorMessage() or "read error")

    def _fail(self, index: int, message: str) -> None:
        log.emit(
            LogLevel.warn,
            "TFTP: reading {key} at chunk {index} failed: {message}",
            key=self.key[0],
            index=index,
            message=message,
        )
        self.error = message
        self._wake()

    def _wake(self) -> None:
        if self.closed:
            self._close_fd()
            return
        for reader in list(self.readers):
            if reader.wakeup is not None:
                reader.wakeup()

    def evict(self) -> None:
        """Drop the chunks every reader is done with."""
        if not self.readers:
            return
        low = min(reader.released for reader in self.readers) // self.chunk
        for index in [i for i in self.chunks if i < low]:
            del self.chunks[index]

    def drop(self, reader: ChunkReader) -> None:
        """``reader`` is done; the last one out closes the file."""
        self.readers.discard(reader)
        if self.readers:
            self.evict()
            return
        self.closed = True
        self.chunks.clear()
        self.owner._chunked_done(self)
        self._close_fd()

    def _close_fd(self) -> None:
        # A read still running in a pool thread uses the descriptor: close it
        # once the last one has come back.
        if self.closed and not self.loading and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ChunkReader:
    """One transfer's view of a :class:`ChunkedFile` (a policy ``Source``)."""

    def __init__(self, shared: ChunkedFile) -> None:
        self.shared = shared
        self.released = 0
        self._asked = -1
        self.wakeup: Callable[[], None] | None = None

    @property
    def size(self) -> int:
        """The number of bytes to send."""
        return self.shared.size

    @property
    def error(self) -> str | None:
        """Why the file can no longer be read, if it cannot."""
        return self.shared.error

    def read(self, offset: int, length: int) -> bytes | None:
        """``length`` bytes at ``offset`` when loaded, else None (and the
        missing chunks are asked for). Called once per block sent: kept lean."""
        shared = self.shared
        size = shared.chunk
        index = offset // size
        if index != self._asked:  # the first block in this chunk: ask for it and the ones ahead
            self._asked = index
            for ahead in range(index, index + 1 + READ_AHEAD):
                shared.want(ahead)
        end = min(offset + length, shared.size)
        if offset >= end:
            return b""
        chunk = shared.chunks.get(index)
        if chunk is None or shared.error:
            return None
        start = index * size
        if end - start <= size:
            return chunk[offset - start : end - start]
        pieces = [chunk[offset - start :]]
        # The block runs into the next chunk(s).
        for later in range(index + 1, (end - 1) // size + 1):
            following = shared.chunks.get(later)
            if following is None:
                shared.want(later)
                return None
            pieces.append(following[: end - later * size])
        return b"".join(pieces)

    def release(self, offset: int) -> None:
        """Bytes before ``offset`` are done with: their chunks may go."""
        if offset // self.shared.chunk > self.released // self.shared.chunk:
            self.released = offset
            self.shared.evict()
        else:
            self.released = max(self.released, offset)

    def close(self) -> None:
        """The transfer is over."""
        self.wakeup = None
        self.shared.drop(self)


class MemorySource(BytesSource):
    """A cached file: a policy ``Source`` with nothing to close."""

    error: str | None = None
    wakeup: Callable[[], None] | None = None

    def close(self) -> None:
        """Nothing to release: the cache owns the bytes."""


class TFTPFiles:
    """Finds and reads the files the TFTP server sends (see the module doc)."""

    def __init__(
        self,
        root: Path,
        clock: Any,
        run_in_thread: RunInThread,
        ipxe_dir: Path | None = None,
        small_limit: int = SMALL_LIMIT,
        cache_budget: int = CACHE_BUDGET,
        revalidate: float = REVALIDATE,
        chunk: int = CHUNK,
        netascii_limit: int = NETASCII_LIMIT,
    ) -> None:
        """``clock`` is an IReactorTime (the reactor; a Clock in tests);
        ``run_in_thread(f, *args)`` runs ``f`` off the reactor thread and
        returns a Deferred of its result."""
        self.root = root
        self.ipxe_dir = ipxe_dir
        self.clock = clock
        self.run_in_thread = run_in_thread
        self.small_limit = small_limit
        self.cache_budget = cache_budget
        self.revalidate = revalidate
        self.chunk = chunk
        self.netascii_limit = netascii_limit
        self.cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self.cached_bytes = 0
        self._names: dict[tuple[str, ...], tuple[bytes, float]] = {}
        self._pending: dict[tuple[tuple[str, ...], bool], list[defer.Deferred[Any]]] = {}
        self._chunked: dict[tuple[bytes, Identity], ChunkedFile] = {}
        self.stats = Counters(("lookups", "cache_hits", "reads", "merged"))

    def bases(self, parts: tuple[str, ...]) -> list[Base]:
        """The directories ``parts`` is looked up in, in order: the root
        (nothing may lead out of it), then, for a boot binary's name without a
        directory part, the iPXE directory, whose links are followed (Debian's
        ``/usr/lib/ipxe/ipxe.efi`` links to ``/boot/ipxe.efi``)."""
        bases = [(os.fsencode(self.root), False)]
        if (
            self.ipxe_dir is not None
            and len(parts) == 1
            and parts[0].lower().endswith(IPXE_SUFFIXES)
        ):
            bases.append((os.fsencode(self.ipxe_dir), True))
        return bases

    def open(self, parts: tuple[str, ...], netascii: bool = False) -> defer.Deferred[Any]:
        """A Deferred firing with a source (``size``, ``read``, ``release``,
        ``close``, ``error``, ``wakeup``) for the file named by ``parts``, or
        failing with FileNotFound, AccessDenied, TooLarge or ReadFailed."""
        self.stats.incr("lookups")
        fresh = self._fresh(parts)
        if fresh is not None:
            self.stats.incr("cache_hits")
            return defer.succeed(self._memory(fresh, netascii))
        key = (parts, netascii)
        waiters = self._pending.get(key)
        d: defer.Deferred[Any] = defer.Deferred()
        if waiters is not None:
            self.stats.incr("merged")
            waiters.append(d)
            return d
        self._pending[key] = [d]
        known = {real: entry.identity for real, entry in self.cache.items()}
        lookup = self.run_in_thread(
            _resolve_and_read, self.bases(parts), parts, known, self.small_limit
        )
        lookup.addCallback(self._found, parts, netascii)
        lookup.addBoth(self._deliver, key)
        return d

    def _fresh(self, parts: tuple[str, ...]) -> _Entry | None:
        seen = self._names.get(parts)
        if seen is None:
            return None
        real, checked = seen
        entry = self.cache.get(real)
        if entry is None or self.clock.seconds() - checked >= self.revalidate:
            return None
        self.cache.move_to_end(real)
        return entry

    def _found(
        self,
        found: tuple[bytes, Identity, bytes | None, int | None],
        parts: tuple[str, ...],
        netascii: bool,
    ) -> Any:
        real, ident, data, fd = found
        if fd is not None:
            return self._large(real, ident, fd, netascii)
        if data is None:
            entry = self.cache.get(real)
            if entry is None or entry.identity != ident:
                # Evicted meanwhile: look again (rare, and never loops on a
                # steady file since the cache then holds it).
                self._names.pop(parts, None)
                known: dict[bytes, Identity] = {}
                again = self.run_in_thread(
                    _resolve_and_read, self.bases(parts), parts, known, self.small_limit
                )
                return again.addCallback(self._found, parts, netascii)
            self.stats.incr("cache_hits")
        else:
            self.stats.incr("reads")
            entry = self._remember(real, ident, data)
        self._names[parts] = (real, self.clock.seconds())
        return self._memory(entry, netascii)

    def _memory(self, entry: _Entry, netascii: bool) -> MemorySource:
        if not netascii:
            return MemorySource(entry.data)
        if entry.netascii is None:
            entry.netascii = to_netascii(entry.data)
        return MemorySource(entry.netascii)

    def _remember(self, real: bytes, ident: Identity, data: bytes) -> _Entry:
        old = self.cache.pop(real, None)
        if old is not None:
            self.cached_bytes -= len(old.data)
        entry = _Entry(ident, data)
        if len(data) <= self.cache_budget:
            self.cache[real] = entry
            self.cached_bytes += len(data)
            while self.cached_bytes > self.cache_budget:
                _, evicted = self.cache.popitem(last=False)
                self.cached_bytes -= len(evicted.data)
        return entry

    def _large(self, real: bytes, ident: Identity, fd: int, netascii: bool) -> Any:
        size = ident[2]
        if netascii:
            if size > self.netascii_limit:
                os.close(fd)
                raise TooLarge(
                    f"netascii transfers are limited to {self.netascii_limit} bytes; use octet"
                )
            self.stats.incr("reads")
            return self.run_in_thread(_read_large_netascii, fd, size).addCallback(MemorySource)
        key = (real, ident)
        shared = self._chunked.get(key)
        if shared is None:
            shared = self._chunked[key] = ChunkedFile(self, key, fd, size)
            self.stats.incr("reads")
        else:
            os.close(fd)
        return shared

    def _chunked_done(self, shared: ChunkedFile) -> None:
        if self._chunked.get(shared.key) is shared:
            del self._chunked[shared.key]

    def _deliver(self, result: Any, key: tuple[tuple[str, ...], bool]) -> None:
        waiters = self._pending.pop(key, [])
        if isinstance(result, Failure):
            # Its traceback's frames hold the Failure again (a cycle only a
            # full garbage collection frees; a flood of requests for a
            # missing name makes one per lookup): kept as text instead.
            result.cleanFailure()  # type: ignore[no-untyped-call]
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            elif isinstance(result, ChunkedFile):
                waiter.callback(result.reader())
            else:
                waiter.callback(MemorySource(result.data))  # one per transfer: it carries a wakeup

    def close(self) -> None:
        """Forget the cache (the service stops)."""
        self.cache.clear()
        self.cached_bytes = 0
        self._names.clear()
