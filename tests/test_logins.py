"""luna2d.resources.logins, and the login policy of Auth built on it.

The throttle: a key's free budget counts logins in flight, then each failure
blocks the key for 1, 2, 4 ... seconds up to its cap, one attempt at a time;
a success clears a user name's count but not a source's; counts are
forgotten after a quiet while; the table of keys stays bounded. The fair
gate: at most ``slots`` checks at once, queued sources served in turn, a
full queue refused. Source keys: IPv4 addresses, IPv6 /64s. Then Auth with
these policies: a throttled login is refused before any password is
checked (429 with Retry-After over HTTP), per source and per user name
across sources (but not where the name lately logged in), and a full
queue answers 503."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.config import APIConfig
from luna2d.errors import Throttled, Unauthorized, Unavailable
from luna2d.resources.auth import Auth
from luna2d.resources.logins import (
    SOURCE_LIMITS,
    USER_LIMITS,
    Busy,
    FairGate,
    Limits,
    Throttle,
    source_key,
)
from luna2d.store import crypto
from luna2d.store.users import Credentials
from tests.support import ADMIN, API, PASSWORD, SECRET, hash_inline


def fail_once(throttle: Throttle, key: str, now: float) -> None:
    """One checked attempt for ``key`` that failed at ``now``."""
    assert throttle.refusal(key, now) is None, key
    throttle.start(key, now)
    throttle.end(key, now, True)


def wait(throttle: Throttle, key: str, now: float) -> int | None:
    """How long ``key`` is told to wait at ``now`` (None: it may try)."""
    refusal = throttle.refusal(key, now)
    return None if refusal is None else refusal.retry_after


class ThrottleTests(unittest.TestCase):
    def setUp(self) -> None:
        self.throttle = Throttle(Limits(free=5, cap=300.0), lambda key: f"from {key}")

    def test_budget_then_doubling_backoff(self) -> None:
        """Five failures are free; then each failure blocks the key for 1, 2,
        4 ... s, never more than the cap, and the refusal says how long."""
        now = 1000.0
        for _ in range(5):
            fail_once(self.throttle, "10.0.0.1", now)
        waits = []
        for _ in range(12):
            refusal = self.throttle.refusal("10.0.0.1", now)
            assert refusal is not None
            waits.append(refusal.retry_after)
            self.assertEqual(
                refusal.message,
                f"too many failed logins from 10.0.0.1; try again in {refusal.retry_after} s",
            )
            # Just before the block ends the key is still refused; at its end it may try.
            almost = now + refusal.retry_after - 0.01
            self.assertIsNotNone(self.throttle.refusal("10.0.0.1", almost))
            now += refusal.retry_after
            fail_once(self.throttle, "10.0.0.1", now)
        self.assertEqual(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
        self.assertIsNone(self.throttle.refusal("10.0.0.2", now))

    def test_logins_in_flight_count(self) -> None:
        """Logins still being checked use the budget: a sixth concurrent
        attempt is refused at once, and allowed again when one ends well."""
        for _ in range(5):
            self.assertIsNone(self.throttle.refusal("a", 0.0))
            self.throttle.start("a", 0.0)
        refusal = self.throttle.refusal("a", 0.0)
        assert refusal is not None
        self.assertEqual(
            (refusal.message, refusal.retry_after),
            ("too many logins in progress from a; try again in 1 s", 1),
        )
        self.throttle.end("a", 0.0, False)
        self.assertIsNone(self.throttle.refusal("a", 0.0))

    def test_blocked_key_one_attempt_at_a_time(self) -> None:
        """Past its budget a key, even once its block is over, has one
        attempt in flight at most."""
        for _ in range(5):
            fail_once(self.throttle, "a", 0.0)
        self.throttle.start("a", 2.0)
        self.assertIsNotNone(self.throttle.refusal("a", 2.0))
        self.throttle.end("a", 2.0, None)
        self.assertIsNone(self.throttle.refusal("a", 2.0))

    def test_success_resets_only_when_asked(self) -> None:
        """A success clears the count when ``reset`` (user names), not
        otherwise (sources: one good account must not let a source guess on)."""
        for key in ("user", "source"):
            for _ in range(5):
                fail_once(self.throttle, key, 0.0)
        for key, reset in (("user", True), ("source", False)):
            self.throttle.start(key, 1.0)
            self.throttle.end(key, 1.0, False, reset=reset)
        fail_once(self.throttle, "user", 1.0)
        self.assertIsNone(self.throttle.refusal("user", 1.0))
        fail_once(self.throttle, "source", 1.0)
        self.assertEqual(wait(self.throttle, "source", 1.0), 2)

    def test_forgotten_after_a_quiet_while(self) -> None:
        """A key's count holds through 900 s without a failure (the next
        failure blocks longer still); past 900 s it starts afresh."""
        for _ in range(7):
            self.throttle.start("a", 0.0)
            self.throttle.end("a", 0.0, True)
        fail_once(self.throttle, "a", 899.0)
        self.assertEqual(wait(self.throttle, "a", 899.0), 8)
        for _ in range(5):
            fail_once(self.throttle, "a", 1800.0)
        self.assertEqual(wait(self.throttle, "a", 1800.0), 1)

    def test_table_is_bounded(self) -> None:
        """However many keys fail, at most ``entries`` are kept; the quietest
        go first, and a key with a login in flight is kept."""
        throttle = Throttle(Limits(free=5, cap=300.0, entries=100), str)
        throttle.start("busy", 0.0)
        for number in range(1000):
            fail_once(throttle, f"10.1.{number >> 8}.{number & 255}", float(number))
        self.assertEqual(len(throttle), 100)
        for _ in range(5):
            fail_once(throttle, "loud", 1000.0)
        for number in range(50):
            fail_once(throttle, f"10.2.0.{number}", 1000.0)
        self.assertIsNotNone(throttle.refusal("loud", 1000.0))  # still remembered
        throttle.end("busy", 1000.0, True)
        self.assertLessEqual(len(throttle), 101)

    def test_long_keys_counted_by_their_start(self) -> None:
        """A name of 64 KiB costs no more than one of 128 characters."""
        name = "x" * 65536
        for _ in range(5):
            fail_once(self.throttle, name, 0.0)
        self.assertIsNotNone(self.throttle.refusal("x" * 128 + "y", 0.0))

    def test_shipped_limits(self) -> None:
        """Sources: 5 free, up to 300 s; user names: 10 free (more than one
        source alone can spend), up to 60 s."""
        self.assertEqual((SOURCE_LIMITS.free, SOURCE_LIMITS.cap), (5, 300.0))
        self.assertEqual((USER_LIMITS.free, USER_LIMITS.cap), (10, 60.0))
        self.assertLess(SOURCE_LIMITS.free, USER_LIMITS.free)


class FairGateTests(unittest.TestCase):
    def setUp(self) -> None:
        self.gate = FairGate(slots=2, queued=6)
        self.jobs: list[tuple[str, defer.Deferred[Any]]] = []
        self.order: list[str] = []

    def job(self, label: str) -> Any:
        def run() -> defer.Deferred[Any]:
            d: defer.Deferred[Any] = defer.Deferred()
            self.order.append(label)
            self.jobs.append((label, d))
            return d

        return run

    def finish(self, label: str) -> None:
        for index, (name, d) in enumerate(self.jobs):
            if name == label:
                del self.jobs[index]
                d.callback(label)
                return
        raise AssertionError(f"{label} is not running")

    def test_at_most_slots_run(self) -> None:
        """Two jobs run at once; the rest wait, and start as slots free."""
        results: list[Any] = []
        for number in range(4):
            self.gate.submit("a", self.job(f"a{number}")).addCallback(results.append)
        self.assertEqual(self.order, ["a0", "a1"])
        self.assertEqual((self.gate.running, self.gate.waiting), (2, 2))
        self.finish("a0")
        self.assertEqual(self.order, ["a0", "a1", "a2"])
        for label in ("a1", "a2", "a3"):
            self.finish(label)
        self.assertEqual(results, ["a0", "a1", "a2", "a3"])
        self.assertEqual((self.gate.running, self.gate.waiting), (0, 0))

    def test_sources_take_turns(self) -> None:
        """A source with many jobs waiting delays another source's job by at
        most the job already running: a freed slot goes to the source with
        the fewest jobs running, then to the one waiting longest."""
        for number in range(5):
            self.gate.submit("flood", self.job(f"f{number}"))
        self.gate.submit("admin", self.job("good"))
        self.gate.submit("other", self.job("other"))
        self.assertEqual(self.order, ["f0", "f1"])
        self.finish("f0")
        self.assertEqual(self.order[-1], "good")
        self.finish("f1")
        self.assertEqual(self.order[-1], "other")
        self.finish("good")
        self.finish("other")
        self.assertEqual(self.order, ["f0", "f1", "good", "other", "f2", "f3"])

    def test_full_queue_is_busy(self) -> None:
        """Beyond ``queued`` waiting jobs, submit raises Busy and runs nothing."""
        for number in range(8):
            self.gate.submit(f"s{number}", self.job(f"j{number}"))
        self.assertRaises(Busy, self.gate.submit, "late", self.job("late"))
        self.assertNotIn("late", self.order)

    def test_failed_job_frees_its_slot(self) -> None:
        """A job whose Deferred fails hands its failure on and frees its slot."""
        failures: list[Any] = []
        self.gate.submit("a", lambda: defer.fail(ValueError("boom"))).addErrback(failures.append)
        self.assertEqual(len(failures), 1)
        self.assertEqual(self.gate.running, 0)


class SourceKeyTests(unittest.TestCase):
    def test_keys(self) -> None:
        """IPv4 as is; IPv6 by /64; v4-mapped IPv6 as IPv4; others "local"."""
        self.assertEqual(source_key(IPv4Address("TCP", "10.141.0.7", 5000)), "10.141.0.7")
        for host in ("fd00:1:2:3:aaaa::1", "fd00:1:2:3:bbbb::9"):
            self.assertEqual(source_key(IPv6Address("TCP", host, 5000)), "fd00:1:2:3::/64")
        self.assertEqual(source_key(IPv6Address("TCP", "::ffff:10.0.0.1", 5000)), "10.0.0.1")
        self.assertEqual(source_key(IPv6Address("TCP", "fe80::1%eth0", 5000)), "fe80::/64")
        self.assertEqual(source_key(UNIXAddress(b"/run/luna.sock")), "local")
        self.assertEqual(source_key(None), "local")


class FakeRequest:
    """What Auth.login reads and writes of a request: the peer and headers."""

    def __init__(self, host: str) -> None:
        self.address = IPv4Address("TCP", host, 40000)
        self.headers: dict[bytes, bytes] = {}

    def getClientAddress(self) -> IPv4Address:
        return self.address

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value


class TokenRequest:
    """A request that carries ``token``."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()

    def getHeader(self, name: bytes) -> bytes | None:
        return self.token if name == b"x-access-tokens" else None


