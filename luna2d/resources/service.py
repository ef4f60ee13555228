# -*- test-case-name: tests.boot.test_service,tests.boot.test_monitor,tests.clients.test_monitor -*-
"""The embedded services' health and reload hooks, and ``/service``.

``Services`` is the small registry ``tap.py`` fills: each embedded service
(``dhcp``, ``tftp``, ``dns``, ...) registers a health check, a callable
answering ``(ok, text)`` (or a Deferred / coroutine of it), and optionally a
reload hook. ``luna2`` itself is always there: its health is the store
answering a query, its reload reads the templates again. A service that the
ini leaves disabled says so; one that is enabled but registered nothing is
reported as not running, never as fine.

``GET /service/<name>/<action>`` is what ``luna service <name> <action>``
calls:

- ``status`` (admin or readonly token): 200 ``{"monitor": {"Service":
  {name: text}}}`` when the service is fine, 503 with the same shape when it
  is not; a service the ini leaves disabled answers 200 with the text also
  under ``info`` (the CLI prints it as a warning).
- ``reload`` and ``restart`` (admin): the reload hook runs. The services
  are embedded in luna2d and answer from its live configuration, so a
  restart is a reload: luna2d never rebinds a privileged port after it has
  dropped its privileges. The answer carries a ``request_id`` whose
  outcome ``GET /service/status/<id>`` gives, as the CLI polls it.
- ``start`` and ``stop`` (admin): 409 saying how: an embedded service runs
  while luna2d runs and its ``[SECTION] ENABLED`` says yes.

Each action is remembered in an ``ActionLog`` (its messages, its user, its
time; the running ones form the queue) that ``/monitor/status`` and
``/monitor/queue`` show. Finished actions are kept ``KEEP`` seconds, at
most ``LIMIT`` of them."""

from __future__ import annotations

import inspect
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
from klein import Klein
from twisted.internet import defer

from luna2d import render
from luna2d.errors import Invalid, LunaError, NotFound, Unavailable
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.common import reply

Health = tuple[bool, str]
HealthCheck = Callable[[], Health | Awaitable[Health] | defer.Deferred[Any]]
Reloader = Callable[[], str | Awaitable[str] | defer.Deferred[Any] | None]
STORE_TIMEOUT = 5.0
# Finished actions are kept this long (seconds), and at most this many.
KEEP = 3600.0
LIMIT = 1000
ACTIONS = ("status", "reload", "restart", "start", "stop")


class ServiceError(LunaError):
    """An embedded service is unhealthy or its reload failed (500)."""

    status = 500


class NotPossible(LunaError):
    """An action luna2d cannot take on an embedded service (409)."""

    status = 409


@dataclass
class Action:
    """One service action: who asked, when, its messages once known."""

    request_id: str
    queue_id: int
    user: str
    subsystem: str
    task: str
    created: float
    messages: list[str] = field(default_factory=list)
    status: int | None = None  # None while it runs; then the HTTP status of its outcome
    read: bool = False


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


