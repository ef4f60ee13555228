"""The real daemon, ``twistd luna2d``, as a separate process, spoken to over
real HTTP on loopback: start-up on the sample data, a create / update /
rename / delete round trip, durability across SIGKILL and restarts, an empty
bootstrap, start-up errors that name the key without a traceback, the key
file's mode and a clean SIGTERM.

Every test makes its own temporary folder (ini, database, key file, files)
and its own port, and stops what it started. Nothing here blocks the
reactor: the daemon runs through ``spawnProcess``, readiness is polled with
treq and ``deferLater``."""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import treq
from twisted.internet import defer, protocol, task
from twisted.internet.error import ConnectError, ProcessDone, ProcessTerminated
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python import log
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from tests.integration.support import curl_post
from tests.support import ReactorCase, the_reactor

REPO = Path(__file__).resolve().parents[2]
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ADMIN = "luna"
PASSWORD = "integration-password"
SECRET = "integration-test-secret-key-0123456789"
SAMPLE_NODES = ["node001", "node002", "node003", "node004"]
NODE_INTERFACES = {"BOOTIF", "BMC", "ib0"}


# Daemons still running, killed at exit should the test process die before
# its cleanups run.
_LIVE: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_LIVE):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ini_text(
    port: int,
    bootstrap: bool = True,
    api_extra: str = "",
    username: str | None = ADMIN,
    expiry: str = "1h",
) -> str:
    """An ini whose database, key file and files all live beside it (relative paths)."""
    user_line = f"USERNAME = {username}\n" if username is not None else ""
    return (
        "[API]\n"
        f"{user_line}"
        f"PASSWORD = {PASSWORD}\n"
        f"SECRET_KEY = {SECRET}\n"
        f"EXPIRY = {expiry}\n"
        f"ENDPOINT = 127.0.0.1:{port}\n"
        f"{api_extra}"
        "\n[DATABASE]\nDRIVER = SQLite3\nDATABASE = var/luna.db\n"
        "\n[FILES]\nIMAGE_FILES = var/files\nIMAGE_DIRECTORY = var/images\nKEYFILE = var/luna.key\n"
        "\n[DHCP]\nENABLED = no\n\n[TFTP]\nENABLED = no\n\n[DNS]\nENABLED = no\n"
        f"\n[BOOTSTRAP]\nENABLED = {'yes' if bootstrap else 'no'}\nCONTROLLER = controller\n"
    )


def twistd_args(ini: Path, *extra: str) -> list[str]:
    """twistd's arguments (after its name) that run luna2d on ``ini`` in the
    foreground, ``extra`` last."""
    return ["-n", "--reactor=asyncio", "--pidfile=", "luna2d", "--config", str(ini), *extra]


def make_folder(case: unittest.TestCase) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="luna2d-it-"))
    case.addCleanup(shutil.rmtree, str(folder), True)
    return folder


