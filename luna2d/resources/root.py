# -*- test-case-name: tests.test_api_extras,tests.integration.test_daemon -*-
"""The site root: /token, /version, /journal, and the /config branch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from klein import Klein
from twisted.web.resource import Resource

import luna2d
from luna2d.requests import RequestTable
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.resources.boot import BootAPI
from luna2d.resources.common import MAX_LOGIN_BODY, envelope, message, read_json, reply
from luna2d.resources.config import ConfigAPI
from luna2d.resources.control import ControlAPI
from luna2d.resources.files import FilesAPI
from luna2d.resources.monitor import MonitorAPI
from luna2d.resources.service import ServiceAPI, Services, with_luna2
from luna2d.resources.status import config_status


def git_commit(start: Path) -> str:
    """The commit luna2d runs from, read from .git without running git."""
    for folder in [start, *start.parents]:
        head = folder / ".git" / "HEAD"
        if head.is_file():
            try:
                text = head.read_text().strip()
                if text.startswith("ref: "):
                    ref = folder / ".git" / text[5:]
                    if ref.is_file():
                        return ref.read_text().strip()
                    packed = folder / ".git" / "packed-refs"
                    if packed.is_file():
                        for line in packed.read_text().splitlines():
                            if line.endswith(" " + text[5:]):
                                return line.split()[0]
                    return "unknown"
                return text
            except OSError:
                return "unknown"
    return "unknown"


class RootAPI:
    """Handlers at the top of the URL space."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(
        self,
        store: Any,
        auth: Auth,
        ini_admin: str,
        files: Path | None = None,
        services: Services | None = None,
        ipmi: Any = None,
        ipxe: Path | None = None,
        control_parallel: int = 256,
    ) -> None:
        self.store = store
        self.auth = auth
        # Long-running and bulk requests, polled at /control/status and /config/status.
        self.requests = RequestTable(auth.clock)
        self.config_api = ConfigAPI(store, auth, ini_admin, self.requests)
        self.boot = BootAPI(store, auth)
        self.files = FilesAPI(store, auth, files, ipxe)
        self.services = with_luna2(services, store, self.boot.renderer)
        self.monitor = MonitorAPI(store, auth, self.services)
        self.service = ServiceAPI(auth, self.services)
        self.control = ControlAPI(
            store,
            auth,
            ipmi,
            limit=control_parallel,
            requests=self.requests,
            actions=self.services.actions,
        )
        self.commit = git_commit(Path(luna2d.__file__).resolve().parent)

    @app.route("/token", methods=["POST"])
    async def token(self, request: Any) -> bytes:
        token = await self.auth.login(read_json(request, MAX_LOGIN_BODY), request)
        return reply(request, {"token": token}, 201)

    @app.route("/version", methods=["GET"])
    def version(self, request: Any) -> bytes:
        return reply(
            request,
            {
                "version": {
                    "luna": luna2d.__version__,
                    "api": luna2d.API_VERSION,
                    "commit": self.commit,
                }
            },
        )

    @app.route("/config/status/<request_id>", methods=["GET"])
    def config_status(self, request: Any, request_id: str) -> bytes:
        return config_status(self.auth, self.requests, request, request_id)

    @app.route("/config", branch=True)
    def config(self, request: Any) -> Any:
        return self.config_api.app.resource()

    @app.route("/boot", branch=True)
    def boot_branch(self, request: Any) -> Any:
        return self.boot.branch(request)

    @app.route("/files", branch=True)
    def files_branch(self, request: Any) -> Any:
        return self.files.app.resource()

    @app.route("/monitor", branch=True)
    def monitor_branch(self, request: Any) -> Any:
        return self.monitor.app.resource()

    @app.route("/service", branch=True)
    def service_branch(self, request: Any) -> Any:
        return self.service.app.resource()

    @app.route("/control", branch=True)
    def control_branch(self, request: Any) -> Any:
        return self.control.app.resource()

    @app.route("/journal/<controller>", methods=["GET"])
    async def journal(self, request: Any, controller: str) -> bytes:
        self.auth.reader(request)
        entries = await self.store.journal(controller)
        return reply(request, {"journal": entries})

    @app.route("/journal", methods=["POST"])
    async def journal_add(self, request: Any) -> bytes:
        self.auth.admin(request)
        entries = envelope(read_json(request), "journal")
        count = await self.store.add_journal(entries)
        return message(request, f"{count} journal entries added", 201)

    @app.route("/", methods=["GET"])
    def index(self, request: Any) -> bytes:
        return reply(request, {"message": "luna2d REST API; see /version"})


MANY_SLASHES = re.compile(rb"/{2,}")


class Guard(Resource):
    """Answers what Klein cannot route (undecodable paths) with JSON, then
    hands every request to the Klein tree."""

    isLeaf = True

    def __init__(self, inner: Resource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.inner = inner

    def render(self, request: Any) -> Any:
        try:
            request.path.decode("utf-8")
            unquote_to_bytes(request.path).decode("utf-8")
        except UnicodeDecodeError:
            return common.message(request, "the request path is not valid UTF-8", 400)
        if b"//" in request.path:
            # Repeated slashes count as one, as the incumbent's router has it:
            # the luna CLI asks for //config/osimage/<o>/osimagetag/<t>/_delete.
            request.path = MANY_SLASHES.sub(b"/", request.path)
            request.postpath = request.path.split(b"/")[1:]
        return self.inner.render(request)  # type: ignore[no-untyped-call]


def build(
    store: Any,
    auth: Auth,
    ini_admin: str,
    files: Path | None = None,
    services: Services | None = None,
    ipmi: Any = None,
    ipxe: Path | None = None,
    control_parallel: int = 256,
) -> Resource:
    """The one resource the HTTP site serves; ``ipmi`` is the IPMI client
    the /control branch uses (none: control actions answer 503); ``ipxe`` the
    directory of the distribution's iPXE binaries, served open under /files;
    ``control_parallel`` how many BMCs one bulk control request talks to at
    once."""
    return Guard(
        RootAPI(
            store, auth, ini_admin, files, services, ipmi, ipxe, control_parallel
        ).app.resource()
    )
