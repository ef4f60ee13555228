"""The TFTP file layer on a real temporary directory: lookups confined to the
root (``..`` cannot reach it, but links out of the root, FIFOs and
directories are refused), the iPXE directory fallback, the in-memory cache
and its revalidation on the ``Clock``, identical in-flight requests sharing
one read, netascii, and large files read in chunks ahead of the transfers
sharing them. File-system calls go through an injected ``run_in_thread``;
here a queue the test drains, so the order of events is the test's."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.protocols.tftp.files import AccessDenied, FileNotFound, TFTPFiles, TooLarge


class Threads:
    """run_in_thread that queues calls; ``run()`` performs them in order."""

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[..., Any], tuple, defer.Deferred]] = []
        self.calls = 0

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.queue.append((f, args, d))
        self.calls += 1
        return d

    def run(self) -> None:
        while self.queue:
            f, args, d = self.queue.pop(0)
            try:
                result = f(*args)
            except Exception:  # noqa: BLE001 - handed to the Deferred like a pool thread would
                d.errback()
            else:
                d.callback(result)


def outcome(d: defer.Deferred) -> Any:
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


class FilesCase(unittest.TestCase):
    def setUp(self) -> None:
        self.top = Path(tempfile.mkdtemp(prefix="luna2d-tftp-files-"))
        self.addCleanup(shutil.rmtree, self.top, True)
        self.root = self.top / "root"
        self.root.mkdir()
        self.ipxe = self.top / "ipxe"
        self.ipxe.mkdir()
        self.clock = Clock()
        self.threads = Threads()
        self.files = TFTPFiles(
            self.root, self.clock, self.threads, ipxe_dir=self.ipxe, small_limit=4096, chunk=1024
        )

    def fetch(self, *parts: str, netascii: bool = False) -> Any:
        d = self.files.open(parts, netascii)
        self.threads.run()
        return outcome(d)

    def content(self, source: Any) -> bytes:
        out = b"" if source.size else source.read(0, 1)
        offset = 0
        while offset < source.size:
            piece = source.read(offset, 700)
            if piece is None:
                self.threads.run()
                piece = source.read(offset, 700)
            assert piece is not None
            out += piece
            offset += len(piece)
        return out


class LookupTests(FilesCase):
    def test_reads_file_in_root_and_subdirectory(self) -> None:
        """A file in the root and one in a subdirectory come back byte for byte."""
        (self.root / "a.bin").write_bytes(b"A" * 100)
        (self.root / "sub").mkdir()
        (self.root / "sub" / "b.bin").write_bytes(b"B" * 10)
        self.assertEqual(self.content(self.fetch("a.bin")), b"A" * 100)
        self.assertEqual(self.content(self.fetch("sub", "b.bin")), b"B" * 10)

    def test_missing_directory_fifo_not_found(self) -> None:
        """A missing name, a directory and a FIFO are all FileNotFound (a FIFO
        must not hang a pool thread)."""
        (self.root / "dir").mkdir()
        os.mkfifo(self.root / "fifo")
        for name in ("nope", "dir", "fifo"):
            self.assertIsInstance(self.fetch(name).value, FileNotFound, name)

    def test_symlink_out_of_root_refused(self) -> None:
        """A link in the root to a file outside it, or a linked directory
        leading out, is FileNotFound; a link inside the root is followed."""
        secret = self.top / "secret"
        secret.write_bytes(b"secret")
        os.symlink(secret, self.root / "out")
        os.symlink(self.top, self.root / "topdir")
        (self.root / "real").write_bytes(b"inside")
        os.symlink("real", self.root / "alias")
        self.assertIsInstance(self.fetch("out").value, FileNotFound)
        self.assertIsInstance(self.fetch("topdir", "secret").value, FileNotFound)
        self.assertEqual(self.content(self.fetch("alias")), b"inside")

    def test_dotdot_component_cannot_escape(self) -> None:
        """Even handed '..' components directly (the policy refuses them
        first), the real path must stay inside the root."""
        (self.top / "secret").write_bytes(b"secret")
        self.assertIsInstance(self.fetch("..", "secret").value, FileNotFound)

    def test_unreadable_is_access_denied(self) -> None:
        """A file the daemon may not open is AccessDenied (when not root,
        which bypasses permissions: then it is simply read)."""
        path = self.root / "locked"
        path.write_bytes(b"x")
        path.chmod(0)
        result = self.fetch("locked")
        if os.geteuid() == 0:
            self.assertEqual(self.content(result), b"x")
        else:
            self.assertIsInstance(result.value, AccessDenied)

    def test_ipxe_fallback(self) -> None:
        """A boot binary's name not in the root comes from the iPXE
        directory, links there followed (Debian links ipxe.efi to /boot); the
        root's own copy wins; other names and names with a directory part
        never come from the iPXE directory."""
        elsewhere = self.top / "boot-ipxe.efi"
        elsewhere.write_bytes(b"efi")
        os.symlink(elsewhere, self.ipxe / "ipxe.efi")
        (self.ipxe / "undionly.kpxe").write_bytes(b"pkg")
        (self.ipxe / "notes.txt").write_bytes(b"no")
        (self.ipxe / "sub").mkdir()
        (self.ipxe / "sub" / "x.efi").write_bytes(b"no")
        self.assertEqual(self.content(self.fetch("ipxe.efi")), b"efi")
        self.assertEqual(self.content(self.fetch("undionly.kpxe")), b"pkg")
        self.assertIsInstance(self.fetch("notes.txt").value, FileNotFound)
        self.assertIsInstance(self.fetch("sub", "x.efi").value, FileNotFound)
        (self.root / "undionly.kpxe").write_bytes(b"own")
        self.clock.advance(5)
        self.assertEqual(self.content(self.fetch("undionly.kpxe")), b"own")

    def test_netascii(self) -> None:
        """netascii sends the converted bytes (and their size, for tsize)."""
        (self.root / "t.txt").write_bytes(b"a\nb\r")
        source = self.fetch("t.txt", netascii=True)
        self.assertEqual(source.size, 6)
        self.assertEqual(self.content(source), b"a\r\nb\r\x00")
        self.assertEqual(self.content(self.fetch("t.txt")), b"a\nb\r")


class CacheTests(FilesCase):
    def test_cache_hit_without_thread_within_revalidate(self) -> None:
        """Within the revalidation interval a cached file is served at once,
        without a pool thread; afterwards it is checked again (one thread
        call) but, unchanged, not read again."""
        (self.root / "k").write_bytes(b"kpxe" * 10)
        self.fetch("k")
        self.assertEqual(self.files.stats["reads"], 1)
        calls = self.threads.calls
        d = self.files.open(("k",))
        self.assertEqual(self.content(outcome(d)), b"kpxe" * 10)
        self.assertEqual(self.threads.calls, calls)
        self.clock.advance(1.0)
        self.assertEqual(self.content(self.fetch("k")), b"kpxe" * 10)
        self.assertEqual(self.threads.calls, calls + 1)
        self.assertEqual(self.files.stats["reads"], 1)

    def test_changed_file_read_again(self) -> None:
        """A file replaced on disk is read again once the interval has passed."""
        path = self.root / "k"
        path.write_bytes(b"old")
        self.fetch("k")
        path.write_bytes(b"new!")
        self.assertEqual(self.content(self.fetch("k")), b"old")  # still fresh
        self.clock.advance(1.0)
        self.assertEqual(self.content(self.fetch("k")), b"new!")
        self.assertEqual(self.files.stats["reads"], 2)

    def test_identical_requests_in_flight_share_one_read(self) -> None:
        """Twenty requests for one name arriving before its lookup finished
        cause one lookup and one read; each gets its own source."""
        (self.root / "boot").write_bytes(b"x" * 3000)
        ds = [self.files.open(("boot",)) for _ in range(20)]
        self.assertEqual(len(self.threads.queue), 1)
        self.threads.run()
        sources = [outcome(d) for d in ds]
        self.assertEqual(len({id(s) for s in sources}), 20)
        self.assertTrue(all(self.content(s) == b"x" * 3000 for s in sources))
        self.assertEqual(self.files.stats["reads"], 1)
        self.assertEqual(self.files.stats["merged"], 19)

    def test_failure_shared_by_waiters(self) -> None:
        """Requests merged with a lookup that fails all get FileNotFound."""
        ds = [self.files.open(("none",)) for _ in range(3)]
        self.threads.run()
        for d in ds:
            self.assertIsInstance(outcome(d).value, FileNotFound)

    def test_cache_budget_evicts_least_recent(self) -> None:
        """Past the byte budget the least recently used file leaves the cache."""
        files = TFTPFiles(self.root, self.clock, self.threads, small_limit=4096, cache_budget=5000)
        for name in ("a", "b", "c"):
            (self.root / name).write_bytes(name.encode() * 2000)
            d = files.open((name,))
            self.threads.run()
            outcome(d)
        self.assertEqual(
            list(files.cache), [os.fsencode(os.path.realpath(self.root / n)) for n in ("b", "c")]
        )
        self.assertLessEqual(files.cached_bytes, 5000)


class ChunkedTests(FilesCase):
    def test_large_file_read_in_chunks(self) -> None:
        """A file over the small limit is not read whole: reads answer None
        until their chunk (and the read-ahead) is loaded, then the bytes,
        including a block that spans two chunks."""
        data = os.urandom(10_000)
        (self.root / "big").write_bytes(data)
        source = self.fetch("big")
        self.assertEqual(source.size, 10_000)
        self.assertEqual(self.files.cache, {})
        self.assertIsNone(source.read(5000, 700))
        self.threads.run()
        self.assertEqual(source.read(100, 100), data[100:200])  # chunk 0, asked for at open
        self.assertEqual(source.read(4500, 700), data[4500:5200])  # spans chunks 4 and 5
        self.assertIsNone(source.read(2000, 100))  # chunk 1: not asked for yet
        self.assertEqual(self.content(source), data)
        source.close()
        self.threads.run()

    def test_wakeup_when_chunk_arrives(self) -> None:
        """A reader waiting for a chunk is woken when it arrives."""
        (self.root / "big").write_bytes(b"z" * 9000)
        source = self.fetch("big")
        woken: list[int] = []
        source.wakeup = lambda: woken.append(1)
        self.assertIsNone(source.read(8000, 512))
        self.threads.run()
        self.assertTrue(woken)
        self.assertEqual(source.read(8000, 512), b"z" * 512)
        source.close()
        self.threads.run()

    def test_concurrent_readers_share_chunks_and_fd_closed_last(self) -> None:
        """Two transfers of one large file share its chunks (each chunk read
        once); chunks both readers released are dropped; the descriptor is
        closed when the last reader closes."""
        data = os.urandom(8192)
        (self.root / "big").write_bytes(data)
        one = self.fetch("big")
        self.clock.advance(5)
        two = self.fetch("big")
        self.assertIs(one.shared, two.shared)
        shared = one.shared
        self.assertEqual(self.content(one), data)
        reads_before = self.threads.calls
        self.assertEqual(self.content(two), data)
        self.assertEqual(self.threads.calls, reads_before)  # every chunk already there
        one.release(8192)
        two.release(4096)
        self.assertEqual(sorted(shared.chunks), [4, 5, 6, 7])
        one.close()
        self.assertGreaterEqual(shared.fd, 0)
        two.close()
        self.assertEqual(shared.fd, -1)
        self.assertEqual(self.files._chunked, {})

    def test_file_shrinking_under_transfer_is_an_error(self) -> None:
        """A large file truncated while being sent: the reader reports an
        error (the transfer then aborts) instead of sending short data."""
        path = self.root / "big"
        path.write_bytes(b"q" * 10_000)
        source = self.fetch("big")
        woken: list[int] = []
        source.wakeup = lambda: woken.append(1)
        with open(path, "r+b") as handle:
            handle.truncate(100)
        self.assertIsNone(source.read(5000, 512))
        self.threads.run()
        self.assertTrue(woken)
        self.assertIsNotNone(source.error)
        self.assertIsNone(source.read(5000, 512))
        source.close()

    def test_large_netascii_limited(self) -> None:
        """netascii of a large file is converted whole up to the limit; above
        it the request fails with TooLarge (use octet)."""
        (self.root / "big").write_bytes(b"l\n" * 3000)
        source = self.fetch("big", netascii=True)
        self.assertEqual(self.content(source), b"l\r\n" * 3000)
        files = TFTPFiles(self.root, self.clock, self.threads, small_limit=10, netascii_limit=100)
        d = files.open(("big",), True)
        self.threads.run()
        self.assertIsInstance(outcome(d).value, TooLarge)