class _Capture(protocol.ProcessProtocol):
    """Collects a child's stdout and stderr and how it ended."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.reason: Any = None
        self._waiters: list[defer.Deferred] = []

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Any) -> None:
        self.reason = reason.value
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self.reason)

    @property
    def ended(self) -> bool:
        return self.reason is not None

    def when_ended(self) -> defer.Deferred:
        if self.reason is not None:
            return defer.succeed(self.reason)
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def text(self) -> str:
        return (bytes(self.out) + bytes(self.err)).decode("utf-8", "replace")


class Daemon:
    """One luna2d instance in its own folder: ini, database, key file, files.

    ``start()`` may be called again after a stop or a kill: the database,
    key file and port stay the same."""

    def __init__(
        self, case: unittest.TestCase, bootstrap: bool = True, ini: str | None = None
    ) -> None:
        self.case = case
        self.reactor = the_reactor()
        self.folder = make_folder(case)
        self.port = free_port()
        self.ini = self.folder / "luna.ini"
        self.ini.write_text(ini if ini is not None else ini_text(self.port, bootstrap))
        # The daemon runs from a folder of its own so that paths in the ini
        # must be taken relative to the ini, not to the working directory.
        self.cwd = self.folder / "cwd"
        self.cwd.mkdir()
        self.pool = HTTPConnectionPool(self.reactor, persistent=False)
        self.capture: _Capture | None = None
        self.process: Any = None
        self.runs: list[_Capture] = []
        self.env: dict[str, str] = {}  # added to the daemon's environment
        case.addCleanup(self.cleanup)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.folder / "var" / "luna.db"

    @property
    def keyfile(self) -> Path:
        return self.folder / "var" / "luna.key"

    @property
    def running(self) -> bool:
        return self.capture is not None and not self.capture.ended

    def output(self, first_run: int = 1) -> str:
        """What twistd printed, run by run, from the ``first_run``th start on."""
        return "\n".join(
            f"--- run {n} ---\n{c.text()}" for n, c in enumerate(self.runs, 1) if n >= first_run
        )

    def argv(self, *extra: str) -> list[str]:
        """The command line that runs the daemon on this ini, ``extra`` last."""
        return [TWISTD, *twistd_args(self.ini, *extra)]

    async def start(self, *extra: str, umask: int | None = None) -> None:
        """Spawn twistd (with ``umask`` if given) and wait until /version answers."""
        assert not self.running, "the daemon is already running"
        self.capture = _Capture()
        self.runs.append(self.capture)
        args = self.argv(*extra)
        previous = os.umask(umask) if umask is not None else None
        try:
            self.process = self.reactor.spawnProcess(
                self.capture, args[0], args, env={**os.environ, **self.env}, path=str(self.cwd)
            )
        finally:
            if previous is not None:
                os.umask(previous)
        pid = self.process.pid
        _LIVE.add(pid)
        self.capture.when_ended().addCallback(lambda _: _LIVE.discard(pid))
        await self.ready()

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = self.reactor.seconds() + timeout
        while True:
            assert self.capture is not None
            if self.capture.ended:
                raise AssertionError(
                    f"luna2d ended before it answered: {self.capture.reason}\n{self.output()}"
                )
            try:
                response = await treq.get(self.url + "/version", pool=self.pool, timeout=2)
                await response.content()
                if response.code == 200:
                    return
            except Exception:  # noqa: BLE001, S110 - not up yet: any failure means try again
                pass
            if self.reactor.seconds() > deadline:
                raise AssertionError(
                    f"luna2d did not answer /version within {timeout} s\n{self.output()}"
                )
            await task.deferLater(self.reactor, 0.05, lambda: None)

    async def stop(self, sig: str = "TERM", grace: float = 15.0) -> Any:
        """Send ``sig``, wait for the exit (SIGKILL after ``grace`` s); the exit reason."""
        assert self.capture is not None
        if not self.capture.ended:
            ended = self.capture.when_ended()
            self.process.signalProcess(sig)
            timer = self.reactor.callLater(grace, self._kill)
            try:
                await ended
            finally:
                if timer.active():
                    timer.cancel()
        return self.capture.reason

    def _kill(self) -> None:
        if self.running:
            self.process.signalProcess("KILL")

    async def _cleanup(self) -> None:
        if self.running:
            ended = self.capture.when_ended()
            self._kill()
            await ended
        await self.pool.closeCachedConnections()

    def cleanup(self) -> defer.Deferred:
        return defer.ensureDeferred(self._cleanup())

    # -- HTTP --------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        timeout: float = 15,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or text or None) of one request."""
        headers = {b"x-access-tokens": [token.encode()]} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(
            method, self.url + path, data=data, headers=headers, pool=self.pool, timeout=timeout
        )
        content = await response.content()
        ctype = (response.headers.getRawHeaders(b"content-type") or [b""])[0]
        parsed: Any = None
        if content:
            parsed = (
                json.loads(content) if ctype.startswith(b"application/json") else content.decode()
            )
        return response.code, parsed

    async def token(self, username: str = ADMIN, password: str = PASSWORD) -> str:
        code, body = await self.call("POST", "/token", {"username": username, "password": password})
        self.case.assertEqual(code, 201, body)
        return body["token"]

    async def get(self, path: str, token: str | None) -> Any:
        code, body = await self.call("GET", path, token=token)
        self.case.assertEqual(code, 200, f"GET {path}: {body}")
        return body


