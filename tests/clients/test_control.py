"""Contract tests: bulk control and request status as the unmodified
clients speak them, pinned from reading their code (the TrinityX ``luna``
CLI, ``luna control <command> <action> <node|hostlist>``, and luna2-utils'
``lpower``), written here in luna2d's own words.

What the clients send: one node goes as ``GET
/control/action/<command>/<node>/_<action>``; a hostlist as ``POST
/control/action/<command>/_<action>`` with ``{"control": {command: {action:
{"hostlist": "<as typed, or compressed>"}}}}``.

What they read back from a POST and from each ``GET
/control/status/<request_id>`` answering 200 (they poll every 2 s until
another code): ``request_id`` at the top; ``control.failed`` as
``{node: reason}``; ``control.<command>.<bucket>`` keyed by node, where
lpower prints ``node: <command> <action>`` for the bucket ``ok`` and
``node: <bucket>`` for any other, and the CLI shows ``OK``/``ON``/``OFF``
for those three buckets. The CLI reads every status answer as JSON, 404
included. The luna CLI polls ``/config/status/<id>`` of a pack or clone
likewise, reading ``message`` (lines joined by ``;;``) and ``status`` (an
integer; not 200 means failed).

The control tests run the real stack: luna2d's API on a loopback port, a
real IPMI client, OpenIPMI ipmi_sim BMCs (tests.ipmi.test_control.Cluster).
The /config/status test runs the resource tree through StubTreq on a Clock,
with a fake long job feeding the request table as osimage pack will."""

from __future__ import annotations

import json
import shutil
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.trial import unittest

from luna2d.ipmi.session import Success
from luna2d.requests import EXPIRY
from luna2d.resources.root import Guard, RootAPI
from tests.clients.support import HeldIPMICase
from tests.ipmi.test_control import Cluster, bulk, poll
from tests.support import ADMIN, API, ReactorCase, hash_inline

DEAD = "timeout: no answer from the BMC (2 tries, 0.4 s each)"


def lpower_lines(body: Any, subsystem: str, action: str) -> list[str]:
    """The lines lpower prints for one bulk answer: for every object at
    the top of the body, the failures of its ``failed`` as ``node: reason``,
    then for each bucket of its ``<subsystem>`` one line per key."""
    lines = []
    for value in body.values():
        if not isinstance(value, dict):
            continue
        for node, reason in value.get("failed", {}).items():
            lines.append(f"{node}: {reason}")
        for bucket, nodes in value.get(subsystem, {}).items():
            if bucket == "request_id":
                continue
            for node in nodes:
                lines.append(
                    f"{node}: {subsystem} {action}" if bucket == "ok" else f"{node}: {bucket}"
                )
    return lines


def cli_rows(body: Any, system: str) -> dict[str, str]:
    """The rows the luna CLI shows for one bulk answer: failed nodes with
    their reason, nodes of the ok/on/off buckets as OK/ON/OFF."""
    rows = dict(body["control"]["failed"])
    for bucket in ("ok", "on", "off"):
        for node in body["control"].get(system, {}).get(bucket, {}):
            rows[node] = bucket.upper()
    return rows


