"""The real TFTP server (``TFTPService``: listening port, per-transfer sockets,
file layer on the reactor's thread pool) on a free loopback port, against
real clients run with ``getProcessOutputAndValue``: tftp-hpa (octet and its
default netascii), curl with and without ``--tftp-blksize``, atftp with
blksize, windowsize and tsize; a 30 MB file compared by sha256; path
escapes (``..``, absolute names, a link out of the root) and missing files
refused; a write refused; twenty clients at once; a reply from the address
the request was sent to; undecodable datagrams dropped while service goes
on. Every test has its own temporary root and port and stops the server."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.utils import getProcessOutputAndValue

from luna2d.protocols.tftp.codec import Data, ReadRequest, decode
from luna2d.protocols.tftp.policy import Limits
from luna2d.protocols.tftp.server import TFTPService, TransferPort
from tests.integration.test_daemon import DaemonCase, the_reactor

TFTP = shutil.which("tftp") or "/usr/bin/tftp"
ATFTP = shutil.which("atftp") or "/usr/bin/atftp"
CURL = shutil.which("curl") or "/usr/bin/curl"
SHA256SUM = shutil.which("sha256sum") or "/usr/bin/sha256sum"
DD = shutil.which("dd") or "/bin/dd"


class ClientCase(DaemonCase):
    """A started TFTPService on 127.0.0.1, an ephemeral port, a fresh root."""

    timeout = 120
    interface = "127.0.0.1"
    limits: Limits | None = None

    def setUp(self) -> None:
        super().setUp()
        self.reactor = the_reactor()
        self.top = Path(tempfile.mkdtemp(prefix="luna2d-tftp-it-"))
        self.addCleanup(shutil.rmtree, self.top, True)
        self.root = self.top / "root"
        self.root.mkdir()
        self.out = self.top / "out"
        self.out.mkdir()
        self.ipxe = self.top / "ipxe"
        self.ipxe.mkdir()
        self.service = TFTPService(
            self.reactor, 0, self.root, self.ipxe, interface=self.interface, limits=self.limits
        )
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.port = self.service.bound_port
        self.stats = self.service.server.stats

    def put(self, name: str, data: bytes) -> bytes:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    async def client(self, executable: str, *args: str) -> tuple[str, int]:
        """Run a client in the output folder: (stdout + stderr, exit code)."""
        out, err, code = await getProcessOutputAndValue(
            executable, args, env=dict(os.environ), path=str(self.out), reactor=self.reactor
        )
        return (out + err).decode("utf-8", "replace"), code

    async def curl_fetch(self, name: str, out: str, *flags: str) -> bytes:
        """curl (with ``flags``) gets ``name`` from the service into ``out``;
        it must exit 0. Returns what it wrote."""
        url = f"tftp://127.0.0.1:{self.port}/{name}"
        text, code = await self.client(CURL, "-sS", *flags, "-o", out, url)
        self.assertEqual(code, 0, text)
        return self.received(out)

    def received(self, name: str) -> bytes:
        path = self.out / name
        return path.read_bytes() if path.exists() else b""

    async def sha256(self, path: Path) -> str:
        text, code = await self.client(SHA256SUM, str(path))
        self.assertEqual(code, 0, text)
        return text.split()[0]

    async def quiet(self) -> None:
        """Let the server see the client's last ACK (or its absence)."""
        for _ in range(50):
            if not self.service.server.active:
                return
            await task.deferLater(self.reactor, 0.05, lambda: None)


