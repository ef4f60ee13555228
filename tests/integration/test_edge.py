"""The HTTP edge of the real daemon (``twistd luna2d``) over real sockets:
slow senders cut off, a held upload that neither reaches the temp disk nor
breaks admin writes, the budget of bodies in flight, an unauthenticated
60 MiB POST refused from its headers without being stored, a large JSON
body parsed with the answer a small one gets; and https: TLS 1.2+ with the
ini's certificate, the plain boot listener, and refusals to start.

Each test starts its own daemon in its own folder and port, with its own
TMPDIR (watched to stay empty), and stops it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twisted.internet import defer, endpoints, protocol, task
from twisted.internet.utils import getProcessOutputAndValue

from tests.integration.support import curl_post
from tests.integration.test_daemon import (
    TWISTD,
    Daemon,
    DaemonCase,
    _rss_kib,
    free_port,
    ini_text,
    make_folder,
    node_body,
    twistd_args,
)
from tests.tlsfiles import make_tls_files

MIB = 1 << 20


class RawClient(protocol.Protocol):
    """One TCP connection that writes what it is told and keeps what comes back."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.closed_at: float | None = None
        self.data = bytearray()
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.is_closed = False
        self.first_answer: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if not self.first_answer.called:
            self.first_answer.callback(None)

    def connectionLost(self, reason: Any = None) -> None:
        self.is_closed = True
        self.closed_at = self.clock.seconds()
        self.closed.callback(None)

    def status(self) -> int:
        return int(bytes(self.data).split(b" ", 2)[1])

    def message(self) -> str:
        body = bytes(self.data).partition(b"\r\n\r\n")[2]
        return str(json.loads(body)["message"])


async def connect(daemon: Daemon) -> RawClient:
    endpoint = endpoints.TCP4ClientEndpoint(daemon.reactor, "127.0.0.1", daemon.port)
    client = await endpoints.connectProtocol(endpoint, RawClient(daemon.reactor))
    daemon.case.addCleanup(lambda: None if client.is_closed else client.transport.abortConnection())
    return client


