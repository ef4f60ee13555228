"""The control API end to end: the whole HTTP API (root resource, auth, the
store on a real SQLite file) served on a loopback port, a real IPMI client,
and nodes whose BMC interfaces point at several OpenIPMI ipmi_sim processes;
requests go over real HTTP with treq. Single-node GETs and hostlist POSTs
for power, identify and SEL; results grouped and compressed to hostlists;
a dead BMC and a wrong password failing alone with their reasons;
credentials from the node's bmcsetup before its group's; 401, 403, 404, 400,
405 and 503 as docs/API.md says. One more test runs the real daemon
(``twistd luna2d``) to prove tap.py hands the client to /control."""

from __future__ import annotations

import json
from typing import Any

import treq
from twisted.internet.task import deferLater
from twisted.web.client import HTTPConnectionPool
from twisted.web.server import Site

from luna2d.config import APIConfig
from luna2d.ipmi.client import IPMIClient
from luna2d.resources.auth import Auth
from luna2d.resources.root import Guard, RootAPI
from tests.integration.test_daemon import ADMIN as DAEMON_ADMIN
from tests.integration.test_daemon import PASSWORD as DAEMON_PASSWORD
from tests.integration.test_daemon import Daemon
from tests.ipmi.support import Simulator, free_subnet
from tests.support import ADMIN, PASSWORD, SECRET, ReactorCase, open_store, the_reactor

SIM_USER, SIM_PASSWORD = "luna", "bmc-pass-1"


class Cluster:
    """luna2d's HTTP API on a loopback port with a real IPMI client."""

    def __init__(self, case: ReactorCase, ipmi: bool = True, wait: float | None = None) -> None:
        self.case = case
        reactor = the_reactor()
        self.store, _ = open_store(clock=reactor)
        self.auth = Auth(
            APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0), self.store, reactor
        )
        self.ipmi = IPMIClient(reactor, timeout=0.4, retries=1) if ipmi else None
        if self.ipmi is not None:
            case.addCleanup(self.ipmi.stop)
        self.root = RootAPI(self.store, self.auth, ADMIN, ipmi=self.ipmi)
        if wait is not None:
            self.root.control.wait = wait
        site = Site(Guard(self.root.app.resource()))
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        case.addCleanup(self.port.stopListening)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.admin = self.auth.issue(ADMIN, "admin")
        self.prefix = free_subnet()

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None | bool = True
    ) -> tuple[int, Any]:
        """(status, parsed JSON or None) of one request; token True means the admin token."""
        if token is True:
            token = self.admin
        headers: Any = {b"x-access-tokens": [token.encode()]} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        url = f"http://127.0.0.1:{self.port.getHost().port}{path}"
        response = await treq.request(
            method, url, data=data, headers=headers, pool=self.pool, timeout=20
        )
        content = await response.content()
        return response.code, json.loads(content) if content else None

    async def setup(self) -> None:
        """The sample cluster's BMC network moved onto loopback, and the group's
        bmcsetup given the simulators' user."""
        code, _ = await self.call(
            "POST",
            "/config/network/bmcnet",
            {"config": {"network": {"bmcnet": {"network": f"{self.prefix}.0/24"}}}},
        )
        assert code == 201, code
        code, _ = await self.call(
            "POST",
            "/config/bmcsetup/compute",
            {"config": {"bmcsetup": {"compute": {"username": SIM_USER, "password": SIM_PASSWORD}}}},
        )
        assert code == 204, code

    async def readonly_token(self) -> str:
        """The readonly user ``viewer``, made over HTTP, and a token of it."""
        await self.call(
            "POST",
            "/config/user/viewer",
            {"config": {"user": {"viewer": {"password": "viewer-pw", "role": "readonly"}}}},
        )
        return self.auth.issue("viewer", "readonly")

    async def bmc_at(self, node: str, host: str) -> None:
        """Point the node's BMC interface at ``host`` on the BMC network."""
        body = {
            "config": {
                "node": {
                    node: {
                        "interfaces": [{"interface": "BMC", "network": "bmcnet", "ipaddress": host}]
                    }
                }
            }
        }
        code, answer = await self.call("POST", f"/config/node/{node}/interfaces", body)
        assert code in (201, 204), (code, answer)

    async def simulators(self, powers: list[bool]) -> list[Simulator]:
        """One ipmi_sim per node (node001, node002, ...) with the given power."""
        sims = []
        for number, power in enumerate(powers, start=1):
            sim = await Simulator(
                self.case,
                users=[(SIM_USER, SIM_PASSWORD)],
                power=power,
                host=f"{self.prefix}.{9 + number}",
            ).start()
            await self.bmc_at(f"node{number:03d}", sim.host)
            sims.append(sim)
        return sims