class ClientTests(ClientCase):
    async def test_tftp_hpa_binary(self) -> None:
        """tftp-hpa in binary (octet) mode, RFC 1350 without options, gets the
        file byte for byte; the server counts one completed transfer."""
        data = self.put("file.bin", os.urandom(200_000))
        text, code = await self.client(
            TFTP, "-m", "binary", "127.0.0.1", str(self.port), "-c", "get", "file.bin", "got.bin"
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("got.bin"), data)
        await self.quiet()
        self.assertEqual(self.stats["completed"], 1)
        self.assertEqual(self.stats["negotiated"], 0)

    async def test_tftp_hpa_netascii(self) -> None:
        """tftp-hpa's default mode is netascii: a text with LF, CR and CR LF
        comes through the server's conversion and the client's back unchanged."""
        data = self.put("notes.txt", b"line one\nline two\r\nbare\rend\n" * 300)
        text, code = await self.client(
            TFTP, "127.0.0.1", str(self.port), "-c", "get", "notes.txt", "notes.txt"
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("notes.txt"), data)

    async def test_curl_with_and_without_options(self) -> None:
        """curl with --tftp-no-options (plain RFC 1350, 512-byte blocks), with
        its defaults (it asks tsize and blksize 512) and with --tftp-blksize
        1432 (as iPXE asks) gets the file each time; only the last two began
        with an OACK."""
        data = self.put("ipxe.bin", os.urandom(300_001))
        url = f"tftp://127.0.0.1:{self.port}/ipxe.bin"
        text, code = await self.client(CURL, "-sS", "--tftp-no-options", "-o", "plain.bin", url)
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("plain.bin"), data)
        await self.quiet()
        self.assertEqual(self.stats["negotiated"], 0)
        for flags, name in (((), "default.bin"), (("--tftp-blksize", "1432"), "blk.bin")):
            text, code = await self.client(CURL, "-sS", *flags, "-o", name, url)
            self.assertEqual(code, 0, text)
            self.assertEqual(self.received(name), data)
        await self.quiet()
        self.assertEqual(self.stats["negotiated"], 2)
        self.assertEqual(self.stats["completed"], 3)

    async def test_atftp_options(self) -> None:
        """atftp asking blksize 1468, windowsize 16 and tsize gets the file
        (and a size that is an exact multiple of the block size, which ends
        with an empty block); then with blksize 8 (the RFC 2348 minimum)."""
        data = self.put("win.bin", os.urandom(1468 * 100))
        text, code = await self.client(
            ATFTP,
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 16",
            "--option",
            "tsize enable",
            "-g",
            "-r",
            "win.bin",
            "-l",
            "win.bin",
            "127.0.0.1",
            str(self.port),
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("win.bin"), data)
        small = self.put("small.bin", os.urandom(5000))
        text, code = await self.client(
            ATFTP,
            "--option",
            "blksize 8",
            "-g",
            "-r",
            "small.bin",
            "-l",
            "small.bin",
            "127.0.0.1",
            str(self.port),
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(self.received("small.bin"), small)
        await self.quiet()
        self.assertEqual(self.stats["negotiated"], 2)

    async def test_30_mb_file(self) -> None:
        """A 30 MB file (read in chunks, not cached whole) arrives intact by
        sha256 with atftp (blksize 1468, windowsize 16) and with curl
        (--tftp-blksize 1468)."""
        path = self.root / "image.bin"
        text, code = await self.client(DD, "if=/dev/urandom", f"of={path}", "bs=1M", "count=30")
        self.assertEqual(code, 0, text)
        self.assertEqual(path.stat().st_size, 30 * 1024 * 1024)
        expected = await self.sha256(path)
        text, code = await self.client(
            ATFTP,
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 16",
            "--option",
            "tsize enable",
            "-g",
            "-r",
            "image.bin",
            "-l",
            "atftp.bin",
            "127.0.0.1",
            str(self.port),
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(await self.sha256(self.out / "atftp.bin"), expected)
        text, code = await self.client(
            CURL,
            "-sS",
            "--tftp-blksize",
            "1468",
            "-o",
            "curl.bin",
            f"tftp://127.0.0.1:{self.port}/image.bin",
        )
        self.assertEqual(code, 0, text)
        self.assertEqual(await self.sha256(self.out / "curl.bin"), expected)
        self.assertEqual(self.service.files.cache, {})

    async def test_twenty_clients_at_once(self) -> None:
        """Twenty curl processes fetching one file at the same time all get it."""
        data = self.put("boot.kpxe", os.urandom(80_000))
        url = f"tftp://127.0.0.1:{self.port}/boot.kpxe"
        results = await defer.gatherResults(
            [
                defer.ensureDeferred(
                    self.client(CURL, "-sS", "--tftp-blksize", "1432", "-o", f"c{i}.bin", url)
                )
                for i in range(20)
            ]
        )
        for i, (text, code) in enumerate(results):
            self.assertEqual(code, 0, text)
            self.assertEqual(self.received(f"c{i}.bin"), data, i)
        await self.quiet()
        self.assertEqual(self.stats["completed"], 20)

    async def test_ipxe_binary_from_ipxe_directory(self) -> None:
        """undionly.kpxe absent from the root is served from the iPXE
        directory (here a copy of the package's, if installed, else a stand-in)."""
        package = Path("/usr/lib/ipxe/undionly.kpxe")
        data = package.read_bytes() if package.exists() else os.urandom(70_000)
        (self.ipxe / "undionly.kpxe").write_bytes(data)
        got = await self.curl_fetch("undionly.kpxe", "undionly.kpxe", "--tftp-blksize", "1432")
        self.assertEqual(got, data)


class RefusalTests(ClientCase):
    async def test_path_escapes_refused(self) -> None:
        """'../secret' (tftp-hpa and atftp send it as is), an absolute path,
        and a link in the root to a file outside all get 'file not found' and
        none of the secret."""
        secret = self.top / "secret"
        secret.write_bytes(b"top secret\n")
        os.symlink(secret, self.root / "link")
        for name in ("../secret", str(secret), "link", "sub/../../secret"):
            text, code = await self.client(
                TFTP, "-m", "binary", "127.0.0.1", str(self.port), "-c", "get", name, "escape.bin"
            )
            self.assertIn("Error code 1: file not found", text, name)
            self.assertEqual(self.received("escape.bin"), b"", name)
            text, code = await self.client(
                ATFTP, "-g", "-r", name, "-l", "escape2.bin", "127.0.0.1", str(self.port)
            )
            self.assertNotEqual(code, 0, name)
            self.assertIn("file not found", text, name)
            self.assertNotIn(b"secret", self.received("escape2.bin"), name)
        self.assertEqual(self.stats["refused"], 8)

    async def test_missing_file(self) -> None:
        """A missing file: ERROR 1, which curl reports as its TFTP 'not found' (68)."""
        text, code = await self.client(
            CURL, "-sS", "-o", "none.bin", f"tftp://127.0.0.1:{self.port}/none.bin"
        )
        self.assertEqual(code, 68, text)
        text, _ = await self.client(
            TFTP, "127.0.0.1", str(self.port), "-c", "get", "none.bin", "none.bin"
        )
        self.assertIn("Error code 1: file not found", text)

    async def test_write_refused(self) -> None:
        """tftp-hpa's put is refused: the server is read-only and writes nothing."""
        (self.out / "upload.bin").write_bytes(b"data")
        text, _ = await self.client(
            TFTP, "-m", "binary", "127.0.0.1", str(self.port), "-c", "put", "upload.bin"
        )
        self.assertIn("Error code 2: read-only server", text)
        self.assertFalse((self.root / "upload.bin").exists())

    async def test_bad_datagrams_dropped_service_goes_on(self) -> None:
        """Undecodable datagrams to the listening port are counted and
        dropped; the next client is served."""
        data = self.put("after.bin", b"still here" * 100)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for junk in (b"", b"\x00", b"\x00\x01no-terminator", b"\xff" * 600):
                sock.sendto(junk, ("127.0.0.1", self.port))
        for _ in range(40):
            if self.stats["dropped"] >= 4:
                break
            await task.deferLater(self.reactor, 0.025, lambda: None)
        self.assertEqual(self.stats["dropped"], 4)
        got = await self.curl_fetch("after.bin", "after.bin")
        self.assertEqual(got, data)


class _Collector(protocol.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int]]] = []
        self.waiter: defer.Deferred | None = None

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))
        if self.waiter is not None:
            waiter, self.waiter = self.waiter, None
            waiter.callback(None)


