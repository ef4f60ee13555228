# -*- test-case-name: tests.boot.test_monitor,tests.clients.test_monitor -*-
"""``/monitor``: node states reported by the installer, and the embedded
services' health.

A node's state lives in its ``status`` field, written through the store's
ordinary write path: the state word (``installer.ok``), then, after one
space, the free text the installer sent with it. ``GET`` answers 200 while
the state is OK and 500 when it is not, as the spec says: a node that never
reported is OK, and so is every state but one whose last dotted part is
``error``, ``fail``, ``failed``, ``failure`` or ``fatal``
(``installer.error``). ``/monitor/node/<node>`` (the installer's path) and
``/monitor/status/<node>`` (the spec's) are one resource. GETs are open;
POST needs an admin token or the node's own token.

``GET /monitor/status`` and ``GET /monitor/queue`` (no node; an admin or
readonly token) are what ``luna monitor status`` and ``luna monitor queue``
read: the messages of the actions luna2d ran for its users, and the actions
still running, as lists of objects under ``monitor.status`` and
``monitor.queue`` (``resources/service.py``, ``ActionLog``)."""

from __future__ import annotations

import re
from typing import Any

from klein import Klein

from luna2d.errors import Forbidden, Invalid
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.common import envelope, no_content, read_json, reply
from luna2d.resources.service import Services

STATE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
BAD_ENDINGS = {"error", "fail", "failed", "failure", "fatal"}
MAX_STATUS = 1024


def state_ok(state: str | None) -> bool:
    """No state, or one whose last dotted part is not a failure word."""
    if not state:
        return True
    return state.rsplit(".", 1)[-1].lower() not in BAD_ENDINGS


def split_status(stored: str | None) -> tuple[str | None, str | None]:
    """The stored ``status`` field as (state, text)."""
    if not stored:
        return None, None
    state, _, rest = stored.strip().partition(" ")
    return state, (rest.strip() or state)


def parse_report(body: Any, node: str) -> str:
    """The ``status`` field value a report ``{"monitor": {"status": {node:
    {"state", "status"}}}}`` stores."""
    reports = envelope(body, "monitor", "status")
    if not isinstance(reports, dict) or set(reports) != {node}:
        raise Invalid(f"monitor.status: expected exactly the node {node!r} named in the path")
    report = reports[node]
    if not isinstance(report, dict):
        raise Invalid(f"monitor.status.{node}: expected an object with state and status")
    unknown = set(report) - {"state", "status"}
    if unknown:
        raise Invalid(f"monitor.status.{node}.{min(unknown)}: unknown field")
    state = report.get("state")
    if not isinstance(state, str) or not STATE_RE.fullmatch(state):
        raise Invalid(f"monitor.status.{node}.state: required, a word such as installer.ok")
    text = report.get("status")
    if text is None:
        return state
    if not isinstance(text, str):
        raise Invalid(f"monitor.status.{node}.status: expected a string")
    text = " ".join(text.split())
    if len(text) > MAX_STATUS or "\x00" in text:
        raise Invalid(f"monitor.status.{node}.status: at most {MAX_STATUS} characters")
    return f"{state} {text}" if text else state


class MonitorAPI:
    """Handlers under /monitor."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(self, store: Any, auth: Auth, services: Services) -> None:
        self.store = store
        self.auth = auth
        self.services = services

    def _now(self) -> float:
        return float(self.auth.clock.seconds())

    @app.route("/status", methods=["GET"])
    def messages(self, request: Any) -> bytes:
        """The messages of finished actions, oldest first."""
        self.auth.reader(request)
        return reply(request, {"monitor": {"status": self.services.actions.messages(self._now())}})

    @app.route("/queue", methods=["GET"])
    def queue(self, request: Any) -> bytes:
        """The actions still running, oldest first."""
        self.auth.reader(request)
        return reply(request, {"monitor": {"queue": self.services.actions.queue(self._now())}})

    @app.route("/node/<node>", methods=["GET"])
    @app.route("/status/<node>", methods=["GET"])
    def status(self, request: Any, node: str) -> bytes:
        """The node's state: 200 when OK, 500 when not."""
        state, text = split_status(self.store.node_status(node))
        ok = state_ok(state)
        return reply(
            request,
            {"monitor": {"status": {node: {"status": text, "state": state}}}},
            200 if ok else 500,
        )

    @app.route("/node/<node>", methods=["POST"])
    @app.route("/status/<node>", methods=["POST"])
    async def report(self, request: Any, node: str) -> bytes:
        """Store a node's state (admin, or the node's own token)."""
        who = self.auth.need(request)
        if who.role == "node":
            if who.node != node:
                raise Forbidden(f"this token belongs to node {who.node}, not {node}")
        elif not who.admin:
            raise Forbidden(f"{who.role} tokens may not change anything")
        self.store.node_exists(node)
        value = parse_report(read_json(request), node)
        await self.store.report_status(node, value)
        return no_content(request)

    @app.route("/service/<name>", methods=["GET"])
    async def service(self, request: Any, name: str) -> bytes:
        """An embedded service's health: 200 when fine, 500 when not."""
        ok, text = await self.services.check(name)
        return reply(request, {"monitor": {"service": {name: text}}}, 200 if ok else 500)
