"""A flood of bad logins against the real daemon's HTTP stack, on the real
reactor, with real scrypt threads, over real loopback sockets.

A separate process (tests/login_flood_client.py: a hostile machine, whose
work luna2d's reactor does not do) opens 400 connections from one address
(127.0.0.2) and sends on each a wrong password, for a store user, an
unknown name and the ini admin in turn. As soon as they are sent, the ini
admin (from 127.0.0.3) and a store user (from 127.0.0.4) log in with their
right passwords. Both good logins must answer 201 within one second of the
flood being let go. The flood gets 401 for the five attempts its address
is allowed (one more per block that ends meanwhile) and 429 with
Retry-After for the rest, refused before any hashing."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from luna2d.config import APIConfig
from luna2d.resources.auth import Auth
from luna2d.resources.root import build
from luna2d.resources.site import make_site
from tests.support import ADMIN, PASSWORD, SECRET, ReactorCase, open_store, the_reactor

FLOOD = 400
NAMES = ("alice", "nobody", ADMIN)  # a store user, an unknown name, the ini admin
CLIENT = Path(__file__).with_name("login_flood_client.py")


class OneRequest(protocol.Protocol):
    """Sends one HTTP request when told to; keeps the whole answer."""

    def __init__(self, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.request = (
            b"POST /token HTTP/1.1\r\nHost: luna\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data
        )
        self.answer = bytearray()
        self.done: defer.Deferred[None] = defer.Deferred()
        self.answered_at = 0.0

    def send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.answer += data

    def connectionLost(self, reason: Any = None) -> None:
        self.answered_at = time.perf_counter()
        self.done.callback(None)

    @property
    def status(self) -> int:
        return int(bytes(self.answer).split(b" ", 2)[1]) if self.answer else 0


class Attacker(protocol.ProcessProtocol):
    """tests/login_flood_client.py in its own process, line by line: each
    line it prints goes to ``lines``, in order."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lines: defer.DeferredQueue[str] = defer.DeferredQueue()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.lines.put(line.decode())

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)

    def say(self) -> None:
        assert self.transport is not None
        self.transport.write(b"\n")


class LoginFloodTests(ReactorCase):
    async def test_good_logins_answer_within_a_second(self) -> None:
        """400 concurrent bad logins from one address delay neither the ini
        admin's nor a store user's good login by a second."""
        reactor = the_reactor()
        store, cfg = open_store(clock=reactor)
        self.addCleanup(shutil.rmtree, str(cfg.database.database.parent), True)
        self.addCleanup(store.pool.close)
        await store.put_user("alice", {"password": "alice-password", "role": "readonly"}, ADMIN)
        auth = Auth(APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), store, reactor)
        site = make_site(build(store, auth, ADMIN), auth)
        # Every connection is accepted before any request is sent, so that
        # what is measured is luna2d, not the kernel's listen backlog (50):
        # clients connect in batches, each awaited until luna2d has it.
        accepted: list[Any] = []
        waiting: dict[int, defer.Deferred[None]] = {}
        build_protocol = site.buildProtocol

        def counted(address: Any) -> Any:
            accepted.append(address)
            if len(accepted) in waiting:
                reactor.callLater(0, waiting.pop(len(accepted)).callback, None)
            return build_protocol(address)

        def until_accepted(total: int) -> defer.Deferred[None]:
            if len(accepted) >= total:
                return defer.succeed(None)
            waiting[total] = defer.Deferred()
            return waiting[total]

        site.buildProtocol = counted  # type: ignore[method-assign]
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number = port.getHost().port

        attacker = Attacker()
        reactor.spawnProcess(
            attacker,
            sys.executable,
            [
                sys.executable,
                str(CLIENT),
                "127.0.0.2",
                "127.0.0.1",
                str(number),
                str(FLOOD),
                *NAMES,
            ],
            env=None,
        )
        while (line := await attacker.lines.get()) != "ready":
            self.assertTrue(line.startswith("batch "), (line, attacker.errors))
            await until_accepted(int(line.split()[1]))
            attacker.say()

        good = [
            OneRequest({"username": ADMIN, "password": PASSWORD}),
            OneRequest({"username": "alice", "password": "alice-password"}),
        ]
        for client, source in zip(good, ("127.0.0.3", "127.0.0.4"), strict=True):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", number, bindAddress=(source, 0))
            await connectProtocol(endpoint, client)
        await until_accepted(FLOOD + 2)

        attacker.say()
        start = time.perf_counter()
        self.assertEqual(await attacker.lines.get(), "sent")
        for client in good:
            client.send()
        await defer.gatherResults([client.done for client in good])
        flood = json.loads(await attacker.lines.get())
        await attacker.ended

        for client in good:
            self.assertEqual(client.status, 201, bytes(client.answer))
            self.assertIn(b'{"token":', bytes(client.answer))
            self.assertLess(client.answered_at - start, 1.0)
        statuses = flood["statuses"]
        # Five free attempts, then one more per block that ends (1 s, 2 s ...).
        self.assertIn(statuses.count(401), (5, 6, 7))
        self.assertEqual(statuses.count(401) + statuses.count(429), FLOOD)
        retries = zip(statuses, flood["retry_after"], strict=True)
        self.assertTrue(all(retry for status, retry in retries if status == 429))