class LocalAddressTests(ClientCase):
    interface = ""  # all addresses, so that 127.0.0.2 reaches it too

    async def test_reply_from_address_request_was_sent_to(self) -> None:
        """An RRQ sent to 127.0.0.2 is answered from 127.0.0.2 (not the
        kernel's default 127.0.0.1), from a new port, not the listening one."""
        data = self.put("f.bin", b"abc")
        collector = _Collector()
        client = self.reactor.listenUDP(0, collector, interface="127.0.0.1")
        self.addCleanup(client.stopListening)
        collector.waiter = defer.Deferred()
        client.write(ReadRequest("f.bin", "octet").encode(), ("127.0.0.2", self.port))
        timer = self.reactor.callLater(
            10,
            lambda: (
                collector.waiter
                and collector.waiter.errback(AssertionError("no answer within 10 s"))
            ),
        )
        self.addCleanup(lambda: timer.active() and timer.cancel())
        await collector.waiter
        packet, (host, port) = collector.got[0]
        self.assertEqual(decode(packet), Data(1, data))
        self.assertEqual(host, "127.0.0.2")
        self.assertNotEqual(port, self.port)
        client.write(b"\x00\x04\x00\x01", ("127.0.0.2", port))  # ACK 1: done
        await self.quiet()
        self.assertEqual(self.stats["completed"], 1)


class _Silent(protocol.DatagramProtocol):
    pass


class SegmentedSendTests(DaemonCase):
    async def test_window_arrives_as_separate_datagrams(self) -> None:
        """A transfer port's write_many (one segmented send per run of
        equal-sized datagrams) delivers each datagram separately, intact and
        in order, to a real socket on loopback: 40 of 1472 bytes, a short
        one, then 3 more."""
        reactor = the_reactor()
        collector = _Collector()
        receiver = reactor.listenUDP(0, collector, interface="127.0.0.1")
        self.addCleanup(receiver.stopListening)
        port = TransferPort(reactor, _Silent(), "127.0.0.1", ("127.0.0.1", receiver.getHost().port))
        port.start()
        self.addCleanup(port.stopListening)
        window = (
            [bytes([i]) * 1472 for i in range(40)] + [b"end"] + [bytes([i]) * 700 for i in range(3)]
        )
        port.write_many(window)
        for _ in range(200):
            if len(collector.got) >= len(window):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual([data for data, _ in collector.got], window)
        self.assertTrue(TransferPort.gso, "this kernel should segment UDP (Linux 4.18+)")