class BulkContractTests(ReactorCase):
    async def test_lpower_hostlist(self) -> None:
        """``lpower on node[001-003]`` (node003's BMC dead): the POST and
        the polls print one line per node, with the nodes' names (no
        ``hostlist: on``), and the polling ends on a non-200."""
        cluster = Cluster(self, wait=0.1)
        await cluster.setup()
        await cluster.simulators([False, False])
        await cluster.bmc_at("node003", f"{cluster.prefix}.19")
        code, body = await cluster.call(
            "POST",
            "/control/action/power/_on",
            {"control": {"power": {"on": {"hostlist": "node[001-003]"}}}},
        )
        self.assertEqual(code, 200)
        printed = lpower_lines(body, "power", "on")
        answers = await poll(cluster, str(body["request_id"]))
        self.assertNotEqual(answers[-1][0], 200)
        for _, later in answers[:-1]:
            printed += lpower_lines(later, "power", "on")
        self.assertEqual(
            sorted(printed), ["node001: power on", "node002: power on", f"node003: {DEAD}"]
        )

    async def test_lpower_status_buckets(self) -> None:
        """``lpower status node001,node002``: ``node001: on`` and
        ``node002: off``, in the POST's answer when the BMCs answer at once."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.simulators([True, False])
        code, body = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node001,node002")
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            sorted(lpower_lines(body, "power", "status")), ["node001: on", "node002: off"]
        )
        answers = await poll(cluster, body["request_id"])
        self.assertEqual([code for code, _ in answers], [404])

    async def test_cli_hostlist(self) -> None:
        """``luna control power status node[001-003]``: the POST answers 200
        with ``control`` and a ``request_id`` (without them the CLI waits
        for ever); the CLI's rows over the POST and its polls are ON, OFF
        and the dead BMC's reason; every status answer is JSON and the last
        is the 404 that ends the CLI's polling."""
        cluster = Cluster(self, wait=0.1)
        await cluster.setup()
        await cluster.simulators([True, False])
        await cluster.bmc_at("node003", f"{cluster.prefix}.19")
        code, body = await cluster.call(
            "POST", "/control/action/power/_status", bulk("power", "status", "node[001-003]")
        )
        self.assertEqual(code, 200)
        self.assertIn("control", body)
        self.assertIsInstance(body["request_id"], str)
        rows = cli_rows(body, "power")
        answers = await poll(cluster, body["request_id"])
        self.assertEqual(answers[-1][0], 404)
        self.assertIsInstance(answers[-1][1]["message"], str)
        for _, later in answers[:-1]:
            rows.update(cli_rows(later, "power"))
        self.assertEqual(rows, {"node001": "ON", "node002": "OFF", "node003": DEAD})

    async def test_cli_unknown_nodes(self) -> None:
        """``luna control power on node[001,998]``: the CLI's spinner stops
        only on a 200, so the unknown node fails alone in the rows and the
        known one is powered on."""
        cluster = Cluster(self)
        await cluster.setup()
        (sim,) = await cluster.simulators([False])
        code, body = await cluster.call(
            "POST", "/control/action/power/_on", bulk("power", "on", "node[001,998]")
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            cli_rows(body, "power"), {"node001": "OK", "node998": "error: node998 does not exist"}
        )
        self.assertEqual(sim.power, "1")

    async def test_cli_chassis_and_sel(self) -> None:
        """``luna control chassis identify`` and ``sel clear`` on a
        hostlist: OK rows for each node, done in the POST."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.simulators([False, False])
        for command, action in (("chassis", "identify"), ("sel", "clear")):
            code, body = await cluster.call(
                "POST",
                f"/control/action/{command}/_{action}",
                bulk(command, action, "node[001-002]"),
            )
            self.assertEqual(code, 200)
            self.assertEqual(cli_rows(body, command), {"node001": "OK", "node002": "OK"})
            self.assertEqual(
                sorted(lpower_lines(body, command, action)),
                [f"node001: {command} {action}", f"node002: {command} {action}"],
            )

    async def test_single_node(self) -> None:
        """One node goes by GET and answers at once: power status's
        ``control.power`` is the state string both clients print; an action
        is 204 (lpower prints ``node: on``)."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.simulators([False])
        code, body = await cluster.call("GET", "/control/action/power/node001/_status")
        self.assertEqual((code, body["control"]["power"]), (200, "off"))
        self.assertEqual(
            await cluster.call("GET", "/control/action/power/node001/_on"), (204, None)
        )
        code, body = await cluster.call("GET", "/control/action/power/node001/_status")
        self.assertEqual((code, body["control"]["power"]), (200, "on"))


class StatusAPI(API):
    """The whole API through StubTreq on a Clock, with the request table
    at hand (``root.requests``)."""

    def __init__(self) -> None:
        super().__init__()
        self.root = RootAPI(self.store, self.auth, ADMIN)
        self.resource = Guard(self.root.app.resource())
        self.treq = StubTreq(self.resource)


class FakePack:
    """A long /config job as osimage pack will run one: a line every
    ``step`` seconds on the clock, then the request finishes."""

    def __init__(self, api: StatusAPI, lines: list[tuple[bool, str]], step: float = 5) -> None:
        self.request = api.root.requests.start("config", len(lines), {"action": "pack"})
        for number, (ok, text) in enumerate(lines, start=1):
            api.clock.callLater(
                step * number, api.root.requests.record, self.request, "compute", ok, text
            )
        api.clock.callLater(step * len(lines), api.root.requests.finish, self.request)


class ConfigStatusTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = StatusAPI()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def cli_poll(self, request_id: str, step: float = 2) -> tuple[list[str], bool, int]:
        """Poll /config/status as the luna CLI does (every 2 s until 404):
        the lines it shows, whether it reports a failure, and the looks."""
        shown, failed = [], False
        for looks in range(1, 200):
            self.api.clock.advance(step)
            code, body = self.api.get(f"/config/status/{request_id}")
            if code == 404:
                self.assertIsInstance(body["message"], str)
                return shown, failed, looks
            self.assertEqual(code, 200, body)
            self.assertIsInstance(body["status"], int)
            failed = failed or body["status"] != 200
            if body["message"]:
                shown += body["message"].split(";;")
        raise AssertionError("the CLI would still be polling")

    def test_lines_arrive_then_404(self) -> None:
        """A three-step fake pack: each line reaches the polling CLI once,
        in order, with status 200, and the look after the finish is 404."""
        job = FakePack(self.api, [(True, "packing"), (True, "compressing"), (True, "done")])
        code, body = self.api.get(f"/config/status/{job.request.id}")
        self.assertEqual((code, body["message"], body["status"]), (200, "", 200))
        self.assertEqual(body["progress"], {"done": 0, "total": 3, "finished": False})
        shown, failed, looks = self.cli_poll(job.request.id)
        self.assertEqual(shown, ["compute: packing", "compute: compressing", "compute: done"])
        self.assertFalse(failed)
        self.assertGreater(looks, 3)

    def test_failure_reported(self) -> None:
        """A failing step makes ``status`` 500 from then on: the CLI marks it failed."""
        job = FakePack(self.api, [(True, "packing"), (False, "tar: no space left on device")])
        shown, failed, _ = self.cli_poll(job.request.id)
        self.assertEqual(shown, ["compute: packing", "compute: tar: no space left on device"])
        self.assertTrue(failed)

    def test_unread_finished_request_expires(self) -> None:
        """A finished request nobody polls is there until EXPIRY seconds
        after its finish, then 404."""
        job = FakePack(self.api, [(True, "packing")], step=1)
        self.api.clock.advance(1)
        self.api.clock.advance(EXPIRY - 0.5)
        self.assertIsNotNone(self.api.root.requests.peek(job.request.id))
        self.api.clock.advance(0.5)
        code, body = self.api.get(f"/config/status/{job.request.id}")
        self.assertEqual(code, 404)
        self.assertIn("expired", body["message"])

    def test_refusals(self) -> None:
        """401 without a token, 403 for readonly and node tokens; a config
        id at /control/status is 404."""
        job = FakePack(self.api, [(True, "packing")])
        path = f"/config/status/{job.request.id}"
        user = {"config": {"user": {"viewer": {"password": "viewer-pw", "role": "readonly"}}}}
        self.assertEqual(self.api.post("/config/user/viewer", user)[0], 201)
        self.assertEqual(self.api.get(path, token=None)[0], 401)
        self.assertEqual(
            self.api.get(path, token=self.api.token("readonly", name="viewer"))[0], 403
        )
        self.assertEqual(self.api.get(path, token=self.api.token("node", node="node001"))[0], 403)
        self.assertEqual(self.api.get(f"/control/status/{job.request.id}")[0], 404)
        self.assertEqual(self.api.get(path)[0], 200)


class WindowTests(HeldIPMICase):
    """The POST's wait on the injected clock (StubTreq, a Clock, BMCs held by the test)."""

    def post(self, hosts: str) -> defer.Deferred[Any]:
        body = json.dumps(bulk("power", "status", hosts)).encode()
        return self.request("POST", "/control/action/power/_status", body)

    def test_answers_after_the_wait(self) -> None:
        """With node002's BMC silent, the POST answers when the clock
        reaches 3 s, not before, with node001's result; node002's comes by
        /control/status once its BMC answers, then 404."""
        d = self.post("node[001-002]")
        self.assertEqual(sorted(self.ipmi.pending), ["node001", "node002"])
        self.ipmi.pending["node001"].callback(Success("on"))
        self.api.treq.flush()
        self.api.clock.advance(2.9)
        self.api.treq.flush()
        self.assertNoResult(d)
        self.api.clock.advance(0.1)
        self.api.treq.flush()
        code, body = self.body_of(d)
        self.assertEqual(
            (code, body["control"]["power"], body["progress"]),
            (200, {"on": {"node001": "on"}}, {"done": 1, "total": 2, "finished": False}),
        )
        self.ipmi.pending["node002"].callback(Success("off"))
        code, later = self.api.get(f"/control/status/{body['request_id']}")
        self.assertEqual(
            (code, later["control"]["power"], later["progress"]["finished"]),
            (200, {"off": {"node002": "off"}}, True),
        )
        self.assertEqual(self.api.get(f"/control/status/{body['request_id']}")[0], 404)
        self.assertEqual(self.api.clock.getDelayedCalls(), [])

    def test_answers_as_soon_as_all_are_done(self) -> None:
        """When every BMC answers within the wait, the POST answers then,
        with all of them, and leaves no timer behind."""
        d = self.post("node[001-002]")
        self.ipmi.pending["node002"].callback(Success("off"))
        self.api.treq.flush()
        self.assertNoResult(d)
        self.ipmi.pending["node001"].callback(Success("on"))
        self.api.treq.flush()
        code, body = self.body_of(d)
        self.assertEqual(code, 200)
        self.assertEqual(body["control"]["hostlist"], {"off": "node002", "on": "node001"})
        self.assertTrue(body["progress"]["finished"])
        self.assertEqual(self.api.clock.getDelayedCalls(), [])
