# -*- test-case-name: tests.boot.test_service,tests.boot.test_monitor -*-
"""The embedded services' health and reload hooks, and ``/service``.

``Services`` is the small registry ``tap.py`` fills: each embedded service
(``dhcp``, ``tftp``, ``dns``, ...) registers a health check, a callable
answering ``(ok, text)`` (or a Deferred / coroutine of it), and optionally a
reload hook. ``luna2`` itself is always there: its health is the store
answering a query, its reload reads the templates again. A service that the
ini leaves disabled says so; one that is enabled but registered nothing is
reported as not running, never as fine.

``GET /service/<name>/reload`` (admin token) runs the reload hook."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from klein import Klein
from twisted.internet import defer

from luna2d import render
from luna2d.errors import LunaError, NotFound, Unavailable
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.common import reply

Health = tuple[bool, str]
HealthCheck = Callable[[], Health | Awaitable[Health] | defer.Deferred[Any]]
Reloader = Callable[[], str | Awaitable[str] | defer.Deferred[Any] | None]
STORE_TIMEOUT = 5.0


class ServiceError(LunaError):
    """An embedded service is unhealthy or its reload failed (500)."""

    status = 500


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

    @app.route("/<name>/reload", methods=["GET"])
    async def reload(self, request: Any, name: str) -> bytes:
        """Reload one service (admin)."""
        self.auth.admin(request)
        outcome = await self.services.reload(name)
        return reply(request, {"service": {name: outcome}})