def node_body(name: str, fields: dict) -> dict:
    return {"config": {"node": {name: fields}}}


def assert_clean_exit(case: unittest.TestCase, reason: Any, output: str) -> None:
    """A clean stop: the orderly shutdown ran to its end ("Server Shut Down")
    with no traceback, and the process ended with status 0 or, as twistd
    does after a signal-initiated shutdown, by re-raising that SIGTERM (which
    systemd counts as a clean exit). Never SIGKILL, never a non-zero status."""
    clean = isinstance(reason, ProcessDone) or (
        isinstance(reason, ProcessTerminated)
        and reason.exitCode is None
        and reason.signal == signal.SIGTERM
    )
    case.assertTrue(clean, f"luna2d did not stop cleanly: {reason}\n{output}")
    case.assertIn("Server Shut Down", output)
    case.assertNotIn("Traceback", output)


# The name the daemon tests (here and in the other packages) know ReactorCase by.
DaemonCase = ReactorCase


class StartupTests(DaemonCase):
    async def test_default_ini_sample_data(self) -> None:
        """A copy of the repository's own luna2d.ini (the quick start's) starts the
        daemon on the sample cluster: /version is open, POST /token with the
        ini's luna/luna gives a token (401 for a wrong password), /config/node
        needs it (401 without) and lists node001-node004, each with an address
        on the cluster, ipmi and ib networks; the database, key file and files
        land beside the ini, not in the working directory."""
        daemon = Daemon(self)
        shutil.copy(REPO / "luna2d.ini", daemon.ini)
        await daemon.start("--port", str(daemon.port))

        code, body = await daemon.call("GET", "/version")
        self.assertEqual(code, 200)
        self.assertEqual(body["version"]["api"], 1)
        self.assertIn("luna", body["version"])

        code, body = await daemon.call("POST", "/token", {"username": "luna", "password": "wrong"})
        self.assertEqual(code, 401)
        self.assertIn("message", body)
        token = await daemon.token("luna", "luna")

        code, body = await daemon.call("GET", "/config/node")
        self.assertEqual(code, 401)
        self.assertIn("message", body)

        nodes = (await daemon.get("/config/node", token))["config"]["node"]
        self.assertEqual(sorted(nodes), SAMPLE_NODES)
        for number, name in enumerate(SAMPLE_NODES, 1):
            node = (await daemon.get(f"/config/node/{name}", token))["config"]["node"][name]
            self.assertEqual(node["group"], "compute")
            addresses = {i["network"]: i["ipaddress"] for i in node["interfaces"]}
            self.assertEqual(
                addresses,
                {
                    "cluster": f"10.141.0.{number}",
                    "ipmi": f"10.148.0.{number}",
                    "ib": f"10.149.0.{number}",
                },
            )

        networks = (await daemon.get("/config/network", token))["config"]["network"]
        self.assertEqual(sorted(networks), ["cluster", "ib", "ipmi"])
        self.assertTrue((daemon.folder / "var" / "luna.db").is_file())
        self.assertTrue((daemon.folder / "var" / "luna.key").is_file())
        self.assertEqual(sorted(p.name for p in daemon.cwd.iterdir()), [])

    async def test_bootstrap_disabled_starts_empty(self) -> None:
        """With [BOOTSTRAP] ENABLED = no the daemon starts with no nodes, no
        groups and no networks, yet /config/cluster answers with the cluster
        and this controller, and a first network can be created."""
        daemon = Daemon(self, bootstrap=False)
        await daemon.start()
        token = await daemon.token()
        for kind in ("node", "group", "network", "osimage", "bmcsetup"):
            body = await daemon.get(f"/config/{kind}", token)
            self.assertEqual(body["config"][kind], {}, kind)
        cluster = (await daemon.get("/config/cluster", token))["config"]["cluster"]
        self.assertIn("controller", json.dumps(cluster))
        code, body = await daemon.call("GET", "/config/node/node001", token=token)
        self.assertEqual(code, 404)
        self.assertIn("node001", body["message"])
        code, body = await daemon.call(
            "POST",
            "/config/network/lan",
            {"config": {"network": {"lan": {"network": "192.168.50.0/24"}}}},
            token=token,
        )
        self.assertEqual(code, 201, body)

    async def test_keyfile_created_0600(self) -> None:
        """On first start the missing KEYFILE (and its folder) is created with
        mode 0600 even under a umask of 0, and a restart reuses it unchanged."""
        daemon = Daemon(self)
        self.assertFalse(daemon.keyfile.exists())
        await daemon.start(umask=0)
        mode = stat.S_IMODE(daemon.keyfile.stat().st_mode)
        self.assertEqual(mode, 0o600, oct(mode))
        key = daemon.keyfile.read_bytes()
        await daemon.stop()
        await daemon.start()
        self.assertEqual(daemon.keyfile.read_bytes(), key)
        self.assertEqual(stat.S_IMODE(daemon.keyfile.stat().st_mode), 0o600)

    async def test_sigterm_exits_cleanly_and_options_override_endpoint(self) -> None:
        """--port and --interface override the ini's ENDPOINT; SIGTERM stops the
        daemon cleanly (the orderly shutdown runs to its end, no traceback, no
        error status) and releases the port."""
        daemon = Daemon(self)
        ini_port = daemon.port
        daemon.port = free_port()
        await daemon.start("--port", str(daemon.port), "--interface", "127.0.0.1")
        self.assertNotEqual(ini_port, daemon.port)
        token = await daemon.token()
        code, _ = await daemon.call(
            "POST",
            "/config/node/sigterm01",
            node_body("sigterm01", {"group": "compute"}),
            token=token,
        )
        self.assertEqual(code, 201)
        # Nothing listens on the ini's port.
        with self.assertRaises(ConnectError):
            await treq.get(f"http://127.0.0.1:{ini_port}/version", pool=daemon.pool, timeout=2)

        reason = await daemon.stop("TERM")
        assert_clean_exit(self, reason, daemon.output())
        with self.assertRaises(ConnectError):
            await treq.get(daemon.url + "/version", pool=daemon.pool, timeout=2)