class CountingStore:
    """A store of one user whose password checks are counted and may be
    held back (``hold``) to stand for slow scrypt threads."""

    def __init__(self) -> None:
        self.pwhash = crypto.hash_password("alice-password")
        self.generation = 3
        self.hashes: list[defer.Deferred[str]] = []
        self.hold_hash = False
        self.checks = 0
        self.hold = False
        self.held: list[defer.Deferred[bool]] = []

    def credentials(self, name: str) -> Credentials | None:
        if name != "alice":
            return None
        return Credentials("alice", "00112233aabbccdd", self.generation, "readonly", self.pwhash)

    def verify_password(self, password: str, stored: str | None) -> defer.Deferred[bool]:
        self.checks += 1
        stored = stored or crypto.UNUSABLE_HASH
        if self.hold:
            d: defer.Deferred[bool] = defer.Deferred()
            self.held.append(d)
            return d
        return defer.succeed(crypto.check_password(password, stored))

    def hash_password(self, password: str) -> defer.Deferred[str]:
        self.hashes.append(d := defer.Deferred())
        if not self.hold_hash:
            d.callback(crypto.hash_password(password))
        return d


class AuthThrottleTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.store = CountingStore()
        api = APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0)
        self.auth = Auth(api, self.store, self.clock)

    def login(
        self, user: str, password: str, host: str = "10.0.0.1"
    ) -> tuple[str, Any, FakeRequest]:
        """("ok", token) or (error class name, message), and the request."""
        request = FakeRequest(host)
        d = defer.ensureDeferred(self.auth.login({"username": user, "password": password}, request))
        box: list[Any] = []
        later = False

        def keep(result: Any) -> Any:
            box.append(result)
            # An answer at once is read here; a later one is the caller's.
            return result if later or isinstance(result, str) else None

        d.addBoth(keep)
        if not box:
            later = True
            return "pending", d, request
        if isinstance(box[0], str):
            return "ok", box[0], request
        return type(box[0].value).__name__, box[0].value.message, request

    def test_source_throttled_before_hashing(self) -> None:
        """After 5 failures from one address the next login, even with the
        right password, is refused without a password check, with
        Retry-After; other addresses are not affected."""
        for _ in range(5):
            self.assertEqual(
                self.login("alice", "wrong-password")[:2],
                ("Unauthorized", "invalid username or password"),
            )
        checks = self.store.checks
        kind, text, request = self.login("alice", "alice-password")
        self.assertEqual(
            (kind, text), ("Throttled", "too many failed logins from 10.0.0.1; try again in 1 s")
        )
        self.assertEqual(request.headers[b"retry-after"], b"1")
        self.assertEqual(self.store.checks, checks)
        self.assertEqual(self.login("alice", "alice-password", host="10.0.0.2")[0], "ok")
        self.clock.advance(1)
        self.assertEqual(self.login("alice", "alice-password")[0], "ok")

    def test_user_name_throttled_across_sources(self) -> None:
        """Ten failures for one name, from ten addresses, block that name
        from every address (unknown names alike, so a 429 tells nothing of
        who exists); a success afterwards clears the name's count."""
        for name in ("alice", "nobody"):
            for number in range(10):
                answer = self.login(name, "wrong-password", host=f"10.1.0.{number}")
                self.assertEqual(answer[0], "Unauthorized")
            kind, text, request = self.login(name, "wrong-password", host="10.2.0.1")
            expected = f"too many failed logins for user {name!r}; try again in 1 s"
            self.assertEqual((kind, text), ("Throttled", expected))
            self.assertEqual(request.headers[b"retry-after"], b"1")
        self.clock.advance(1)
        self.assertEqual(self.login("alice", "alice-password", host="10.2.0.1")[0], "ok")
        self.assertEqual(self.login("alice", "wrong-password", host="10.2.0.2")[0], "Unauthorized")
        self.assertEqual(self.login("alice", "alice-password", host="10.2.0.3")[0], "ok")

    def test_name_stays_open_where_its_owner_logs_in(self) -> None:
        """Failures for a name from strangers block it for new addresses,
        but not for an address it has logged in from lately (7 days)."""
        self.assertEqual(self.login(ADMIN, PASSWORD, host="10.9.9.9")[0], "ok")
        for number in range(12):
            self.login(ADMIN, "guess", host=f"10.5.0.{number}")
        self.assertEqual(self.login(ADMIN, PASSWORD, host="10.9.9.8")[0], "Throttled")
        self.assertEqual(self.login(ADMIN, PASSWORD, host="10.9.9.9")[0], "ok")
        self.clock.advance(7 * 86400 + 1)
        for number in range(12):
            self.login(ADMIN, "guess", host=f"10.6.0.{number}")
        self.assertEqual(self.login(ADMIN, PASSWORD, host="10.9.9.9")[0], "Throttled")

    def test_flood_in_flight_refused_at_once(self) -> None:
        """400 logins at once from one address while checks are slow: 5 are
        queued, 395 refused at once, no more than 5 checks are ever made."""
        self.store.hold = True
        answers = [self.login(ADMIN, "guess") for _ in range(400)]
        kinds = [a[0] for a in answers]
        self.assertEqual(kinds.count("pending"), 5)
        self.assertEqual(kinds.count("Throttled"), 395)
        self.assertEqual(self.store.checks, 2)  # two run, three wait their turn
        while self.store.held:
            self.store.held.pop(0).callback(False)
        self.assertEqual(self.store.checks, 5)
        for kind, pending, _ in answers:
            if kind == "pending":
                self.failureResultOf(pending, Unauthorized)

    def test_full_queue_answers_busy(self) -> None:
        """When 64 checks already wait (many sources), a new login gets 503
        with Retry-After: 1 and costs no check; its budget is given back."""
        self.store.hold = True
        for number in range(66):
            host = f"10.3.{number >> 8}.{number & 255}"
            self.assertEqual(self.login(f"user{number}", "x", host=host)[0], "pending")
        checks = self.store.checks
        kind, text, request = self.login("alice", "alice-password", host="10.4.0.1")
        self.assertEqual(
            (kind, text), ("Unavailable", "too many logins are being checked; try again in 1 s")
        )
        self.assertEqual(request.headers[b"retry-after"], b"1")
        self.assertEqual(self.store.checks, checks)
        self.assertIsNone(self.auth.sources.refusal("10.4.0.1", self.clock.seconds()))

    def test_ini_hash_made_once(self) -> None:
        """The ini admin's hash is made once, in the store's thread, by the
        first login, whatever name it gives; logins meanwhile wait for it,
        then each costs one check."""
        self.store.hold_hash = True
        waiting = [
            self.login(name, "x", host=f"10.7.0.{n}")
            for n, name in enumerate(("nobody", ADMIN, "alice"))
        ]
        self.assertEqual(
            ([w[0] for w in waiting], len(self.store.hashes), self.store.checks),
            (["pending"] * 3, 1, 0),
        )
        self.store.hashes[0].callback(crypto.hash_password(PASSWORD))
        self.assertEqual(self.store.checks, 3)
        for _, pending, _ in waiting:
            self.failureResultOf(pending, Unauthorized)
        self.assertEqual(self.login(ADMIN, PASSWORD, host="10.7.0.9")[0], "ok")
        self.assertEqual((len(self.store.hashes), self.store.checks), (1, 4))

    def test_ini_hash_failure_is_retried(self) -> None:
        """Should making the ini admin's hash fail, the logins waiting for it
        fail (500 over HTTP), count as nothing, and the next login tries again."""
        self.store.hold_hash = True
        first = self.login(ADMIN, PASSWORD)
        self.store.hashes[0].errback(MemoryError())
        self.failureResultOf(first[1], MemoryError)
        self.assertIsNone(self.auth.sources.refusal("10.0.0.1", 0.0))
        self.store.hold_hash = False
        self.assertEqual(self.login(ADMIN, PASSWORD)[0], "ok")
        self.assertEqual(len(self.store.hashes), 2)

    def test_change_during_the_check(self) -> None:
        """A login whose user changes password while its check waits gets a
        token bound to the generation it was checked against: refused."""
        self.store.hold = True
        _, pending, _ = self.login("alice", "alice-password")
        self.store.generation = 4
        self.store.held.pop().callback(True)
        token = self.successResultOf(pending)
        error = self.assertRaises(Unauthorized, self.auth.principal, TokenRequest(token))
        self.assertIn("was revoked", error.message)
        _, token, _ = self.login("alice", "alice-password")
        self.store.held.pop().callback(True)
        who = self.auth.principal(TokenRequest(self.successResultOf(token)))
        self.assertEqual(who.name if who else None, "alice")

    def test_errors_are_the_mapped_kinds(self) -> None:
        """The refusals are luna2d errors with the statuses the API answers."""
        self.assertEqual(
            (Throttled.status, Unavailable.status, Unauthorized.status), (429, 503, 401)
        )


class HTTPThrottleTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()

    def test_429_with_retry_after(self) -> None:
        """Over HTTP: five wrong passwords answer 401, the sixth login 429
        with a JSON message and a Retry-After header; after the wait the
        right password gets its token."""
        for _ in range(5):
            code, body = self.api.post(
                "/token", {"username": ADMIN, "password": "wrong"}, token=False
            )
            self.assertEqual((code, body), (401, {"message": "invalid username or password"}))
        code, body, headers = self.api.request(
            "POST", "/token", {"username": ADMIN, "password": PASSWORD}, token=False
        )
        self.assertEqual(
            (code, body),
            (429, {"message": "too many failed logins from 127.0.0.1; try again in 1 s"}),
        )
        self.assertEqual(headers[b"Retry-After"], [b"1"])
        self.api.clock.advance(1)
        code, body = self.api.post("/token", {"username": ADMIN, "password": PASSWORD}, token=False)
        self.assertEqual(code, 201)

    def test_malformed_logins_are_not_failures(self) -> None:
        """A 400 (bad body) neither counts as a failure nor is throttled."""
        for _ in range(20):
            self.assertEqual(self.api.post("/token", {"username": ADMIN}, token=False)[0], 400)
        good = {"username": ADMIN, "password": PASSWORD}
        self.assertEqual(self.api.post("/token", good, token=False)[0], 201)