def bulk(command: str, action: str, hosts: str) -> dict:
    """A control POST body for one command, action and hostlist."""
    return {"control": {command: {action: {"hostlist": hosts}}}}


class SingleNodeTests(ReactorCase):
    async def test_power_identify_sel(self) -> None:
        """GET status answers the state (200); on, identify, noidentify and
        clear answer 204 and reach the simulator; sel list answers the lines."""
        cluster = Cluster(self)
        await cluster.setup()
        (sim,) = await cluster.simulators([False])
        base = "/control/action"
        self.assertEqual(
            await cluster.call("GET", f"{base}/power/node001/_status"),
            (200, {"control": {"power": "off", "status": "off"}}),
        )
        self.assertEqual(await cluster.call("GET", f"{base}/power/node001/_on"), (204, None))
        self.assertEqual(sim.power, "1")
        self.assertEqual(
            await cluster.call("GET", f"{base}/power/node001/_status"),
            (200, {"control": {"power": "on", "status": "on"}}),
        )
        self.assertEqual(
            await cluster.call("GET", f"{base}/chassis/node001/_identify"), (204, None)
        )
        self.assertEqual(
            await cluster.call("GET", f"{base}/chassis/node001/_noidentify"), (204, None)
        )
        code, body = await cluster.call("GET", f"{base}/sel/node001/_list")
        self.assertEqual(code, 200)
        self.assertEqual(
            [line.split(" | ")[2:] for line in body["control"]["sel"].split(";;")],
            [
                ["Temperature #0x01", "Upper Non-critical going high", "Asserted"],
                ["Processor #0x10", "Thermal Trip", "Asserted"],
            ],
        )
        self.assertEqual(await cluster.call("GET", f"{base}/sel/node001/_clear"), (204, None))
        self.assertEqual(
            await cluster.call("GET", f"{base}/sel/node001/_list"), (200, {"control": {"sel": ""}})
        )
        self.assertEqual(sim.sets, ["set power 1", "set identify 0 1", "set identify 0 0"])

    async def test_failures(self) -> None:
        """A BMC that does not answer, and a node without a BMC address,
        answer 500 with the node and the reason; an interface named ``bmc``
        counts as the BMC, as it does for the install script."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.bmc_at("node001", f"{cluster.prefix}.19")  # nothing listens there
        code, body = await cluster.call("GET", "/control/action/power/node001/_status")
        self.assertEqual(code, 500)
        self.assertEqual(
            body["message"], "node001: timeout: no answer from the BMC (2 tries, 0.4 s each)"
        )
        code, _ = await cluster.call("GET", "/config/node/node002/interfaces/BMC/_delete")
        self.assertEqual(code, 204)
        code, body = await cluster.call("GET", "/control/action/power/node002/_on")
        self.assertEqual(code, 500)
        self.assertIn("node002 has no 'BMC' interface", body["message"])
        body = {
            "config": {
                "node": {
                    "node002": {
                        "interfaces": [
                            {
                                "interface": "bmc",
                                "network": "bmcnet",
                                "ipaddress": f"{cluster.prefix}.18",
                            }
                        ]
                    }
                }
            }
        }
        code, answer = await cluster.call("POST", "/config/node/node002/interfaces", body)
        self.assertIn(code, (201, 204), answer)
        code, body = await cluster.call("GET", "/control/action/power/node002/_on")
        self.assertEqual(
            (code, body["message"]),
            (500, "node002: timeout: no answer from the BMC (2 tries, 0.4 s each)"),
        )


class BulkTests(ReactorCase):
    async def test_status_grouped(self) -> None:
        """POST power _status over node[001-004]: two simulators on, one off,
        one dead BMC; the answer groups them as hostlists, the dead one under
        failed with its reason, in about one timeout; no BMC was told to change anything."""
        cluster = Cluster(self)
        await cluster.setup()
        sims = await cluster.simulators([True, False, True])
        await cluster.bmc_at("node004", f"{cluster.prefix}.19")
        reactor = the_reactor()
        started = reactor.seconds()
        code, body = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node[001-004]")
        )
        self.assertLess(reactor.seconds() - started, 2.5)
        self.assertEqual(code, 200)
        request_id = body.pop("request_id")
        self.assertRegex(request_id, "^[0-9a-f]{32}$")
        reason = "timeout: no answer from the BMC (2 tries, 0.4 s each)"
        self.assertEqual(
            body,
            {
                "control": {
                    "power": {"on": {"node001": "on", "node003": "on"}, "off": {"node002": "off"}},
                    "failed": {"node004": reason},
                    "hostlist": {"on": "node[001,003]", "off": "node002", "failed": "node004"},
                },
                "progress": {"done": 4, "total": 4, "finished": True},
            },
        )
        # Everything was handed over in the POST: the clients' first poll ends it.
        code, body = await cluster.call("GET", f"/control/status/{request_id}")
        self.assertEqual(code, 404, body)
        self.assertIn("every result was handed over", body["message"])
        self.assertEqual([sim.sets for sim in sims], [[], [], []])

    async def test_power_on_with_credentials_per_node(self) -> None:
        """POST power _on: node002's own bmcsetup (another user on its BMC)
        wins over the group's; node003's own bmcsetup has a wrong password
        and fails alone as unauthorized. Each simulator saw exactly the calls
        meant for it."""
        cluster = Cluster(self)
        await cluster.setup()
        sims = await cluster.simulators([False, False, False])
        second = Simulator(self, users=[("other", "other-pw")], host=f"{cluster.prefix}.18")
        await second.start()
        await cluster.bmc_at("node002", second.host)
        for name, user, password in (("own", "other", "other-pw"), ("bad", SIM_USER, "wrong")):
            code, _ = await cluster.call(
                "POST",
                f"/config/bmcsetup/{name}",
                {"config": {"bmcsetup": {name: {"username": user, "password": password}}}},
            )
            self.assertEqual(code, 201)
        await cluster.call(
            "POST", "/config/node/node002", {"config": {"node": {"node002": {"bmcsetup": "own"}}}}
        )
        await cluster.call(
            "POST", "/config/node/node003", {"config": {"node": {"node003": {"bmcsetup": "bad"}}}}
        )
        code, body = await cluster.call(
            "POST", "/control/action/power/_on", bulk("power", "on", "node[001-003]")
        )
        self.assertEqual(code, 200)
        control = body["control"]
        self.assertEqual(control["power"], {"ok": {"node001": "power on", "node002": "power on"}})
        self.assertEqual(control["hostlist"], {"ok": "node[001-002]", "failed": "node003"})
        self.assertEqual(list(control["failed"]), ["node003"])
        self.assertTrue(control["failed"]["node003"].startswith("unauthorized: "))
        self.assertEqual((sims[0].power, second.power, sims[2].power), ("1", "1", "0"))
        # The request finished only once the powered-on nodes got their install grant.
        arm = (await cluster.call("GET", "/config/node/node001/_arm"))[1]["config"]["node"][
            "node001"
        ]
        self.assertEqual(arm["install_grant"], "power")
        self.assertEqual(
            [sims[0].sets, second.sets, sims[1].sets, sims[2].sets],
            [["set power 1"], ["set power 1"], [], []],
        )

    async def test_identify_and_sel(self) -> None:
        """Chassis identify and SEL list over a hostlist group successes under
        ok; SEL list adds each node's entries."""
        cluster = Cluster(self)
        await cluster.setup()
        sims = await cluster.simulators([False, False])
        code, body = await cluster.call(
            "POST",
            "/control/action/chassis/_identify",
            bulk("chassis", "identify", "node001,node002"),
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            body["control"],
            {
                "chassis": {"ok": {"node001": "chassis identify", "node002": "chassis identify"}},
                "failed": {},
                "hostlist": {"ok": "node[001-002]"},
            },
        )
        self.assertEqual([sim.sets for sim in sims], [["set identify 0 1"]] * 2)
        code, body = await cluster.call(
            "POST", "/control/action/sel/_list", bulk("sel", "list", "node[001-002]")
        )
        self.assertEqual(code, 200)
        control = body["control"]
        self.assertEqual(sorted(control["sel"]["ok"]), ["node001", "node002"])
        self.assertEqual(control["hostlist"], {"ok": "node[001-002]"})
        self.assertEqual(
            {node: len(lines) for node, lines in control["entries"].items()},
            {"node001": 2, "node002": 2},
        )


