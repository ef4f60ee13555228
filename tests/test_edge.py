"""The HTTP edge (luna2d.resources.site) in process: the real Site, its
HTTP channel and the whole resource tree, fed bytes through a
StringTransport, with a Clock for the timeouts. What a request must show
in its headers before its body is taken (a token, a size its role and
endpoint allow, room in the body budget), the answers given before the
body (401, 413, 503 with JSON and ``Connection: close``), bodies kept in
memory and released, slow senders answered 408, and the plain boot
listener's limits."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from luna2d.resources.common import MAX_BODY, MAX_LOGIN_BODY
from luna2d.resources.site import EdgeSettings, LunaSite, boot_only, make_site
from tests.support import API, hash_inline

MIB = 1 << 20


class Conn:
    """One client connection to ``site`` over a StringTransport."""

    def __init__(self, site: LunaSite) -> None:
        self.transport = StringTransport()
        self.protocol = site.buildProtocol(IPv4Address("TCP", "10.0.0.9", 40000))
        assert self.protocol is not None
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def head(
        self, method: str, path: str, length: int | None, token: str | None = None, extra: str = ""
    ) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: luna", "Content-Type: application/json"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        else:
            lines.append("Transfer-Encoding: chunked")
        if token:
            lines.append(f"x-access-tokens: {token}")
        if extra:
            lines.append(extra)
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    @property
    def written(self) -> bytes:
        return self.transport.value()

    def answer(self) -> tuple[int, dict[str, str], Any]:
        """(status, headers, parsed JSON body) of the first answer written."""
        raw = self.written
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        code = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                size, _, body = body.partition(b"\r\n")
                if int(size, 16) == 0:
                    break
                data, body = data + body[: int(size, 16)], body[int(size, 16) + 2 :]
            body = data
        length = int(headers.get("content-length", len(body)))
        body = body[:length]
        if not body:
            return code, headers, None
        is_json = headers.get("content-type", "").startswith("application/json")
        return code, headers, json.loads(body) if is_json else body.decode("latin-1")

    @property
    def request(self) -> Any:
        """The last request of the connection."""
        return self.protocol._channel.requests[-1]

    def close(self) -> None:
        self.protocol.connectionLost(Exception("closed"))


class EdgeCase(unittest.TestCase):
    settings = EdgeSettings(body_memory=64 * MIB, body_idle_timeout=5, body_timeout=20)

    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(self.api.store.pool.close)
        self.clock = self.api.clock
        self.site = make_site(self.api.resource, self.api.auth, self.settings, self.clock)

    def conn(self) -> Conn:
        return Conn(self.site)

    def settle(self) -> None:
        """Run what is due now (the slices of a large body's parse)."""
        for _ in range(10000):
            if not any(
                call.getTime() <= self.clock.seconds() for call in self.clock.getDelayedCalls()
            ):
                return
            self.clock.advance(0)


class BeforeTheBodyTests(EdgeCase):
    def test_no_token_is_401_before_the_body_and_nothing_is_kept(self) -> None:
        """A 60 MiB POST to /config without a token is answered 401 (JSON,
        Connection: close) as soon as its headers are in, with no 100
        Continue; the body that follows is dropped as it arrives: nothing
        is stored, nothing counts against the budget, and the connection is
        closed when it ends."""
        conn = self.conn()
        conn.head("POST", "/config/node/x", 60 * MIB, extra="Expect: 100-continue")
        code, headers, body = conn.answer()
        self.assertEqual(code, 401)
        self.assertIn("token", body["message"])
        self.assertEqual(headers["connection"], "close")
        self.assertNotIn(b"100 Continue", conn.written)
        request = conn.request
        chunk = b"x" * MIB
        for _ in range(60):
            conn.send(chunk)
            self.assertEqual(request.content.tell(), 0)
            self.assertEqual(self.site.budget.used, 0)
        self.assertTrue(conn.transport.disconnecting)
        self.assertEqual(conn.written.count(b"HTTP/1.1 "), 1)

    def test_invalid_and_expired_tokens_are_401_before_the_body(self) -> None:
        """A forged token and an expired one are refused from the headers."""
        forged = self.api.admin_token[:-4] + "AAAA"
        conn = self.conn()
        conn.head("POST", "/config/node/x", 1000, token=forged)
        self.assertEqual(conn.answer()[0], 401)
        token = self.api.token()
        self.clock.advance(7200)
        conn = self.conn()
        conn.head("POST", "/config/node/x", 1000, token=token)
        code, _, body = conn.answer()
        self.assertEqual((code, body["message"]), (401, "the token has expired"))

    def test_sizes_by_endpoint_and_role(self) -> None:
        """POST /token takes 64 KiB without a token; an admin 64 MiB; a node
        token 1 MiB; a readonly token 64 KiB; /monitor at most 1 MiB whoever
        asks. One byte over is 413 naming the size, before the body."""
        node = self.api.token("node", node="node001")
        readonly = self.api.token("readonly")
        admin = self.api.admin_token
        cases = [
            ("/token", None, MAX_LOGIN_BODY, "64 KiB"),
            ("/config/node/node001", admin, MAX_BODY, "64 MiB"),
            ("/config/node/node001", node, MIB, "1 MiB"),
            ("/config/node/node001", readonly, MAX_LOGIN_BODY, "64 KiB"),
            ("/monitor/node/node001", admin, MIB, "1 MiB"),
        ]
        for path, token, limit, text in cases:
            conn = self.conn()
            conn.head("POST", path, limit + 1, token=token)
            code, _, body = conn.answer()
            self.assertEqual(
                (code, body), (413, {"message": f"request body is larger than {text}"}), path
            )
            conn.close()
            conn = self.conn()
            conn.head("POST", path, limit, token=token)
            self.assertEqual(conn.written, b"", path)  # admitted: waiting for the body
            self.assertEqual(self.site.budget.used, limit)
            conn.close()
            self.assertEqual(self.site.budget.used, 0)

    def test_chunked_body_cut_when_it_passes_the_limit(self) -> None:
        """A chunked body is counted as it comes: a node token's report that
        grows past 1 MiB is answered 413 at that chunk, and what came is
        dropped and released."""
        conn = self.conn()
        conn.head(
            "POST", "/monitor/node/node001", None, token=self.api.token("node", node="node001")
        )
        chunk = b"x" * (256 * 1024)
        for _ in range(4):
            conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        self.assertEqual(conn.written, b"")
        self.assertEqual(self.site.budget.used, MIB)
        conn.send(b"1\r\nx\r\n")
        code, _, body = conn.answer()
        self.assertEqual((code, body["message"]), (413, "request body is larger than 1 MiB"))
        self.assertEqual(self.site.budget.used, 0)
        self.assertEqual(conn.request.content.tell(), 0)


class BudgetTests(EdgeCase):
    def test_bodies_in_flight_are_bounded(self) -> None:
        """With 64 MiB for bodies, a held 60 MiB upload leaves room for
        small writes but not for another 10 MiB: 503 with a JSON message and
        Retry-After, before that body. When the held upload's connection
        goes, its room comes back."""
        admin = self.api.admin_token
        held = self.conn()
        held.head("POST", "/config/node/big", 60 * MIB, token=admin)
        held.send(b"{" * 1000)
        self.assertEqual(self.site.budget.used, 60 * MIB)
        other = self.conn()
        other.head("POST", "/config/node/other", 10 * MIB, token=admin)
        code, headers, body = other.answer()
        self.assertEqual(code, 503)
        self.assertIn("in flight", body["message"])
        self.assertEqual(headers["retry-after"], "1")
        small = self.conn()
        payload = json.dumps({"config": {"node": {"small": {"group": "compute"}}}}).encode()
        small.head("POST", "/config/node/small", len(payload), token=admin)
        small.send(payload)
        self.assertEqual(small.answer()[0], 201)
        self.assertEqual(self.site.budget.used, 60 * MIB)
        held.close()
        self.assertEqual(self.site.budget.used, 0)
        again = self.conn()
        again.head("POST", "/config/node/other", 10 * MIB, token=admin)
        self.assertEqual(again.written, b"")
        self.assertEqual(self.site.budget.used, 10 * MIB)

    def test_anonymous_bodies_get_a_sixteenth(self) -> None:
        """Logins (the one body taken without a token) share a sixteenth of
        the budget: with 64 MiB, 64 held 64 KiB logins fill it and the 65th
        is 503, while an admin's body is still taken."""
        held = []
        for _ in range(64):
            conn = self.conn()
            conn.head("POST", "/token", MAX_LOGIN_BODY)
            self.assertEqual(conn.written, b"")
            held.append(conn)
        late = self.conn()
        late.head("POST", "/token", MAX_LOGIN_BODY)
        self.assertEqual(late.answer()[0], 503)
        admin = self.conn()
        admin.head("POST", "/config/node/x", 8 * MIB, token=self.api.admin_token)
        self.assertEqual(admin.written, b"")
        for conn in held:
            conn.close()
        self.assertEqual(self.site.budget.anonymous, 0)

    def test_bodies_are_kept_in_memory_and_released_after_the_answer(self) -> None:
        """A body past twisted.web's 100 kB temp-file threshold is kept in
        memory, reaches its handler, and its room is released once the
        answer is written."""
        comment = "c" * 60000
        payload = json.dumps(
            {"config": {"node": {"mem01": {"group": "compute", "comment": comment}}}}, indent=60000
        ).encode()
        self.assertGreater(len(payload), 200 * 1024)
        conn = self.conn()
        conn.head("POST", "/config/node/mem01", len(payload), token=self.api.admin_token)
        request = conn.request
        self.assertIsInstance(request.content, BytesIO)
        conn.send(payload)
        self.settle()
        self.assertEqual(conn.answer()[0], 201)
        self.assertEqual(self.site.budget.used, 0)
        self.assertEqual(self.api.show("node", "mem01")["comment"], comment)


class SlowSenderTests(EdgeCase):
    def test_trickling_sender_is_cut_at_the_request_timeout(self) -> None:
        """A body trickled one byte a second (never idle) is answered 408
        at BODY_TIMEOUT (20 s) after its request line, the connection is
        closed, and its room released."""
        conn = self.conn()
        conn.head("POST", "/config/node/slow", 1000, token=self.api.admin_token)
        for _ in range(19):
            conn.send(b" ")
            self.clock.advance(1)
        self.assertEqual(conn.written, b"")
        self.clock.advance(1)
        code, _, body = conn.answer()
        self.assertEqual(code, 408)
        self.assertIn("20 s", body["message"])
        self.assertTrue(conn.transport.disconnecting)
        self.assertEqual(self.site.budget.used, 0)

    def test_paused_body_is_cut_at_the_idle_timeout(self) -> None:
        """A body that stops for BODY_IDLE_TIMEOUT (5 s) is answered 408."""
        conn = self.conn()
        conn.head("POST", "/config/node/slow", 1000, token=self.api.admin_token)
        conn.send(b"{")
        self.clock.advance(4.9)
        self.assertEqual(conn.written, b"")
        self.clock.advance(0.2)
        code, _, body = conn.answer()
        self.assertEqual(code, 408)
        self.assertIn("paused", body["message"])
        self.assertTrue(conn.transport.disconnecting)

    def test_slow_headers_are_cut_too(self) -> None:
        """The request timeout runs from the request line: headers sent a
        line at a time are answered 408 at BODY_TIMEOUT."""
        conn = self.conn()
        conn.send(b"GET /version HTTP/1.1\r\n")
        for number in range(20):
            conn.send(b"X-Slow-%d: 1\r\n" % number)
            self.clock.advance(1)
        self.assertEqual(conn.answer()[0], 408)

    def test_a_fast_request_leaves_no_timer(self) -> None:
        """A request that arrived whole leaves no timer behind."""
        conn = self.conn()
        conn.send(b"GET /version HTTP/1.1\r\nHost: luna\r\n\r\n")
        self.assertEqual(conn.answer()[0], 200)
        # Only the channel's own keep-alive timer is left.
        left = [call for call in self.clock.getDelayedCalls() if "TimeoutMixin" not in repr(call)]
        self.assertEqual(left, [])


class BootOnlyTests(EdgeCase):
    def setUp(self) -> None:
        super().setUp()
        self.site = make_site(
            boot_only(self.api.resource, self.api.auth), self.api.auth, self.settings, self.clock
        )

    def fetch(
        self, method: str, path: str, token: str | None = None, payload: bytes = b""
    ) -> tuple[int, Any]:
        conn = self.conn()
        conn.head(method, path, len(payload), token=token)
        conn.send(payload)
        code, _, body = conn.answer()
        return code, body

    def test_boot_listener_serves_only_the_boot_paths(self) -> None:
        """The plain listener next to an https API answers /version and the
        boot paths, takes node reports from node tokens only, and answers
        404 (pointing at the https API) for the rest, a login included."""
        self.assertEqual(self.fetch("GET", "/version")[0], 200)
        self.assertNotEqual(self.fetch("GET", "/boot")[0], 404)
        for path in ("/config/node", "/service/dhcp/status", "/", "/journal/x"):
            code, body = self.fetch("GET", path, token=self.api.admin_token)
            self.assertEqual(code, 404, path)
            self.assertIn("https", body["message"])
        login = json.dumps({"username": "luna", "password": "x"}).encode()
        self.assertEqual(self.fetch("POST", "/token", payload=login)[0], 404)
        report = json.dumps(
            {"monitor": {"status": {"node001": {"state": "installer.ok"}}}}
        ).encode()
        code, _ = self.fetch(
            "POST", "/monitor/node/node001", token=self.api.admin_token, payload=report
        )
        self.assertEqual(code, 403)
        code, _ = self.fetch("POST", "/monitor/node/node001", token=None, payload=b"")
        self.assertEqual(code, 401)
        node = self.api.token("node", node="node001")
        code, body = self.fetch("POST", "/monitor/node/node001", token=node, payload=report)
        self.assertLess(code, 300, body)
