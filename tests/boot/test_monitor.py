"""/monitor through the whole HTTP stack (StubTreq): node states posted by the
installer (who may post, what a body must hold, where the state is kept) and
read back with the spec's 200-when-OK / 500-when-not, and the embedded
services' health from the registry tap.py fills."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from luna2d.resources.monitor import split_status, state_ok
from luna2d.store import objects
from tests.boot.support import BootAPI
from tests.support import result_of


def report(node: str, state: Any, status: Any = None, **extra: Any) -> dict:
    body: dict = {"state": state, **extra}
    if status is not None:
        body["status"] = status
    return {"monitor": {"status": {node: body}}}


class NodeStatusTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))

    def status(self, node: str, path: str = "node") -> tuple[int, Any]:
        return self.api.get(f"/monitor/{path}/{node}", token=None)

    def test_never_reported_is_ok(self) -> None:
        """A node that never reported answers 200 with no state, without a token."""
        self.assertEqual(
            self.status("node001"),
            (200, {"monitor": {"status": {"node001": {"status": None, "state": None}}}}),
        )

    def test_post_then_get(self) -> None:
        """The spec's example: an admin POST answers 204, then both paths
        answer the state and text with 200."""
        code, body = self.api.post(
            "/monitor/status/node001",
            report("node001", "installer.ok", "Luna installer: No errors"),
        )
        self.assertEqual((code, body), (204, None))
        expected = {
            "monitor": {
                "status": {
                    "node001": {"status": "Luna installer: No errors", "state": "installer.ok"}
                }
            }
        }
        self.assertEqual(self.status("node001", "status"), (200, expected))
        self.assertEqual(self.status("node001", "node"), (200, expected))

    def test_not_ok_is_500(self) -> None:
        """A failure state answers 500 with the state and text; an OK state
        afterwards answers 200 again."""
        self.assertEqual(
            self.api.post(
                "/monitor/node/node001", report("node001", "installer.error", "disk not found")
            )[0],
            204,
        )
        self.assertEqual(
            self.status("node001"),
            (
                500,
                {
                    "monitor": {
                        "status": {
                            "node001": {"status": "disk not found", "state": "installer.error"}
                        }
                    }
                },
            ),
        )
        self.assertEqual(
            self.api.post("/monitor/node/node001", report("node001", "installer.download"))[0], 204
        )
        self.assertEqual(
            self.status("node001"),
            (
                200,
                {
                    "monitor": {
                        "status": {
                            "node001": {
                                "status": "installer.download",
                                "state": "installer.download",
                            }
                        }
                    }
                },
            ),
        )

    def test_kept_in_the_node_status_field(self) -> None:
        """The state is the node's status field, written through the store
        (a write, on disk) and shown by /config/node."""
        writes = self.api.store.writes
        self.api.post("/monitor/node/node001", report("node001", "installer.partscript", "running"))
        self.assertEqual(self.api.store.writes, writes + 1)
        self.assertEqual(self.api.node("node001")["status"], "installer.partscript running")
        rows = result_of(
            self.api.store.pool.runInteraction(
                lambda c: c.execute(
                    "SELECT data FROM object WHERE kind = 'node' AND name = 'node001'"
                ).fetchone()
            )
        )
        self.assertIn('"status":"installer.partscript running"', rows[0])

    def test_who_may_post(self) -> None:
        """No token 401; a node token for itself 204 and for another node
        403; a readonly token 403."""
        body = report("node002", "installer.start")
        self.assertEqual(self.api.post("/monitor/node/node002", body, token=None)[0], 401)
        self.assertEqual(
            self.api.post(
                "/monitor/node/node002", body, token=self.api.token("node", node="node002")
            )[0],
            204,
        )
        self.assertEqual(
            self.api.post(
                "/monitor/node/node002", body, token=self.api.token("node", node="node001")
            )[0],
            403,
        )
        self.assertEqual(
            self.api.post(
                "/monitor/node/node002", body, token=self.api.token("readonly", "viewer")
            )[0],
            403,
        )

    def test_bad_bodies_400(self) -> None:
        """Malformed reports are 400 naming what is wrong, and change nothing."""
        bad = [
            ({"monitor": {}}, "status"),
            ({"config": {}}, "monitor"),
            (report("node002", "installer.ok"), "node001"),
            ({"monitor": {"status": {"node001": "ok"}}}, "node001"),
            (report("node001", None), "state"),
            (report("node001", "two words"), "state"),
            (report("node001", 5), "state"),
            (report("node001", "installer.ok", 12), "status"),
            (report("node001", "installer.ok", "x" * 2000), "status"),
            (report("node001", "installer.ok", colour="red"), "colour"),
        ]
        for body, word in bad:
            code, answer = self.api.post("/monitor/node/node001", body)
            self.assertEqual(code, 400, body)
            self.assertIn(word, answer["message"])
        code, answer = self.api.post("/monitor/node/node001", raw=b"{not json")
        self.assertEqual(code, 400)
        self.assertEqual(self.status("node001")[1]["monitor"]["status"]["node001"]["state"], None)

    def test_unknown_node_404(self) -> None:
        """GET and POST for an unknown node are 404 naming it."""
        code, body = self.status("node999")
        self.assertEqual(code, 404)
        self.assertIn("node999", body["message"])
        code, body = self.api.post("/monitor/node/node999", report("node999", "installer.ok"))
        self.assertEqual(code, 404)
        self.assertIn("node999", body["message"])

    def test_state_rules(self) -> None:
        """What is OK: nothing, or a state whose last dotted part is not a
        failure word; the stored field splits into state and text."""
        for state in (
            None,
            "",
            "installer.ok",
            "installer.download",
            "installer.bmcsetup.warning",
            "errors.ok",
        ):
            self.assertTrue(state_ok(state), state)
        for state in (
            "installer.error",
            "installer.fail",
            "installer.FAILED",
            "x.failure",
            "fatal",
            "error",
        ):
            self.assertFalse(state_ok(state), state)
        self.assertEqual(
            split_status("installer.ok Luna installer: No errors"),
            ("installer.ok", "Luna installer: No errors"),
        )
        self.assertEqual(split_status("installer.ok"), ("installer.ok", "installer.ok"))
        self.assertEqual(split_status(None), (None, None))


class ServiceHealthTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self, enabled={"dhcp": True, "dns": False})

    def health(self, name: str) -> tuple[int, Any]:
        return self.api.get(f"/monitor/service/{name}", token=None)

    def test_luna2_store_answers(self) -> None:
        """luna2 is OK when the store's database answers (the spec's body)."""
        self.assertEqual(self.health("luna2"), (200, {"monitor": {"service": {"luna2": "OK"}}}))

    def test_luna2_database_broken(self) -> None:
        """luna2 is 500 when the database fails a query."""
        self.api.store.pool.connection.close()
        code, body = self.health("luna2")
        self.assertEqual(code, 500)
        self.assertIn("the database failed", body["monitor"]["service"]["luna2"])

    def test_luna2_database_silent(self) -> None:
        """luna2 is 500 when the database does not answer within 5 s (on the store's clock)."""
        real = self.api.store.pool

        class Silent:
            def runInteraction(self, *args: Any, **kw: Any) -> defer.Deferred:
                return defer.Deferred()

        self.api.store.pool = Silent()
        self.addCleanup(setattr, self.api.store, "pool", real)
        answered: list = []
        self.api.treq.get("http://luna/monitor/service/luna2").addBoth(answered.append)
        self.api.treq.flush()
        self.api.clock.advance(4.9)
        self.api.treq.flush()
        self.assertEqual(answered, [])
        self.api.clock.advance(0.1)
        self.api.treq.flush()
        response = answered[0]
        self.assertEqual(response.code, 500)
        body = result_of(response.json())
        self.assertIn("did not answer within 5 s", body["monitor"]["service"]["luna2"])

    def test_disabled_and_not_running(self) -> None:
        """dns disabled in the ini says so (200); dhcp enabled but with no
        running service registered is 500, never a pretended OK."""
        self.assertEqual(
            self.health("dns"),
            (200, {"monitor": {"service": {"dns": "not enabled ([DNS] ENABLED = no)"}}}),
        )
        code, body = self.health("dhcp")
        self.assertEqual(code, 500)
        self.assertIn("not running", body["monitor"]["service"]["dhcp"])

    def test_registered_checks(self) -> None:
        """A registered check's answer is the report: healthy 200, unhealthy
        500, a check that raises 500 with its error; a Deferred check works."""
        answers: list = [(True, "OK, serving eth1")]
        self.api.services.register("dhcp", lambda: answers[0])
        self.assertEqual(
            self.health("dhcp"), (200, {"monitor": {"service": {"dhcp": "OK, serving eth1"}}})
        )
        answers[0] = (False, "socket closed")
        self.assertEqual(
            self.health("dhcp"), (500, {"monitor": {"service": {"dhcp": "socket closed"}}})
        )

        def broken() -> Any:
            raise RuntimeError("boom")

        self.api.services.register("dhcp", broken)
        code, body = self.health("dhcp")
        self.assertEqual(code, 500)
        self.assertIn("boom", body["monitor"]["service"]["dhcp"])
        self.api.services.register("tftp", lambda: defer.succeed((True, "OK")))
        self.assertEqual(self.health("tftp"), (200, {"monitor": {"service": {"tftp": "OK"}}}))

    def test_unknown_service_404(self) -> None:
        """A service nobody knows is 404."""
        code, body = self.health("ftp")
        self.assertEqual(code, 404)
        self.assertIn("ftp", body["message"])