class RoundTripTests(DaemonCase):
    async def test_create_update_rename_delete(self) -> None:
        """Over real HTTP: POST creates a node (201, addresses on every group
        network), an update changes it (204), a rename moves it with its
        addresses (204, the old name 404), a delete removes it (204, then 404);
        writes without a token are 401 and errors are JSON messages."""
        daemon = Daemon(self)
        await daemon.start()
        token = await daemon.token()

        code, body = await daemon.call(
            "POST", "/config/node/rt01", node_body("rt01", {"group": "compute"})
        )
        self.assertEqual(code, 401)
        self.assertIn("message", body)

        code, body = await daemon.call(
            "POST",
            "/config/node/rt01",
            node_body("rt01", {"group": "compute", "comment": "first"}),
            token=token,
        )
        self.assertEqual(code, 201, body)
        self.assertIn("message", body)
        node = (await daemon.get("/config/node/rt01", token))["config"]["node"]["rt01"]
        self.assertEqual(node["comment"], "first")
        addresses = {i["interface"]: i["ipaddress"] for i in node["interfaces"]}
        self.assertEqual(set(addresses), NODE_INTERFACES)
        self.assertTrue(all(addresses.values()), addresses)

        code, body = await daemon.call(
            "POST",
            "/config/node/rt01",
            node_body(
                "rt01", {"comment": "second", "vendor": "acme", "macaddr": "52:54:00:12:34:56"}
            ),
            token=token,
        )
        self.assertEqual((code, body), (204, None))
        node = (await daemon.get("/config/node/rt01", token))["config"]["node"]["rt01"]
        self.assertEqual(
            (node["comment"], node["vendor"], node["macaddr"]),
            ("second", "acme", "52:54:00:12:34:56"),
        )

        code, body = await daemon.call(
            "POST", "/config/node/rt01", node_body("rt01", {"newhostname": "rt02"}), token=token
        )
        self.assertEqual((code, body), (204, None))
        code, body = await daemon.call("GET", "/config/node/rt01", token=token)
        self.assertEqual(code, 404)
        self.assertIn("rt01", body["message"])
        node = (await daemon.get("/config/node/rt02", token))["config"]["node"]["rt02"]
        self.assertEqual(node["comment"], "second")
        self.assertEqual({i["interface"]: i["ipaddress"] for i in node["interfaces"]}, addresses)
        members = await daemon.get("/config/group/compute/_list", token)
        self.assertIn("rt02", members["config"]["group"]["compute"]["members"])

        code, body = await daemon.call(
            "POST", "/config/node/rt02", node_body("rt02", {"group": "nosuchgroup"}), token=token
        )
        self.assertEqual(code, 400)
        self.assertIn("group", body["message"])

        code, body = await daemon.call("GET", "/config/node/rt02/_delete", token=token)
        self.assertEqual((code, body), (204, None))
        code, body = await daemon.call("GET", "/config/node/rt02", token=token)
        self.assertEqual(code, 404)
        nodes = (await daemon.get("/config/node", token))["config"]["node"]
        self.assertEqual(sorted(nodes), SAMPLE_NODES)
        # The freed addresses are handed out again.
        code, _ = await daemon.call(
            "POST", "/config/node/rt03", node_body("rt03", {"group": "compute"}), token=token
        )
        self.assertEqual(code, 201)
        node = (await daemon.get("/config/node/rt03", token))["config"]["node"]["rt03"]
        self.assertEqual({i["interface"]: i["ipaddress"] for i in node["interfaces"]}, addresses)


