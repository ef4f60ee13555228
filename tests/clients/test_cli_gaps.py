"""Contract tests for what the unmodified ``luna`` CLI met against luna2d
once the parts of issue 10 were merged (docs/CLIENTS.md):

- ``luna secrets change`` reads only 204 as success, and sends its change
  even when the content is what is stored: a POST that changes nothing
  answers 204 too (it answered 200, and the CLI printed an error);
- a bulk control request (``luna control power on node[001-002]``) is
  listed by ``GET /monitor/queue`` while it runs, under the request_id the
  client was given, and by ``GET /monitor/status`` once finished, with a
  message saying how many nodes were done and which failed, in the shapes
  ``luna monitor queue|status`` read (tests/clients/test_monitor.py);
- ``luna osimage clone`` reads only a 200 with a ``request_id`` and then
  polls ``/config/status/<id>`` until 404, printing each ``message`` line;
  any other answer prints "not Cloned". With ``--nocopy`` luna2d clones
  the record and answers so; without it (copying the image's files comes
  with issue 11) it answers 503 with a message and creates nothing (it
  answered 201 and created the copy, and the CLI printed
  "[ FAILED ] ... not Cloned: osimage ... cloned as ...");
- ``luna osimage tag remove <o> <tag>`` asks for
  ``GET //config/osimage/<o>/osimagetag/<tag>/_delete`` (two leading
  slashes) and reads 204: repeated slashes count as one (they answered
  404 "no such endpoint");
- ``lrack place <devices> -r <rack>`` POSTs the rack with only the devices
  it places: the devices already in the rack stay (they were taken out, so
  a second ``place`` silently emptied the rack of the first)."""

from __future__ import annotations

import base64
import json
import shutil
from typing import Any

from twisted.trial import unittest

from luna2d.ipmi.session import Fault, Success
from tests.clients.support import HeldIPMICase
from tests.clients.test_monitor import QUEUE_COLUMNS, STATUS_COLUMNS
from tests.ipmi.test_control import bulk
from tests.support import ADMIN, API, hash_inline


def secret_body(owner: str, content: bytes) -> dict:
    """The body ``luna secrets change node <owner> lic -qc <file>`` sends."""
    item = {"name": "lic", "content": base64.b64encode(content).decode("ascii")}
    return {"config": {"secrets": {"node": {owner: [item]}}}}


class SecretsChangeTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())
        self.assertEqual(
            self.api.post(
                "/config/node/node001", {"config": {"node": {"node001": {"group": "compute"}}}}
            )[0]
            in (201, 204),
            True,
        )

    def test_change_to_the_same_content_is_204(self) -> None:
        """Add (201), change to new bytes (204), change to the same bytes
        again (204, no body, nothing lost), for both POST routes the CLI uses."""
        path = "/config/secrets/node/node001"
        self.assertEqual(self.api.post(path, secret_body("node001", b"v1"))[0], 201)
        self.assertEqual(self.api.post(f"{path}/lic", secret_body("node001", b"v2"))[0], 204)
        for route in (path, f"{path}/lic"):
            code, body = self.api.post(route, secret_body("node001", b"v2"))
            self.assertEqual(code, 204, body)
        owner = self.api.store.state.get("node", "node001")
        self.assertEqual(owner.secret("lic").content, b"v2")


