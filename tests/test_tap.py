"""The service tree (luna2d.tap) in process, without twistd: built from an
ini in a temporary folder with port 0, started by the service machinery,
spoken to over real sockets (HTTP, and HTTPS with a test CA and the plain
boot listener), stopped, with every child stopped and the database pool
closed. And the options' refusals of an https setup that cannot work."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import treq
from OpenSSL import SSL
from treq.client import HTTPClient
from twisted.internet import defer, ssl
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError
from twisted.python import usage
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
)

from luna2d import tap
from tests.support import ReactorCase, the_reactor
from tests.tlsfiles import TLSFiles, make_tls_files

PASSWORD = "tap-test-password"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_ini(folder: Path, api_extra: str = "", tail: str = "", tftp: bool = True) -> Path:
    tftp_text = (
        f"ENABLED = yes\nPORT = {free_udp_port()}\nROOT = var/tftpboot\nIPXE = var/ipxe\n"
        if tftp
        else "ENABLED = no\n"
    )
    ini = folder / "luna.ini"
    ini.write_text(
        "[API]\nUSERNAME = luna\n"
        f"PASSWORD = {PASSWORD}\nSECRET_KEY = tap-test-secret-key-0123456789abcdef\n"
        "ENDPOINT = 127.0.0.1:0\n"
        f"{api_extra}"
        "\n[DATABASE]\nDATABASE = var/luna.db\n"
        "\n[FILES]\nIMAGE_FILES = var/files\nIMAGE_DIRECTORY = var/images\nKEYFILE = var/luna.key\n"
        f"\n[DHCP]\nENABLED = no\n\n[TFTP]\n{tftp_text}\n[BOOTSTRAP]\nENABLED = yes\n{tail}"
    )
    return ini


def options(ini: Path) -> tap.Options:
    opts = tap.Options()
    opts.parseOptions(["--config", str(ini)])
    return opts


def https_extra(files: TLSFiles, key: Path | None = None) -> str:
    return (
        f"PROTOCOL = https\nSSL_CERTIFICATE = {files.certificate}\n"
        f"SSL_CERTIFICATE_KEY = {key or files.key}\n"
    )


class TreeCase(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.folder = Path(self.mktemp()).resolve()
        self.folder.mkdir(parents=True)
        self.pool = HTTPConnectionPool(the_reactor(), persistent=False)

    async def start(self, ini: Path) -> tap.LunaDaemon:
        daemon = tap.makeService(options(ini))
        assert isinstance(daemon, tap.LunaDaemon)
        daemon.privilegedStartService()
        daemon.startService()

        async def stop() -> None:
            if daemon.running:
                await daemon.stopService()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return daemon

    async def fetch(self, url: str, client: Any = None, **kw: Any) -> tuple[int, Any]:
        if client is None:
            response = await treq.get(url, pool=self.pool, timeout=10, **kw)
        else:
            response = await client.get(url, timeout=10, **kw)
        body = await response.content()
        ctype = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        return response.code, (json.loads(body) if ctype.startswith(b"application/json") else body)


class ServiceTreeTests(TreeCase):
    async def test_tree_starts_serves_and_stops(self) -> None:
        """makeService gives a MultiService of the store, the IPMI client,
        the HTTP listener and TFTP, in that order; started, it answers
        /version and a token's /config/node (the sample cluster, so the
        store opened, migrated and seeded) over a real socket, and TFTP is
        bound; stopped, every child has stopped, the listeners are closed,
        the IPMI client is closed and the database pool is closed."""
        daemon = await self.start(write_ini(self.folder))
        self.assertEqual([child.name for child in daemon], ["store", "ipmi", "http", "tftp"])
        self.assertTrue(all(child.running for child in daemon))
        port = daemon.http.bound_port
        assert port is not None
        url = f"http://127.0.0.1:{port}"
        code, body = await self.fetch(url + "/version")
        self.assertEqual(code, 200)
        self.assertIn("version", body)
        response = await treq.post(
            url + "/token",
            json.dumps({"username": "luna", "password": PASSWORD}).encode(),
            pool=self.pool,
            timeout=10,
        )
        token = (await response.json())["token"]
        code, body = await self.fetch(url + "/config/node", headers={"x-access-tokens": token})
        self.assertEqual(
            sorted(body["config"]["node"]), ["node001", "node002", "node003", "node004"]
        )
        tftp = daemon.getServiceNamed("tftp")
        self.assertIsNotNone(tftp.bound_port)
        store = daemon.store
        assert store is not None

        await daemon.stopService()
        self.assertEqual([child.name for child in daemon if child.running], [])
        self.assertFalse(store.pool.running)
        self.assertIsNone(tftp.listening)
        self.assertTrue(daemon.ipmi._closed)
        with self.assertRaises(ConnectError):
            await treq.get(url + "/version", pool=self.pool, timeout=2)

    async def test_database_errors_stop_the_start(self) -> None:
        """A database path that is a folder ends the start with a message
        naming [DATABASE] DATABASE, before anything listens."""
        ini = write_ini(self.folder, tftp=False)
        (self.folder / "var" / "luna.db").mkdir(parents=True)
        daemon = tap.makeService(options(ini))
        with self.assertRaises(SystemExit) as caught:
            daemon.privilegedStartService()
        self.assertIn("[DATABASE] DATABASE", str(caught.exception))
        self.assertIsNone(daemon.http.port)


class HTTPSTests(TreeCase):
    async def test_https_api_and_plain_boot_listener(self) -> None:
        """With PROTOCOL = https the API answers over TLS with the ini's
        certificate chain (a client trusting only the test CA checks it),
        plain HTTP on that port gets no answer, and the plain listener on
        [WEBSERVER] PORT serves /boot and /version but not /config."""
        files = make_tls_files(self.folder / "tls")
        daemon = await self.start(
            write_ini(self.folder, https_extra(files), "\n[WEBSERVER]\nPORT = 0\n", tftp=False)
        )
        self.assertEqual([child.name for child in daemon], ["store", "ipmi", "http", "boot"])
        assert daemon.boot is not None
        api, boot = daemon.http.bound_port, daemon.boot.bound_port
        trust = BrowserLikePolicyForHTTPS(trustRoot=ssl.Certificate.loadPEM(files.ca.read_bytes()))
        client = HTTPClient(Agent(the_reactor(), contextFactory=trust, pool=self.pool))
        code, body = await self.fetch(f"https://127.0.0.1:{api}/version", client)
        self.assertEqual(code, 200)
        with self.assertRaises((ResponseFailed, ResponseNeverReceived, CancelledError)):
            await treq.get(f"http://127.0.0.1:{api}/version", pool=self.pool, timeout=3)
        code, _ = await self.fetch(f"http://127.0.0.1:{boot}/version")
        self.assertEqual(code, 200)
        code, _ = await self.fetch(f"http://127.0.0.1:{boot}/boot")
        self.assertEqual(code, 200)
        code, body = await self.fetch(f"http://127.0.0.1:{boot}/config/node")
        self.assertEqual(code, 404)
        self.assertIn("https", body["message"])
        self.assertEqual(daemon.boot_port(), boot)

    def test_tls_options_refuse_old_protocols(self) -> None:
        """The TLS context refuses SSLv3, TLS 1.0 and TLS 1.1."""
        files = make_tls_files(self.folder / "tls")
        opts = options(write_ini(self.folder, https_extra(files), tftp=False))
        assert opts.tls is not None
        context = opts.tls.getContext()
        for flag in (SSL.OP_NO_SSLv3, SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1):
            self.assertTrue(context.set_options(0) & flag, flag)
        self.assertFalse(context.set_options(0) & SSL.OP_NO_TLSv1_2)

    def test_https_that_cannot_work_is_a_usage_error(self) -> None:
        """https without SSL_CERTIFICATE or SSL_CERTIFICATE_KEY, with a file
        that does not exist, is not a certificate, or a key that does not
        match the certificate: a UsageError naming the key, never a silent
        plain-HTTP start."""
        files = make_tls_files(self.folder / "tls")
        garbage = self.folder / "garbage.pem"
        garbage.write_text("not a certificate\n")
        cases = [
            ("PROTOCOL = https\n", "[API] SSL_CERTIFICATE: required"),
            (
                f"PROTOCOL = https\nSSL_CERTIFICATE = {files.certificate}\n",
                "[API] SSL_CERTIFICATE_KEY: required",
            ),
            (https_extra(files, self.folder / "missing.key"), "cannot read"),
            (
                (
                    f"PROTOCOL = https\nSSL_CERTIFICATE = {garbage}\n"
                    f"SSL_CERTIFICATE_KEY = {files.key}\n"
                ),
                "holds no PEM certificate",
            ),
            (https_extra(files, garbage), "is not a PEM private key"),
            (https_extra(files, files.other_key), "does not match"),
        ]
        for number, (extra, expected) in enumerate(cases):
            folder = self.folder / f"case{number}"
            folder.mkdir()
            with self.assertRaises(usage.UsageError) as caught:
                options(write_ini(folder, extra, tftp=False))
            self.assertIn(expected, str(caught.exception), extra)