async def poll(
    cluster: Cluster, request_id: str, token: str | None | bool = True
) -> list[tuple[int, Any]]:
    """GET /control/status/<id> every 0.2 s until it answers anything but
    200, as lpower and the luna CLI do (at most 60 looks): every answer."""
    answers = []
    for _ in range(60):
        await deferLater(the_reactor(), 0.2, lambda: None)
        code, body = await cluster.call("GET", f"/control/status/{request_id}", token=token)
        answers.append((code, body))
        if code != 200:
            return answers
    raise AssertionError(f"still 200 after 60 looks: {answers[-1]}")


class AsyncTests(ReactorCase):
    async def test_late_results_polled(self) -> None:
        """A POST that waits 0.1 s answers before the dead BMC of node003
        times out (0.8 s): it has a request_id and is not finished; polling
        /control/status hands over the rest, each node exactly once, the
        last 200 says finished with node003 failed, and the next look is 404."""
        cluster = Cluster(self, wait=0.1)
        await cluster.setup()
        await cluster.simulators([True, False])
        await cluster.bmc_at("node003", f"{cluster.prefix}.19")
        code, first = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node[001-003]")
        )
        self.assertEqual(code, 200)
        self.assertEqual(first["progress"]["total"], 3)
        self.assertFalse(first["progress"]["finished"])
        self.assertNotIn("node003", first["control"]["failed"])
        answers = await poll(cluster, first["request_id"])
        self.assertEqual(answers[-1][0], 404)
        looks = [first] + [body for _, body in answers[:-1]]
        self.assertTrue(looks[-1]["progress"] == {"done": 3, "total": 3, "finished": True})
        self.assertTrue(all(not body["progress"]["finished"] for body in looks[:-1]))
        seen: list[tuple[str, str]] = []
        for body in looks:
            self.assertEqual(body["request_id"], first["request_id"])
            for bucket, nodes in body["control"]["power"].items():
                seen += [(node, bucket) for node in nodes]
            seen += [(node, "failed") for node in body["control"]["failed"]]
        self.assertEqual(
            sorted(seen), [("node001", "on"), ("node002", "off"), ("node003", "failed")]
        )
        self.assertEqual(
            looks[-1]["control"]["failed"],
            {"node003": "timeout: no answer from the BMC (2 tries, 0.4 s each)"},
        )

    async def test_status_refusals(self) -> None:
        """/control/status needs an admin token (401 without, 403 readonly,
        and a refused look hands nothing over); an unknown id and a control
        id asked at /config/status are 404 with a message; a full request
        table refuses a new bulk request with 503."""
        cluster = Cluster(self, wait=0.05)
        await cluster.setup()
        await cluster.bmc_at("node001", f"{cluster.prefix}.19")
        readonly = await cluster.readonly_token()
        code, first = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node001")
        )
        self.assertEqual((code, first["control"]["failed"]), (200, {}))
        request_id = first["request_id"]
        self.assertEqual(
            (await cluster.call("GET", f"/control/status/{request_id}", token=None))[0], 401
        )
        self.assertEqual(
            (await cluster.call("GET", f"/control/status/{request_id}", token=readonly))[0], 403
        )
        code, body = await cluster.call("GET", f"/config/status/{request_id}")
        self.assertEqual(code, 404)
        self.assertIn("no config request", body["message"])
        code, body = await cluster.call("GET", "/control/status/0")
        self.assertEqual((code, body["message"][:23]), (404, "no control request '0':"))
        # While it runs, a table bound of one request refuses another (503).
        cluster.root.requests.max_requests = 1
        code, body = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node002")
        )
        self.assertEqual(
            (code, body["message"]),
            (
                503,
                "1 requests are running, the most luna2d tracks at once; try again when some "
                + "have finished",
            ),
        )
        answers = await poll(cluster, request_id)
        self.assertEqual([code for code, _ in answers][-1], 404)
        failed = {
            node: reason
            for _, body in answers[:-1]
            for node, reason in body["control"]["failed"].items()
        }
        self.assertEqual(list(failed), ["node001"])