# The states a node in the kill test goes through, one write each.
ABSENT, CREATED, UPDATED = "absent", "created", "updated"


def _plan(index: int) -> list[tuple[str, str, dict | None, str]]:
    """(method, path, body, state after) of each write made to node ``index``."""
    name = f"k{index:03d}"
    steps: list[tuple[str, str, dict | None, str]] = [
        (
            "POST",
            f"/config/node/{name}",
            node_body(name, {"group": "compute", "comment": f"create {index}"}),
            CREATED,
        ),
        (
            "POST",
            f"/config/node/{name}",
            node_body(
                name, {"comment": f"update {index}", "vendor": "acme", "assettag": f"tag-{index}"}
            ),
            UPDATED,
        ),
    ]
    if index % 5 == 4:
        steps.append(("GET", f"/config/node/{name}/_delete", None, ABSENT))
    return steps


def _observed(index: int, node: dict | None) -> str:
    """Which of the planned states ``node`` is in, or a description of a torn one."""
    if node is None:
        return ABSENT
    fields = (node.get("comment"), node.get("vendor"), node.get("assettag"))
    interfaces = {i["interface"]: i.get("ipaddress") for i in node.get("interfaces", [])}
    if set(interfaces) != NODE_INTERFACES or not all(interfaces.values()):
        return f"torn: interfaces {interfaces}"
    if fields == (f"create {index}", None, None):
        return CREATED
    if fields == (f"update {index}", "acme", f"tag-{index}"):
        return UPDATED
    return f"torn: comment/vendor/assettag {fields}"


class BodyLimitTests(DaemonCase):
    async def test_oversized_bodies_are_dropped_not_kept(self) -> None:
        """curl POSTs a body one byte over 64 MiB: without a token it is
        refused 401 from its headers (the token is checked before the
        body); with an admin token it is 413 with the JSON message, once
        with Content-Length and once chunked. The daemon's memory does not
        grow by the body's size, and it goes on serving; a body at the
        limit still reaches the JSON parser (400: it is not JSON)."""
        daemon = Daemon(self)
        await daemon.start()
        token = await daemon.token()
        folder = Path(self.mktemp())
        folder.mkdir(parents=True)
        limit = 64 * 1024 * 1024
        big, exact = folder / "big.json", folder / "exact.json"
        with big.open("wb") as handle:
            handle.truncate(limit + 1)
        with exact.open("wb") as handle:
            handle.truncate(limit)
        rss_before = _rss_kib(daemon.process.pid)

        async def curl(path: Path, *extra: str) -> tuple[str, str]:
            url = f"{daemon.url}/config/node/node001"
            code, status, text, err = await curl_post(url, path, *extra)
            self.assertEqual(code, 0, err)
            return status, text

        status, text = await curl(big)
        self.assertEqual(status, "401", text)
        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            status, text = await curl(big, "-H", f"x-access-tokens: {token}", *extra)
            self.assertEqual(status, "413", text)
            self.assertEqual(json.loads(text), {"message": "request body is larger than 64 MiB"})
        self.assertLess(
            _rss_kib(daemon.process.pid) - rss_before, 32 * 1024, "the body was kept in memory"
        )
        status, text = await curl(exact, "-H", f"x-access-tokens: {token}")
        self.assertEqual(status, "400", text)
        self.assertIn("not valid JSON", json.loads(text)["message"])
        code, body = await daemon.call("GET", "/version")
        self.assertEqual(code, 200, body)