def head(path: str, length: int, token: str | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: luna",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if token:
        lines.append(f"x-access-tokens: {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def within(reactor: Any, seconds: float, d: defer.Deferred[Any]) -> Any:
    """``d``'s result, or AssertionError after ``seconds``."""
    timeout = reactor.callLater(seconds, d.cancel)
    try:
        return await d
    except defer.CancelledError:
        raise AssertionError(f"nothing within {seconds} s") from None
    finally:
        if timeout.active():
            timeout.cancel()


def edge_daemon(case: DaemonCase, extra: str) -> Daemon:
    """A daemon whose ini has the [API] keys ``extra`` and a TMPDIR of its own."""
    port = free_port()
    daemon = Daemon(case, ini=ini_text(port, api_extra=extra))
    daemon.port = port
    tmp = daemon.folder / "tmp"
    tmp.mkdir()
    daemon.env = {"TMPDIR": str(tmp)}
    return daemon


def tmp_files(daemon: Daemon) -> list[str]:
    return sorted(p.name for p in (daemon.folder / "tmp").iterdir())


class SlowSenderTests(DaemonCase):
    async def test_trickling_and_paused_senders_are_cut_off(self) -> None:
        """With BODY_TIMEOUT = 3s and BODY_IDLE_TIMEOUT = 2s: an admin's body
        trickled one byte every 0.3 s (never idle) is answered 408 and its
        connection closed about 3 s after it began, not when it would end;
        a body that pauses is answered 408 after 2 s; the daemon goes on."""
        daemon = edge_daemon(self, "BODY_TIMEOUT = 3s\nBODY_IDLE_TIMEOUT = 2s\n")
        await daemon.start()
        token = await daemon.token()
        reactor = daemon.reactor

        trickler = await connect(daemon)
        began = reactor.seconds()
        trickler.transport.write(head("/config/node/slow01", 1000, token))

        def drip() -> None:
            if not trickler.is_closed:
                trickler.transport.write(b" ")

        dripping = task.LoopingCall(drip)
        dripping.clock = reactor
        dripping.start(0.3)
        paused = await connect(daemon)
        paused.transport.write(head("/config/node/slow02", 1000, token) + b"{")
        paused_began = reactor.seconds()
        try:
            await within(reactor, 8, trickler.closed)
        finally:
            dripping.stop()
        await within(reactor, 8, paused.closed)
        assert trickler.closed_at is not None and paused.closed_at is not None
        trickled_for = trickler.closed_at - began
        paused_for = paused.closed_at - paused_began
        self.assertEqual(trickler.status(), 408)
        self.assertIn("did not arrive within 3 s", trickler.message())
        self.assertTrue(2.5 < trickled_for < 5, trickled_for)
        self.assertEqual(paused.status(), 408)
        self.assertIn("paused longer than 2 s", paused.message())
        self.assertTrue(1.5 < paused_for < 3, paused_for)
        code, _ = await daemon.call("GET", "/version")
        self.assertEqual(code, 200)


class HeldUploadTests(DaemonCase):
    async def test_held_upload_keeps_writes_working_and_tmp_empty(self) -> None:
        """An admin upload announcing 60 MiB is held open (8 MiB sent, then
        a byte now and then) while 12 admin writes run at once: all answer
        201, none 500; nothing is written to TMPDIR. With MAX_BODY_MEMORY =
        64M a second 10 MiB body is 503 with a JSON message from its headers;
        once the held upload is gone, it is taken."""
        daemon = edge_daemon(
            self, "MAX_BODY_MEMORY = 64M\nBODY_TIMEOUT = 60s\nBODY_IDLE_TIMEOUT = 30s\n"
        )
        await daemon.start()
        token = await daemon.token()
        held = await connect(daemon)
        held.transport.write(head("/config/node/held01", 60 * MIB, token))
        chunk = b" " * MIB
        for _ in range(8):
            held.transport.write(chunk)
        await task.deferLater(daemon.reactor, 0.5, lambda: None)
        self.assertEqual(bytes(held.data), b"")

        writes = [
            daemon.call(
                "POST",
                f"/config/node/w{n:02d}",
                node_body(f"w{n:02d}", {"group": "compute"}),
                token=token,
            )
            for n in range(12)
        ]
        answers = await defer.gatherResults([defer.ensureDeferred(w) for w in writes])
        self.assertEqual([code for code, _ in answers], [201] * 12, answers)
        self.assertEqual(tmp_files(daemon), [])

        second = await connect(daemon)
        second.transport.write(head("/config/node/second", 10 * MIB, token))
        await within(daemon.reactor, 5, second.first_answer)
        self.assertEqual(second.status(), 503)
        self.assertIn("in flight", second.message())

        held.transport.abortConnection()
        await held.closed
        await task.deferLater(daemon.reactor, 0.2, lambda: None)
        third = await connect(daemon)
        body = json.dumps(node_body("third", {"group": "compute"})).encode()
        padded = body + b" " * (10 * MIB - len(body))
        third.transport.write(head("/config/node/third", len(padded), token) + padded)
        await within(daemon.reactor, 10, third.first_answer)
        self.assertEqual(third.status(), 201, bytes(third.data[:300]))
        self.assertEqual(tmp_files(daemon), [])


class UnauthenticatedTests(DaemonCase):
    async def test_60_mib_without_token_is_refused_unstored(self) -> None:
        """A POST announcing 60 MiB without a token is answered 401 before a
        single byte of its body is sent. curl sending the whole 60 MiB gets
        401 as well; the daemon's memory does not grow by the body, TMPDIR
        stays empty, and it goes on serving."""
        daemon = edge_daemon(self, "")
        await daemon.start()
        early = await connect(daemon)
        early.transport.write(head("/config/node/node001", 60 * MIB))
        await within(daemon.reactor, 5, early.first_answer)
        self.assertEqual(early.status(), 401)
        self.assertIn("connection: close", bytes(early.data).decode().lower())

        folder = Path(self.mktemp())
        folder.mkdir(parents=True)
        big = folder / "big.json"
        big.touch()
        os.truncate(big, 60 * MIB)
        rss_before = _rss_kib(daemon.process.pid)
        _, status, text, err = await curl_post(f"{daemon.url}/config/node/node001", big)
        self.assertEqual(status, "401", err)
        self.assertIn("token", json.loads(text)["message"])
        self.assertLess(_rss_kib(daemon.process.pid) - rss_before, 16 * 1024)
        self.assertEqual(tmp_files(daemon), [])
        code, _ = await daemon.call("GET", "/version")
        self.assertEqual(code, 200)


class LargeBodyTests(DaemonCase):
    async def test_large_body_same_answers(self) -> None:
        """A 20 MiB admin body (a node create padded with whitespace) is
        parsed in slices and creates the node (201); the same body broken
        near its end gets the message the standard parser gives, position
        included; /version answers while such a body is parsed."""
        daemon = edge_daemon(self, "")
        await daemon.start()
        token = await daemon.token()
        body = json.dumps(node_body("big01", {"group": "compute", "comment": "padded"})).encode()
        padded = body[:-3] + b" " * (20 * MIB) + body[-3:]
        code, answer = await call_raw(daemon, "/config/node/big01", padded, token)
        self.assertEqual(code, 201, answer)
        node = (await daemon.get("/config/node/big01", token))["config"]["node"]["big01"]
        self.assertEqual(node["comment"], "padded")

        broken = padded[:-3] + b"," + padded[-3:]
        try:
            json.loads(broken)
        except ValueError as exc:
            expected = f"request body is not valid JSON: {str(exc)[:120]}"
        pending = defer.ensureDeferred(call_raw(daemon, "/config/node/big01", broken, token))
        code, _ = await daemon.call("GET", "/version")
        self.assertEqual(code, 200)
        code, answer = await pending
        self.assertEqual((code, answer), (400, {"message": expected}))


async def call_raw(daemon: Daemon, path: str, body: bytes, token: str) -> tuple[int, Any]:
    import treq

    response = await treq.post(
        daemon.url + path,
        body,
        headers={b"x-access-tokens": [token.encode()]},
        pool=daemon.pool,
        timeout=60,
    )
    content = await response.content()
    return response.code, (json.loads(content) if content else None)


class HTTPSDaemonTests(DaemonCase):
    async def test_https_with_plain_boot_listener(self) -> None:
        """twistd with [API] PROTOCOL = https: curl trusting only the test CA
        gets /version over TLS 1.2 and 1.3, a client limited to TLS 1.1 is
        refused, plain HTTP on the API port gets no HTTP answer; the boot
        listener on [WEBSERVER] PORT serves /boot in plain HTTP, and /config
        only over https."""
        api_port, boot_port = free_port(), free_port()
        folder = make_folder(self)
        files = make_tls_files(folder / "tls")
        ini = ini_text(
            api_port,
            api_extra=f"PROTOCOL = https\nSSL_CERTIFICATE = {files.certificate}\n"
            f"SSL_CERTIFICATE_KEY = {files.key}\n",
        )
        ini += f"\n[WEBSERVER]\nPORT = {boot_port}\n"
        daemon = Daemon(self, ini=ini)
        daemon.port = boot_port  # readiness is polled on the plain listener
        await daemon.start()
        https = f"https://127.0.0.1:{api_port}"

        async def curl(*args: str) -> tuple[int, str, str]:
            out, err, code = await getProcessOutputAndValue(
                "/usr/bin/curl", ["-sS", "--max-time", "10", *args]
            )
            return code, out.decode(), err.decode()

        for version in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
            code, out, err = await curl("--cacert", str(files.ca), *version, https + "/version")
            self.assertEqual(code, 0, err)
            self.assertIn("version", json.loads(out))
        code, out, err = await curl(
            "--cacert", str(files.ca), "--tlsv1.1", "--tls-max", "1.1", https + "/version"
        )
        self.assertNotEqual(code, 0, out)
        code, out, err = await curl(https + "/version")  # the test CA is not trusted by default
        self.assertNotEqual(code, 0, out)
        code, out, err = await curl(f"http://127.0.0.1:{api_port}/version")
        self.assertNotIn('"version"', out)

        code, out, err = await curl("-o", "/dev/null", "-w", "%{http_code}", f"{daemon.url}/boot")
        self.assertEqual(out, "200", err)
        code, out, err = await curl(f"{daemon.url}/config/node")
        self.assertIn("https", json.loads(out)["message"])
        code, out, err = await curl(
            "--cacert",
            str(files.ca),
            "-X",
            "POST",
            "-d",
            json.dumps({"username": "luna", "password": "integration-password"}),
            https + "/token",
        )
        self.assertIn("token", json.loads(out))

    async def test_https_without_usable_certificate_does_not_start(self) -> None:
        """twistd with https and no SSL_CERTIFICATE, or a key that does not
        match the certificate, exits non-zero naming the key, without a
        traceback, and nothing listens."""
        folder = make_folder(self)
        files = make_tls_files(folder / "tls")
        cases = [
            ("PROTOCOL = https\n", "[API] SSL_CERTIFICATE: required"),
            (
                (
                    f"PROTOCOL = https\nSSL_CERTIFICATE = {files.certificate}\n"
                    f"SSL_CERTIFICATE_KEY = {files.other_key}\n"
                ),
                "does not match",
            ),
        ]
        for number, (extra, expected) in enumerate(cases):
            where = folder / f"case{number}"
            where.mkdir()
            port = free_port()
            (where / "luna.ini").write_text(ini_text(port, api_extra=extra))
            args = twistd_args(where / "luna.ini")
            out, err, code = await getProcessOutputAndValue(
                TWISTD, args, env=dict(os.environ), path=str(where)
            )
            text = (out + err).decode()
            self.assertNotEqual(code, 0, text)
            self.assertIn(expected, text)
            self.assertNotIn("Traceback", text)
            self.assertFalse((where / "var").exists() and any((where / "var").iterdir()), text)