class ActionLog:
    """The actions asked of the services: the running ones (the queue) and
    the finished ones with their messages, until they expire. Pure: every
    call that depends on the time is given ``now``."""

    def __init__(self, keep: float = KEEP, limit: int = LIMIT) -> None:
        self.keep = keep
        self.limit = limit
        self._actions: OrderedDict[str, Action] = OrderedDict()
        self._next_queue_id = 1

    def begin(
        self, user: str, subsystem: str, task: str, now: float, request_id: str | None = None
    ) -> Action:
        """A new running action; ``request_id`` is the id the client was
        given when the action is a tracked request (``luna2d.requests``)."""
        self.expire(now)
        action = Action(
            request_id or secrets.token_hex(8), self._next_queue_id, user, subsystem, task, now
        )
        self._next_queue_id += 1
        self._actions[action.request_id] = action
        return action

    def finish(self, action: Action, status: int, message: str) -> None:
        """``action`` ended with ``status`` (200 when it worked) and ``message``."""
        action.status = status
        action.messages.append(message)

    def expire(self, now: float) -> None:
        """Drop finished actions older than ``keep``, and the oldest
        finished ones past ``limit``."""
        finished = [a for a in self._actions.values() if a.status is not None]
        excess = len(finished) - self.limit
        for action in finished:
            if excess > 0 or now - action.created > self.keep:
                del self._actions[action.request_id]
                excess -= 1

    def take(self, request_id: str, now: float) -> dict[str, Any] | None:
        """The unread messages of a request as the CLI polls them
        (``{"message": "a;;b", "status": code}``), marking them read; None
        when there is no such request or nothing is left to read."""
        self.expire(now)
        action = self._actions.get(request_id)
        if action is None or action.read:
            return None
        if action.status is None:
            return {"message": "", "status": 200}
        action.read = True
        return {
            "message": ";;".join(f"{_stamp(action.created)} :: {m}" for m in action.messages),
            "status": action.status,
        }

    def messages(self, now: float) -> list[dict[str, Any]]:
        """The finished actions' messages, oldest first, in the incumbent's
        status-table shape."""
        self.expire(now)
        return [
            {
                "request_id": a.request_id,
                "username_initiator": a.user,
                "created": _stamp(a.created),
                "read": 1 if a.read else 0,
                "message": message,
            }
            for a in self._actions.values()
            if a.status is not None
            for message in a.messages
        ]

    def queue(self, now: float) -> list[dict[str, Any]]:
        """The running actions, oldest first, in the incumbent's queue shape."""
        self.expire(now)
        return [
            {
                "queue_id": a.queue_id,
                "request_id": a.request_id,
                "username_initiator": a.user,
                "created": _stamp(a.created),
                "level": "maintask",
                "subsystem": a.subsystem,
                "task": a.task,
                "status": "in progress",
            }
            for a in self._actions.values()
            if a.status is None
        ]


async def _settle(value: Any) -> Any:
    if isinstance(value, defer.Deferred) or inspect.isawaitable(value):
        return await value
    return value


@dataclass
class Services:
    """Health checks and reload hooks of the embedded services."""

    enabled: dict[str, bool] = field(default_factory=dict)
    health: dict[str, HealthCheck] = field(default_factory=dict)
    reloaders: dict[str, Reloader] = field(default_factory=dict)
    actions: ActionLog = field(default_factory=ActionLog)

    @classmethod
    def from_config(cls, cfg: Any) -> Services:
        """The services the ini knows, with their ENABLED flags."""
        return cls(
            enabled={"dhcp": cfg.dhcp.enabled, "tftp": cfg.tftp.enabled, "dns": cfg.dns.enabled}
        )

    def register(self, name: str, health: HealthCheck, reload: Reloader | None = None) -> None:
        """Add a running service's health check (and reload hook)."""
        self.health[name] = health
        if reload is not None:
            self.reloaders[name] = reload

    def known(self, name: str) -> bool:
        return name in self.enabled or name in self.health

    def _need(self, name: str) -> None:
        if not self.known(name):
            raise NotFound(
                f"there is no service {name!r} (known: {', '.join(sorted(self.names()))})"
            )

    def names(self) -> set[str]:
        return set(self.enabled) | set(self.health)

    async def check(self, name: str) -> Health:
        """(ok, text) of one service; raises NotFound for an unknown name."""
        self._need(name)
        check = self.health.get(name)
        if check is None:
            if not self.enabled.get(name, False):
                return True, f"not enabled ([{name.upper()}] ENABLED = no)"
            return False, "enabled in the ini but not running in this luna2d"
        try:
            ok, text = await _settle(check())
        # Any failing check is an unhealthy service, reported in words.
        except Exception as exc:  # noqa: BLE001
            return False, f"health check failed: {exc}"
        return bool(ok), str(text)

    async def reload(self, name: str) -> str:
        """Run the reload hook; the text says what happened."""
        self._need(name)
        hook = self.reloaders.get(name)
        if hook is not None:
            result = await _settle(hook())
            return str(result) if result is not None else "OK, reloaded"
        if name not in self.health:
            if not self.enabled.get(name, False):
                raise Unavailable(f"{name} is not enabled ([{name.upper()}] ENABLED = no)")
            raise Unavailable(f"{name} is enabled in the ini but not running in this luna2d")
        return "OK, nothing to reload: it answers from the live configuration"