def _rss_kib(pid: int) -> int:
    """A process's resident memory in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class DurabilityTests(DaemonCase):
    NODES = 200
    WORKERS = 8

    async def test_sigkill_keeps_every_acknowledged_write(self) -> None:
        """Up to 200 node creates, updates and some deletes run over 8 concurrent
        connections; SIGKILL hits the daemon at a random moment while writes
        are in flight. After a restart on the same database every acknowledged
        write is there, each unacknowledged one is either wholly applied or
        wholly absent (never a node without its addresses or half an update),
        untouched names do not exist, no address is held twice, and the daemon
        takes new writes."""
        reactor = the_reactor()
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        total_writes = sum(len(_plan(i)) for i in range(self.NODES))
        kill_after = rng.randrange(40, int(total_writes * 0.8))
        kill_delay = rng.uniform(0, 0.03)
        where = f"(seed {seed}, SIGKILL after {kill_after} acks + {kill_delay:.3f} s)"

        daemon = Daemon(self)
        await daemon.start()
        token = await daemon.token()

        acked: dict[int, str] = {}  # node index -> state of its last acknowledged write
        pending: dict[int, str] = {}  # node index -> state its unanswered write would give
        touched: set[int] = set()
        errors: list[str] = []
        state = {"acks": 0, "killed": False, "kill": None}
        indices = iter(range(self.NODES))

        def kill() -> None:
            state["killed"] = True
            daemon.process.signalProcess("KILL")

        async def worker() -> None:
            for index in indices:
                for method, path, body, after in _plan(index):
                    if state["killed"]:
                        return
                    touched.add(index)
                    pending[index] = after
                    try:
                        code, answer = await daemon.call(method, path, body, token=token)
                    except Exception as exc:  # noqa: BLE001 - any failure after the kill is expected
                        if not state["killed"]:
                            errors.append(f"{method} {path}: {exc!r} before the kill")
                        return  # the daemon died under this request: unacknowledged
                    if code not in (201, 204):
                        errors.append(f"{method} {path}: {code} {answer}")
                        return
                    del pending[index]
                    acked[index] = after
                    state["acks"] += 1
                    if state["acks"] == kill_after:
                        state["kill"] = reactor.callLater(kill_delay, kill)

        ended = daemon.capture.when_ended()
        await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(self.WORKERS)])
        self.assertEqual(errors, [], where)
        if not state["killed"]:
            # Every write finished before the kill was due: kill now (the
            # random point was past the end); still a valid durability check.
            if state["kill"] is not None and state["kill"].active():
                state["kill"].cancel()
            kill()
        reason = await ended
        self.assertTrue(pending, f"{where}: no write was in flight at the kill")
        self.assertIsInstance(reason, ProcessTerminated, where)
        self.assertEqual(reason.signal, signal.SIGKILL, f"{where} {reason}")
        self.assertTrue(daemon.database.is_file())

        await daemon.start()
        token = await daemon.token()
        nodes = (await daemon.get("/config/node", token))["config"]["node"]
        problems = []
        for index in range(self.NODES):
            name = f"k{index:03d}"
            seen = _observed(index, nodes.get(name))
            allowed = {acked.get(index, ABSENT)}
            if index in pending:
                allowed.add(pending[index])
            if seen not in allowed:
                problems.append(
                    f"{name}: found {seen}, acknowledged {acked.get(index, ABSENT)}, "
                    f"in flight {pending.get(index)}"
                )
        self.assertEqual(problems, [], where)
        applied = sum(
            1
            for i, after in pending.items()
            if _observed(i, nodes.get(f"k{i:03d}")) == after != ABSENT
        )
        log.msg(
            f"kill test {where}: {state['acks']} writes acknowledged, {len(pending)} in flight "
            "at the kill, "
            f"{applied} of those found applied, {len(touched)} nodes touched"
        )
        self.assertEqual(
            set(nodes) - {f"k{i:03d}" for i in range(self.NODES)}, set(SAMPLE_NODES), where
        )
        self.assertGreaterEqual(len(acked), 1, where)

        holders: dict[str, str] = {}
        for name, node in nodes.items():
            for interface in node["interfaces"]:
                ip = interface["ipaddress"]
                self.assertNotIn(ip, holders, f"{where}: {ip} held by {holders.get(ip)} and {name}")
                holders[ip] = name

        code, body = await daemon.call(
            "POST",
            "/config/node/after-kill",
            node_body("after-kill", {"group": "compute"}),
            token=token,
        )
        self.assertEqual(code, 201, body)
        node = (await daemon.get("/config/node/after-kill", token))["config"]["node"]["after-kill"]
        for interface in node["interfaces"]:
            self.assertNotIn(interface["ipaddress"], holders, where)
        # The restarted daemon (run 2) stops cleanly; run 1 was SIGKILLed.
        assert_clean_exit(self, await daemon.stop("TERM"), daemon.output(first_run=2))

    async def test_restart_loses_nothing_and_does_not_reseed(self) -> None:
        """Changes made over HTTP (a deleted and a renamed sample node, a new
        node, a cluster setting, a store user) survive a SIGTERM restart
        exactly: the listings read back identical, the deleted sample node
        does not come back, and the store user can still log in."""
        daemon = Daemon(self)
        await daemon.start()
        token = await daemon.token()
        writes = [
            ("GET", "/config/node/node004/_delete", None, 204),
            ("POST", "/config/node/node003", node_body("node003", {"newhostname": "gpu003"}), 204),
            (
                "POST",
                "/config/node/extra01",
                node_body("extra01", {"group": "compute", "comment": "kept"}),
                201,
            ),
            (
                "POST",
                "/config/cluster",
                {"config": {"cluster": {"technical_contacts": "ops@example.org"}}},
                204,
            ),
            (
                "POST",
                "/config/user/viewer",
                {
                    "config": {
                        "user": {"viewer": {"password": "viewer-password", "role": "readonly"}}
                    }
                },
                201,
            ),
        ]
        for method, path, body, expected in writes:
            code, answer = await daemon.call(method, path, body, token=token)
            self.assertEqual(code, expected, f"{method} {path}: {answer}")

        kinds = ("node", "group", "network", "osimage", "bmcsetup", "user")

        async def snapshot() -> dict:
            out = {kind: await daemon.get(f"/config/{kind}", token) for kind in kinds}
            out["cluster"] = await daemon.get("/config/cluster", token)
            return out

        before = await snapshot()
        self.assertEqual(
            sorted(before["node"]["config"]["node"]), ["extra01", "gpu003", "node001", "node002"]
        )
        assert_clean_exit(self, await daemon.stop("TERM"), daemon.output())

        await daemon.start()
        token = await daemon.token()
        after = await snapshot()
        for key in before:
            self.assertEqual(after[key], before[key], key)
        code, _ = await daemon.call("GET", "/config/node/node004", token=token)
        self.assertEqual(code, 404)
        await daemon.token("viewer", "viewer-password")
        self.assertEqual(
            after["cluster"]["config"]["cluster"]["technical_contacts"], "ops@example.org"
        )


class BadStartTests(DaemonCase):
    async def _twistd(self, args: list[str], cwd: Path) -> tuple[int, str]:
        out, err, code = await getProcessOutputAndValue(
            TWISTD, args, env=dict(os.environ), path=str(cwd)
        )
        return code, (out + err).decode("utf-8", "replace")

    async def test_bad_options_and_broken_ini(self) -> None:
        """Each broken start (missing ini, missing [API] USERNAME, EXPIRY=abc,
        an unknown key, an unparsable ini, a short SECRET_KEY, a bad --port,
        an unknown option, an unusable key file, a database file that is not
        SQLite or cannot be opened, a port already taken) makes twistd exit
        non-zero with a message naming the key or the problem and no Python
        traceback; an ini that does not load creates no files."""
        reactor = the_reactor()
        folder = make_folder(self)
        taken = reactor.listenTCP(
            0, protocol.Factory.forProtocol(protocol.Protocol), interface="127.0.0.1"
        )
        self.addCleanup(taken.stopListening)

        def case(
            name: str, ini: str | None, extra: tuple[str, ...] = (), setup: Any = None
        ) -> Path:
            where = folder / name
            where.mkdir()
            (where / "var").mkdir()
            if ini is not None:
                (where / "luna.ini").write_text(ini)
            if setup is not None:
                setup(where)
            return where

        port = free_port()
        good = ini_text(port)
        cases = [
            (case("missing", None), (), ["does not exist", "luna.ini"]),
            (case("nousername", ini_text(port, username=None)), (), ["[API] USERNAME", "missing"]),
            (case("expiry", ini_text(port, expiry="abc")), (), ["[API] EXPIRY", "'abc'"]),
            (
                case("unknown", ini_text(port, api_extra="COLOUR = blue\n")),
                (),
                ["[API] COLOUR", "unknown key"],
            ),
            (case("unparsable", "USERNAME = luna\n" + good), (), ["cannot parse"]),
            (case("shortsecret", good.replace(SECRET, "short")), (), ["[API] SECRET_KEY"]),
            (case("badport", good), ("--port", "notaport"), ["--port", "notaport"]),
            (case("badoption", good), ("--frobnicate",), ["--frobnicate"]),
            (
                case(
                    "badkey",
                    good,
                    setup=lambda w: (w / "var" / "luna.key").write_text("not a key\n"),
                ),
                (),
                ["[FILES] KEYFILE"],
            ),
            (
                case(
                    "notsqlite",
                    good,
                    setup=lambda w: (w / "var" / "luna.db").write_bytes(os.urandom(8192)),
                ),
                (),
                ["[DATABASE] DATABASE"],
            ),
            (
                case("dbisdir", good, setup=lambda w: (w / "var" / "luna.db").mkdir()),
                (),
                ["[DATABASE] DATABASE"],
            ),
            (
                case("porttaken", ini_text(taken.getHost().port)),
                (),
                ["cannot listen", str(taken.getHost().port)],
            ),
        ]
        limit = defer.DeferredSemaphore(4)

        async def one(where: Path, extra: tuple[str, ...], expected: list[str]) -> str | None:
            args = twistd_args(where / "luna.ini", *extra)
            code, text = await limit.run(lambda: defer.ensureDeferred(self._twistd(args, where)))
            problems = []
            if code == 0:
                problems.append("exit status 0")
            if "Traceback" in text:
                problems.append("a traceback")
            problems += [f"no {word!r}" for word in expected if word not in text]
            return f"{where.name}: {', '.join(problems)}\n{text}" if problems else None

        results = await defer.gatherResults([defer.ensureDeferred(one(*c)) for c in cases])
        self.assertEqual([r for r in results if r], [])
        # An ini that does not load creates nothing: no database, no key file.
        for name in (
            "nousername",
            "expiry",
            "unknown",
            "unparsable",
            "shortsecret",
            "badport",
            "badoption",
        ):
            self.assertEqual(sorted(p.name for p in (folder / name / "var").iterdir()), [], name)

    async def test_plugin_help_lists_config(self) -> None:
        """The quick start's pieces are in place: scripts/start is an executable
        that runs ``twistd ... luna2d --config``, and ``twistd luna2d --help``
        finds the plugin and lists --config, --port and --interface."""
        start = REPO / "scripts" / "start"
        self.assertTrue(start.is_file())
        self.assertTrue(os.access(start, os.X_OK))
        script = start.read_text()
        self.assertIn("twistd", script)
        self.assertIn("luna2d --config", script)
        code, text = await self._twistd(["luna2d", "--help"], make_folder(self))
        self.assertEqual(code, 0, text)
        for option in ("--config", "--port", "--interface"):
            self.assertIn(option, text)
        self.assertNotIn("Traceback", text)