class ControlInMonitorTests(HeldIPMICase):
    """Bulk control requests in /monitor/queue and /monitor/status (StubTreq,
    a Clock, BMCs answered by the test)."""

    def post(self, hosts: str) -> Any:
        body = json.dumps(bulk("power", "on", hosts)).encode()
        d = self.request("POST", "/control/action/power/_on", body)
        self.api.clock.advance(3)
        self.api.treq.flush()
        return self.body_of(d)

    def monitor(self, what: str) -> list[dict[str, Any]]:
        code, body = self.api.get(f"/monitor/{what}")
        self.assertEqual(code, 200, body)
        rows = body["monitor"][what]
        self.assertIsInstance(rows, list)
        return rows

    def test_running_then_finished(self) -> None:
        """While node002's BMC is silent the request is in the queue (one
        row, the CLI's columns, the POST's request_id, the hostlist in its
        task) and not in the status list; once node002 fails, it leaves the
        queue and its message names the count and the failed node."""
        code, body = self.post("node[001-002]")
        self.assertEqual(code, 200, body)
        self.ipmi.pending["node001"].callback(Success("on"))
        self.api.treq.flush()
        request_id = body["request_id"]
        [row] = self.monitor("queue")
        self.assertEqual(set(row), QUEUE_COLUMNS)
        self.assertEqual(
            (row["request_id"], row["subsystem"], row["status"]),
            (request_id, "control", "in progress"),
        )
        self.assertIn("power on node[001-002]", row["task"])
        self.assertEqual(row["username_initiator"], ADMIN)
        self.assertEqual(self.monitor("status"), [])
        self.ipmi.pending["node002"].callback(Fault("timeout", "no answer from the BMC"))
        self.api.treq.flush()
        self.assertEqual(self.monitor("queue"), [])
        [row] = self.monitor("status")
        self.assertEqual(set(row), STATUS_COLUMNS)
        self.assertEqual(row["request_id"], request_id)
        self.assertEqual(
            row["message"], "power on node[001-002]: 1 of 2 nodes done; failed: node002"
        )

    def test_all_done(self) -> None:
        """A request whose nodes all answer at once is finished in the POST:
        nothing queued, one status message without failures."""
        self.post("node001")  # nothing answered yet: queued
        self.assertEqual(len(self.monitor("queue")), 1)
        self.ipmi.pending["node001"].callback(Success("on"))
        self.api.treq.flush()
        self.assertEqual(self.monitor("queue"), [])
        self.assertEqual(
            [row["message"] for row in self.monitor("status")],
            ["power on node001: 1 of 1 nodes done"],
        )


def clone_body(name: str, new: str, **options: Any) -> dict:
    """The body ``luna osimage clone <name> <new> [--nocopy]`` sends."""
    return {"config": {"osimage": {name: dict({"name": name, "newosimage": new}, **options)}}}


class OsimageCloneTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def osimages(self) -> set[str]:
        code, body = self.api.get("/config/osimage")
        self.assertEqual(code, 200, body)
        return set(body["config"]["osimage"])

    def test_nocopy_polled_to_the_end(self) -> None:
        """``--nocopy``: 200 with a request_id; the CLI's poll shows one line
        naming the copy and its path, then 404; the copy exists with the
        source's path."""
        code, body = self.api.post(
            "/config/osimage/compute/_clone", clone_body("compute", "img2", nocopy=True)
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(body["message"], "osimage compute cloned as img2")
        code, status = self.api.get(f"/config/status/{body['request_id']}")
        self.assertEqual((code, status["status"]), (200, 200), status)
        path = self.api.store.show("osimage", "compute")["path"]
        self.assertEqual(
            status["message"].split(";;"),
            [f"img2: cloned from compute without its files (nocopy); path {path}"],
        )
        code, _ = self.api.get(f"/config/status/{body['request_id']}")
        self.assertEqual(code, 404)
        self.assertEqual(self.api.store.show("osimage", "img2")["path"], path)

    def test_copy_refused_cleanly(self) -> None:
        """Without --nocopy (and with --bare): 503 with a message saying
        what is missing and what works; nothing is created. An unknown
        source is 404, a nocopy that is not a boolean 400."""
        before = self.osimages()
        for options in ({}, {"bare": True}):
            code, body = self.api.post(
                "/config/osimage/compute/_clone", clone_body("compute", "img2", **options)
            )
            self.assertEqual(code, 503, body)
            self.assertIn("nocopy", body["message"])
            self.assertNotIn("request_id", body)
        code, body = self.api.post(
            "/config/osimage/ghost/_clone", clone_body("ghost", "img2", nocopy=True)
        )
        self.assertEqual((code, body), (404, {"message": "osimage 'ghost' does not exist"}))
        code, body = self.api.post(
            "/config/osimage/compute/_clone", clone_body("compute", "img2", nocopy="maybe")
        )
        self.assertEqual(
            (code, body), (400, {"message": "nocopy: expected true or false, got 'maybe'"})
        )
        self.assertEqual(self.osimages(), before)


class RepeatedSlashTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def tags(self) -> list[str]:
        code, body = self.api.get("/config/osimagetag/compute")
        self.assertEqual(code, 200, body)
        return sorted(str(tag["name"]) for tag in body["config"]["osimagetag"].values())

    def test_tag_remove_as_the_cli_asks(self) -> None:
        """``luna osimage tag change compute v1`` then ``tag remove compute
        v1``: 204 and the tag is gone; other doubled slashes route too, and
        an unknown path still answers 404 naming the path."""
        body = {"config": {"osimage": {"compute": {"name": "compute", "tag": "v1"}}}}
        self.assertEqual(self.api.post("/config/osimage/compute/tag", body)[0], 204)
        self.assertEqual(self.tags(), ["v1"])
        code, answer = self.api.get("//config/osimage/compute/osimagetag/v1/_delete")
        self.assertEqual((code, answer), (204, None))
        self.assertEqual(self.tags(), [])
        code, answer = self.api.get("/config//osimage///compute")
        self.assertEqual(code, 200, answer)
        self.assertIn("compute", answer["config"]["osimage"])
        self.assertEqual(
            self.api.get("//config//nothing//x/y")[1],
            {"message": "no such endpoint: /config/nothing/x/y"},
        )


class LrackPlaceTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def place(self, rack: str, devices: list[dict[str, Any]]) -> None:
        code, body = self.api.post(
            f"/config/rack/{rack}", {"config": {"rack": {rack: {"devices": devices}}}}
        )
        self.assertEqual(code, 204, body)

    def placed(self, rack: str) -> list[tuple[str, int, int]]:
        code, body = self.api.get(f"/config/rack/{rack}")
        self.assertEqual(code, 200, body)
        return [
            (d["name"], d["position"], d["height"]) for d in body["config"]["rack"][rack]["devices"]
        ]

    def test_place_twice_keeps_the_first(self) -> None:
        """``lrack add r2``; ``place node001 -r r2 -p 10``; ``place
        node[002-003] -r r2 -p 12``; ``resize node001 -H 2``: all three stay
        placed; ``unplace node001`` takes out node001 only."""
        code, body = self.api.post("/config/rack/r2", {"config": {"rack": {"r2": {"size": 42}}}})
        self.assertEqual(code, 201, body)
        self.place(
            "r2",
            [
                {
                    "name": "node001",
                    "type": "node",
                    "position": 10,
                    "height": 1,
                    "orientation": "front",
                }
            ],
        )
        self.place(
            "r2",
            [
                {"name": "node002", "type": "node", "position": 12, "height": 1},
                {"name": "node003", "type": "node", "position": 13, "height": 1},
            ],
        )
        self.assertEqual(
            self.placed("r2"), [("node001", 10, 1), ("node002", 12, 1), ("node003", 13, 1)]
        )
        code, body = self.api.post(
            "/config/rack/inventory",
            {"config": {"rack": {"inventory": [{"name": "node001", "type": "node", "height": 2}]}}},
        )
        self.assertEqual(code, 204, body)
        self.assertEqual(self.placed("r2")[0], ("node001", 10, 2))
        code, _ = self.api.get("/config/rack/inventory/node001/type/node/_delete")
        self.assertEqual(code, 204)
        self.assertEqual(self.placed("r2"), [("node002", 12, 1), ("node003", 13, 1)])
        # A device placed over one already there is still refused.
        code, body = self.api.post(
            "/config/rack/r2",
            {
                "config": {
                    "rack": {
                        "r2": {"devices": [{"name": "node004", "type": "node", "position": 13}]}
                    }
                }
            },
        )
        self.assertEqual(
            (code, body["message"]),
            (400, "devices: node003 and node004 both take unit 13 of rack r2"),
        )