class RefusalTests(ReactorCase):
    async def test_status_codes(self) -> None:
        """401 without a token, 403 for readonly tokens on actions that change
        state and on every POST, 404 for unknown actions and for an unknown
        node by GET (named), 400 for bad hostlists and bodies, 405 for other
        methods; unknown nodes in a hostlist fail alone (200)."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.bmc_at("node001", f"{cluster.prefix}.19")
        readonly = await cluster.readonly_token()
        node_token = cluster.auth.issue("node001", "node", node="node001")
        base = "/control/action"
        cases = [
            ("GET", f"{base}/power/node001/_status", None, None, 401),
            ("POST", f"{base}/power/_status", bulk("power", "status", "node001"), None, 401),
            ("GET", f"{base}/power/node001/_on", None, readonly, 403),
            ("GET", f"{base}/sel/node001/_clear", None, readonly, 403),
            ("POST", f"{base}/power/_status", bulk("power", "status", "node001"), readonly, 403),
            ("GET", f"{base}/power/node001/_status", None, node_token, 403),
            ("GET", f"{base}/power/node999/_status", None, True, 404),
            ("GET", f"{base}/power/node001/_explode", None, True, 404),
            ("GET", f"{base}/redfish/node001/_upload", None, True, 404),
            ("POST", f"{base}/power/_on", bulk("power", "on", "node[001-"), True, 400),
            ("POST", f"{base}/power/_on", bulk("power", "on", ""), True, 400),
            (
                "POST",
                f"{base}/power/_on",
                bulk("power", "on", "node[1-99999],n[1-99999]"),
                True,
                400,
            ),
            # 3,000 ranges of 90,000 names each: 270 million names, refused
            # before they are expanded (expanded whole, they would not fit
            # in memory and this test would time out).
            (
                "POST",
                f"{base}/power/_on",
                bulk("power", "on", ",".join(f"r{i}x[1-90000]" for i in range(3000))),
                True,
                400,
            ),
            # A range number of 5,000 digits: int() refuses it past 4,300 (it was a 500).
            (
                "POST",
                f"{base}/power/_on",
                bulk("power", "on", "node[1-" + "9" * 5000 + "]"),
                True,
                400,
            ),
            ("POST", f"{base}/power/_on", bulk("power", "on", "node" + "1" * 5000), True, 400),
            ("POST", f"{base}/power/_on", {"control": {"power": {"on": "node001"}}}, True, 400),
            ("POST", f"{base}/power/_on", {"control": {"power": "on"}}, True, 400),
            ("POST", f"{base}/power/_on", bulk("power", "off", "node001"), True, 400),
            (
                "POST",
                f"{base}/power/_on",
                {"control": {"power": {"on": {"hostlist": 5}}}},
                True,
                400,
            ),
            (
                "POST",
                f"{base}/power/_on",
                {"control": {"power": {"on": {"hostlist": "node001", "x": 1}}}},
                True,
                400,
            ),
            ("POST", f"{base}/power/_on", ["node001"], True, 400),
            ("PUT", f"{base}/power/node001/_on", None, True, 405),
            ("POST", f"{base}/power/node001/_on", {}, True, 405),
        ]
        for method, path, body, token, expected in cases:
            code, answer = await cluster.call(method, path, body, token)
            self.assertEqual(code, expected, f"{method} {path} {body}: {answer}")
            self.assertIsInstance(answer["message"], str)
        # Unknown nodes in a hostlist fail alone, under failed (the luna CLI
        # waits for ever on any answer but 200 to a bulk POST).
        code, answer = await cluster.call(
            "POST", f"{base}/power/_status", bulk("power", "status", "node[998-999]")
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            answer["control"]["failed"],
            {
                "node998": "error: node998 does not exist",
                "node999": "error: node999 does not exist",
            },
        )
        self.assertEqual(answer["control"]["hostlist"], {"failed": "node[998-999]"})
        code, answer = await cluster.call("GET", f"{base}/power/node001/_status", token=readonly)
        self.assertEqual(code, 500, "readonly may read the status (this BMC is dead)")

    async def test_without_client(self) -> None:
        """A luna2d without an IPMI client answers control actions 503 (after
        the token and the node are checked)."""
        cluster = Cluster(self, ipmi=False)
        self.assertEqual(
            (await cluster.call("GET", "/control/action/power/node001/_status"))[0], 503
        )
        self.assertEqual(
            (await cluster.call("GET", "/control/action/power/node009/_status"))[0], 404
        )
        self.assertEqual(
            (await cluster.call("GET", "/control/action/power/node001/_status", token=None))[0], 401
        )


class DaemonTests(ReactorCase):
    async def test_twistd_luna2d(self) -> None:
        """The real daemon: tap.py gives the API its IPMI client; power status
        and power on of a node whose BMC is an ipmi_sim work over HTTP; the
        ini's [CONTROL] timeout and retries decide when a dead BMC fails."""
        daemon = Daemon(self)
        daemon.ini.write_text(daemon.ini.read_text() + "\n[CONTROL]\nTIMEOUT = 0.3\nRETRIES = 0\n")
        await daemon.start()
        token = await daemon.token(DAEMON_ADMIN, DAEMON_PASSWORD)
        prefix = free_subnet()
        sim = await Simulator(self, users=[(SIM_USER, SIM_PASSWORD)], host=f"{prefix}.10").start()
        calls = [
            (
                "/config/network/bmcnet",
                {"config": {"network": {"bmcnet": {"network": f"{prefix}.0/24"}}}},
            ),
            (
                "/config/bmcsetup/compute",
                {
                    "config": {
                        "bmcsetup": {"compute": {"username": SIM_USER, "password": SIM_PASSWORD}}
                    }
                },
            ),
            (
                "/config/node/node001/interfaces",
                {
                    "config": {
                        "node": {
                            "node001": {
                                "interfaces": [
                                    {"interface": "BMC", "network": "bmcnet", "ipaddress": sim.host}
                                ]
                            }
                        }
                    }
                },
            ),
            (
                "/config/node/node002/interfaces",
                {
                    "config": {
                        "node": {
                            "node002": {
                                "interfaces": [
                                    {
                                        "interface": "BMC",
                                        "network": "bmcnet",
                                        "ipaddress": f"{prefix}.19",
                                    }
                                ]
                            }
                        }
                    }
                },
            ),
        ]
        for path, body in calls:
            code, answer = await daemon.call("POST", path, body, token)
            self.assertIn(code, (201, 204), answer)
        self.assertEqual(
            await daemon.call("GET", "/control/action/power/node001/_status", token=token),
            (200, {"control": {"power": "off", "status": "off"}}),
        )
        code, body = await daemon.call(
            "POST", "/control/action/power/_on", bulk("power", "on", "node001"), token
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            body["control"],
            {"power": {"ok": {"node001": "power on"}}, "failed": {}, "hostlist": {"ok": "node001"}},
        )
        self.assertEqual(
            (await daemon.call("GET", f"/control/status/{body['request_id']}", token=token))[0], 404
        )
        self.assertEqual(sim.power, "1")
        self.assertEqual(sim.sets, ["set power 1"])
        code, body = await daemon.call("GET", "/control/action/power/node002/_status", token=token)
        self.assertEqual(
            (code, body["message"]),
            (500, "node002: timeout: no answer from the BMC (1 try of 0.3 s)"),
        )