def store_health(store: Any, timeout: float = STORE_TIMEOUT) -> HealthCheck:
    """luna2's health: the database answers a query within ``timeout`` s."""

    async def check() -> Health:
        d = store.ping()
        d.addTimeout(timeout, store.clock)
        try:
            await d
        except defer.TimeoutError:
            return False, f"the database did not answer within {timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - whatever the database raised, luna2 is unhealthy
            return False, f"the database failed: {exc}"
        return True, "OK"

    return check


def template_reloader(renderer: render.Renderer) -> Reloader:
    """luna2's reload: every template read and compiled again."""

    def reload() -> str:
        try:
            names = renderer.reload()
        except jinja2.TemplateSyntaxError as exc:
            raise ServiceError(
                f"template {exc.name} line {exc.lineno}: {exc.message}; "
                "the previous templates stay in use"
            ) from None
        except (jinja2.TemplateError, OSError) as exc:
            raise ServiceError(
                f"templates not reloaded: {exc}; the previous templates stay in use"
            ) from None
        return f"OK, reloaded {len(names)} templates"

    return reload


def with_luna2(services: Services | None, store: Any, renderer: render.Renderer) -> Services:
    """``services`` (or an empty registry) with luna2 itself registered."""
    services = services if services is not None else Services()
    if "luna2" not in services.health:
        services.register("luna2", store_health(store), template_reloader(renderer))
    return services


class ServiceAPI:
    """Handlers under /service."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(self, auth: Auth, services: Services) -> None:
        self.auth = auth
        self.services = services

    def _now(self) -> float:
        return float(self.auth.clock.seconds())

    @app.route("/status/<request_id>", methods=["GET"])
    def outcome(self, request: Any, request_id: str) -> bytes:
        """The unread messages of an action, once; 404 after that."""
        self.auth.need(request)
        found = self.services.actions.take(request_id, self._now())
        if found is None:
            raise NotFound(f"no unread messages for request {request_id!r}")
        return reply(request, found)

    @app.route("/<name>/<action>", methods=["GET"])
    async def act(self, request: Any, name: str, action: str) -> bytes:
        """One action on one service (see the module docstring)."""
        if action not in ACTIONS:
            self.auth.need(request)
            raise Invalid(f"action {action!r} is not one of {', '.join(ACTIONS)}")
        if action == "status":
            return await self._status(request, name)
        who = self.auth.admin(request)
        self.services._need(name)
        if action in ("start", "stop"):
            section = name.upper()
            raise NotPossible(
                f"{name} is embedded in luna2d: it runs while luna2d runs and [{section}] "
                f"ENABLED = yes; to {action} it, set ENABLED in the ini and restart luna2d"
            )
        log = self.services.actions
        running = log.begin(who.name, "service", f"{action} {name}", self._now())
        try:
            outcome = await self.services.reload(name)
        except LunaError as exc:
            log.finish(running, exc.status, f"{name} {action} failed: {exc.message}")
            if exc.status != 500:
                raise
            return reply(request, {"message": exc.message, "request_id": running.request_id}, 500)
        if action == "restart":
            outcome = f"{outcome} (an embedded service restarts by reloading)"
        log.finish(running, 200, f"{name} {action}: {outcome}")
        return reply(
            request,
            {"service": {name: outcome}, "message": outcome, "request_id": running.request_id},
        )

    async def _status(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        ok, text = await self.services.check(name)
        body: dict[str, Any] = {"monitor": {"Service": {name: text}}}
        if ok and name not in self.services.health:
            body["info"] = text  # not enabled: the CLI shows it as a warning
        return reply(request, body, 200 if ok else 503)
