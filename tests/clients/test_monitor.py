"""The wire format of ``luna monitor status|queue`` and ``luna service
<name> <action>`` (clustervision/luna2-cli), through the whole HTTP stack
(StubTreq), as those commands read it:

- ``monitor status`` reads ``monitor.status``: a list of objects, each
  with ``username_initiator``, ``request_id``, ``read``, ``message`` and
  ``created``; an empty list is "no messages";
- ``monitor queue`` reads ``monitor.queue``: a list of objects with
  ``username_initiator``, ``queue_id``, ``request_id``, ``level``,
  ``status``, ``subsystem``, ``task`` and ``created``;
- ``service <name> status`` reads ``monitor.Service.<name>`` on 200 and on
  503, and prints ``info`` as a warning when it is there;
- any other action needs a ``request_id`` in the answer (otherwise the
  command fails), then polls ``/service/status/<id>`` until it answers
  404, printing each ``message`` (split on ``;;``) and failing when its
  ``status`` is not 200."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from luna2d.resources.service import KEEP, ActionLog
from luna2d.store import objects
from tests.boot.support import BootAPI
from tests.support import result_of

STATUS_COLUMNS = {"username_initiator", "request_id", "read", "message", "created"}
QUEUE_COLUMNS = {
    "username_initiator",
    "queue_id",
    "request_id",
    "level",
    "status",
    "subsystem",
    "task",
    "created",
}


def poll_until_gone(api: BootAPI, request_id: str) -> tuple[list[str], list[int]]:
    """What the CLI prints while it polls an action: every message and every
    status, until the daemon answers 404 (at most 10 polls)."""
    printed: list[str] = []
    statuses: list[int] = []
    for _ in range(10):
        code, body = api.get(f"/service/status/{request_id}")
        if code == 404:
            return printed, statuses
        assert code == 200, (code, body)
        assert isinstance(body["status"], int)
        statuses.append(body["status"])
        if body["message"]:
            printed.extend(body["message"].split(";;"))
    raise AssertionError("the action never ended: the CLI would poll forever")


class MonitorStatusTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self, enabled={"dhcp": True, "dns": False})

    def test_empty_lists(self) -> None:
        """A daemon that ran no action answers empty lists (the CLI says
        "empty"), never 404."""
        self.assertEqual(self.api.get("/monitor/status"), (200, {"monitor": {"status": []}}))
        self.assertEqual(self.api.get("/monitor/queue"), (200, {"monitor": {"queue": []}}))

    def test_messages_after_an_action(self) -> None:
        """After a reload, ``monitor status`` lists its message with every
        column the CLI shows, naming the user who asked; once polled it is
        marked read."""
        code, body = self.api.get("/service/luna2/reload")
        self.assertEqual(code, 200, body)
        code, body = self.api.get("/monitor/status")
        self.assertEqual(code, 200)
        rows = body["monitor"]["status"]
        self.assertEqual(len(rows), 1)
        self.assertEqual(set(rows[0]), STATUS_COLUMNS)
        self.assertEqual(rows[0]["username_initiator"], "luna")
        self.assertEqual(rows[0]["read"], 0)
        self.assertIn("luna2 reload: OK, reloaded", rows[0]["message"])
        self.assertEqual(rows[0]["created"], "2027-01-15 08:00:00")
        poll_until_gone(self.api, rows[0]["request_id"])
        self.assertEqual(self.api.get("/monitor/status")[1]["monitor"]["status"][0]["read"], 1)

    def test_queue_lists_running_actions(self) -> None:
        """While a reload hook has not answered, ``monitor queue`` lists it
        as a running main task with the CLI's columns; once it answers, the
        queue is empty and the message is in ``monitor status``."""
        pending: defer.Deferred[str] = defer.Deferred()
        self.api.services.register("dhcp", lambda: (True, "OK"), lambda: pending)
        answer = self.api.treq.get(
            "http://luna/service/dhcp/reload",
            headers={"x-access-tokens": self.api.admin_token},
        )
        self.api.treq.flush()
        self.assertNoResult(answer)
        code, body = self.api.get("/monitor/queue")
        self.assertEqual(code, 200)
        (row,) = body["monitor"]["queue"]
        self.assertEqual(set(row), QUEUE_COLUMNS)
        self.assertEqual(
            (row["level"], row["status"], row["subsystem"], row["task"]),
            ("maintask", "in progress", "service", "reload dhcp"),
        )
        self.assertEqual(row["username_initiator"], "luna")
        self.assertEqual(
            self.api.get(f"/service/status/{row['request_id']}"),
            (200, {"message": "", "status": 200}),
        )
        self.assertEqual(self.api.get("/monitor/status")[1]["monitor"]["status"], [])
        pending.callback("OK, rebound eth1")
        self.api.treq.flush()
        self.assertEqual(result_of(answer).code, 200)
        self.assertEqual(self.api.get("/monitor/queue")[1]["monitor"]["queue"], [])
        (message,) = self.api.get("/monitor/status")[1]["monitor"]["status"]
        self.assertEqual(message["request_id"], row["request_id"])
        self.assertEqual(message["message"], "dhcp reload: OK, rebound eth1")

    def test_who_may_read(self) -> None:
        """Admin and readonly tokens read both lists; no token 401, node
        tokens 403."""
        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        for path in ("/monitor/status", "/monitor/queue"):
            self.assertEqual(self.api.get(path, token=self.api.token("readonly", "viewer"))[0], 200)
            self.assertEqual(self.api.get(path, token=None)[0], 401)
            self.assertEqual(
                self.api.get(path, token=self.api.token("node", node="node001"))[0], 403
            )

    def test_node_paths_unchanged(self) -> None:
        """``/monitor/status/<node>`` is still the node's state."""
        code, body = self.api.get("/monitor/status/node001", token=None)
        self.assertEqual(code, 200)
        self.assertIn("node001", body["monitor"]["status"])


class ServiceActionTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self, enabled={"dhcp": True, "dns": False})

    def test_status_running(self) -> None:
        """A healthy service: 200 with its words under monitor.Service.<name>."""
        self.api.services.register("dhcp", lambda: (True, "OK, serving eth1"))
        self.assertEqual(
            self.api.get("/service/dhcp/status"),
            (200, {"monitor": {"Service": {"dhcp": "OK, serving eth1"}}}),
        )

    def test_status_failing(self) -> None:
        """An unhealthy or not running service: 503 in the same shape (the
        CLI reads it there and exits 1)."""
        code, body = self.api.get("/service/dhcp/status")
        self.assertEqual(code, 503)
        self.assertIn("not running", body["monitor"]["Service"]["dhcp"])
        self.api.services.register("dhcp", lambda: (False, "socket closed"))
        self.assertEqual(
            self.api.get("/service/dhcp/status"),
            (503, {"monitor": {"Service": {"dhcp": "socket closed"}}}),
        )

    def test_status_disabled(self) -> None:
        """A service the ini disables: 200, the reason also under ``info``."""
        code, body = self.api.get("/service/dns/status")
        self.assertEqual(code, 200)
        self.assertEqual(body["info"], body["monitor"]["Service"]["dns"])
        self.assertIn("[DNS] ENABLED = no", body["info"])

    def test_status_refusals(self) -> None:
        """Unknown service 404, unknown action 400, no token 401, all with a message."""
        code, body = self.api.get("/service/ftp/status")
        self.assertEqual(code, 404)
        self.assertIn("ftp", body["message"])
        code, body = self.api.get("/service/dhcp/explode")
        self.assertEqual(code, 400)
        self.assertIn("explode", body["message"])
        self.assertEqual(self.api.get("/service/dhcp/status", token=None)[0], 401)

    def test_reload_then_poll(self) -> None:
        """A reload answers a request_id; polling it prints the outcome once
        with status 200, then 404 ends the CLI's loop."""
        self.api.services.register("dhcp", lambda: (True, "OK"), lambda: "OK, rebound eth1")
        code, body = self.api.get("/service/dhcp/reload")
        self.assertEqual(code, 200)
        self.assertEqual(body["service"], {"dhcp": "OK, rebound eth1"})
        printed, statuses = poll_until_gone(self.api, body["request_id"])
        self.assertEqual(statuses, [200])
        self.assertEqual(printed, ["2027-01-15 08:00:00 :: dhcp reload: OK, rebound eth1"])

    def test_restart_reloads(self) -> None:
        """restart runs the reload hook and says that it reloaded."""
        calls: list[str] = []
        self.api.services.register(
            "dhcp",
            lambda: (True, "OK"),
            lambda: calls.append("reload") or "OK, rebound eth1",
        )
        code, body = self.api.get("/service/dhcp/restart")
        self.assertEqual(code, 200)
        self.assertEqual(calls, ["reload"])
        printed, statuses = poll_until_gone(self.api, body["request_id"])
        self.assertEqual(statuses, [200])
        self.assertIn("restarts by reloading", printed[0])

    def test_failed_reload_is_reported_failed(self) -> None:
        """A reload that fails answers 500 with a request_id; polling gives
        status 500, which the CLI prints as FAILED and exits 1 on."""

        def broken() -> str:
            from luna2d.resources.service import ServiceError

            raise ServiceError("template x line 3: unexpected end")

        self.api.services.register("dhcp", lambda: (True, "OK"), broken)
        code, body = self.api.get("/service/dhcp/reload")
        self.assertEqual(code, 500)
        self.assertIn("line 3", body["message"])
        printed, statuses = poll_until_gone(self.api, body["request_id"])
        self.assertEqual(statuses, [500])
        self.assertIn("failed", printed[0])

    def test_start_stop_refused(self) -> None:
        """start and stop of an embedded service: 409 saying how to do it."""
        for action in ("start", "stop"):
            code, body = self.api.get(f"/service/dhcp/{action}")
            self.assertEqual(code, 409)
            self.assertIn("[DHCP] ENABLED", body["message"])
            self.assertNotIn("request_id", body)

    def test_actions_need_admin(self) -> None:
        """readonly may ask a status but not a reload."""
        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        token = self.api.token("readonly", "viewer")
        self.assertEqual(self.api.get("/service/luna2/status", token=token)[0], 200)
        self.assertEqual(self.api.get("/service/luna2/reload", token=token)[0], 403)

    def test_unknown_request_404(self) -> None:
        code, body = self.api.get("/service/status/0123456789abcdef")
        self.assertEqual(code, 404)
        self.assertIn("0123456789abcdef", body["message"])


class ActionLogTests(unittest.TestCase):
    """The log's memory is bounded in time and in count."""

    def test_expiry(self) -> None:
        log = ActionLog()
        action = log.begin("luna", "service", "reload dhcp", 100.0)
        self.assertEqual(len(log.queue(100.0 + KEEP * 10)), 1, "a running action never expires")
        log.finish(action, 200, "done")
        self.assertEqual(len(log.messages(100.0 + KEEP)), 1)
        self.assertEqual(log.messages(100.0 + KEEP + 1), [])
        self.assertIsNone(log.take(action.request_id, 100.0 + KEEP + 1))

    def test_limit(self) -> None:
        log = ActionLog(limit=3)
        ids: list[Any] = []
        for n in range(5):
            action = log.begin("luna", "service", f"reload {n}", float(n))
            log.finish(action, 200, f"m{n}")
            ids.append(action.request_id)
        log.expire(5.0)
        self.assertEqual([m["message"] for m in log.messages(5.0)], ["m2", "m3", "m4"])
