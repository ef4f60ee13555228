# -*- test-case-name: tests.boot.test_boot,tests.boot.test_install,tests.boot.test_policy -*-
"""``/boot``: the iPXE scripts a node network-boots through, and the install
script its initrd runs.

Every script is rendered from ``templates/`` (``luna2d.render``) with facts
the store answers (``luna2d.store.boot``): which node a MAC or an address
belongs to, its boot script's context, the discovery menu. URLs in the
scripts name the controller by the address the request came in on, so a node
is told to come back the way it reached us.

Open: everything here but ``/boot/install``, which is served to an admin
token, or without one to the node's provisioning address while the node
holds a grant (docs/BOOT.md, "Who may claim a node"). The manual boot gives
a MAC to a node only as that policy allows."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from klein import Klein
from twisted.internet.address import IPv4Address, IPv6Address

from luna2d import render
from luna2d.errors import Forbidden, Invalid
from luna2d.model.fields import normalize_mac
from luna2d.resources import common
from luna2d.resources.auth import Auth

TEXT_TYPE = b"text/plain; charset=utf-8"


def text(request: Any, body: str) -> bytes:
    """A plain-text answer (iPXE and shell scripts)."""
    request.setResponseCode(200)
    request.setHeader(b"content-type", TEXT_TYPE)
    request.setHeader(b"cache-control", b"no-store")
    return body.encode("utf-8")


# -- where the controller is --------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """The controller as the requesting node reaches it."""

    scheme: str
    host: str
    port: int

    @property
    def base(self) -> str:
        """``http://host:port`` with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _usable(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return not addr.is_unspecified


def controller_of(request: Any, store: Any) -> Controller:
    """The controller's address on the network the request came in on;
    the controller object's own address (and port) when the connection does
    not tell (a non-IP transport)."""
    scheme = "https" if request.isSecure() else "http"
    local = request.getHost()
    if isinstance(local, (IPv4Address, IPv6Address)) and _usable(local.host):
        host = local.host.split("%", 1)[0]
        mapped = ipaddress.ip_address(host)
        if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
            host = str(mapped.ipv4_mapped)
        return Controller(scheme, host, local.port)
    address = store.controller_address()
    if address is not None:
        return Controller(scheme, address[0], address[1])
    raise Invalid("the controller has no address to give nodes; configure its network")


def client_ip(request: Any) -> str | None:
    """The requester's IP address (IPv4-mapped IPv6 shown as IPv4)."""
    peer = request.getClientAddress()
    host = getattr(peer, "host", None)
    if not isinstance(host, str):
        return None
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _mac(value: str) -> str:
    return normalize_mac(value, "mac")


class BootAPI:
    """Handlers under /boot."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(
        self,
        store: Any,
        auth: Auth,
        renderer: render.Renderer | None = None,
        menu_timeout: int = 5000,
        discovery_timeout: int = 30000,
    ) -> None:
        self.store = store
        self.auth = auth
        self.renderer = renderer or render.default()
        self.menu_timeout = menu_timeout
        self.discovery_timeout = discovery_timeout

    def branch(self, request: Any) -> Any:
        """The resource that answers below /boot. ``/boot`` itself leaves
        nothing of the path for this app to route; it is this app's ``/``."""
        if not request.postpath:
            request.postpath = [b""]
        return self.app.resource()

    def _render(self, request: Any, template: str, **context: Any) -> bytes:
        return text(request, self.renderer.render(template, **context))

    def _entry(self, request: Any, entry: str, who: str = "this machine") -> bytes:
        where = controller_of(request, self.store)
        return self._render(
            request,
            f"{'boot' if entry == render.NORMAL else entry}.ipxe.j2",
            base=where.base,
            controller=where.host,
            timeout=self.menu_timeout,
            cluster=self.store.cluster_name(),
            who=who,
        )

    def _boot(self, request: Any, node: str, mac: str | None) -> bytes:
        where = controller_of(request, self.store)
        template, context = self.store.boot_script(node, mac, where.base, where.host)
        return self._render(request, template, **context)

    @app.route("/", methods=["GET"])
    def menu(self, request: Any) -> bytes:
        """The full menu; a known node (by its address) gets its entry of
        the spec's template table instead."""
        known = self.store.node_at(client_ip(request))
        if known is None:
            return self._entry(request, render.NORMAL)
        name, bootmenu, netboot = known
        return self._entry(request, render.boot_entry(True, bootmenu, netboot), f"node {name}")

    @app.route("/short", methods=["GET"])
    def short(self, request: Any) -> bytes:
        """Straight to the machine's own script by its MAC (no menu)."""
        return self._entry(request, render.SHORT)

    @app.route("/disk", methods=["GET"])
    def disk(self, request: Any) -> bytes:
        """Leave network boot for the local disk."""
        known = self.store.node_at(client_ip(request))
        return self._entry(request, render.DISK, f"node {known[0]}" if known else "this machine")

    @app.route("/search/mac/<mac>", methods=["GET"])
    @app.route("/search/<mac>", methods=["GET"])
    def search(self, request: Any, mac: str) -> bytes:
        """A known MAC boots its node (or its disk, when netboot is off); an
        unknown one gets the discovery menu."""
        mac = _mac(mac)
        known = self.store.node_with_mac(mac)
        if known is not None:
            name, bootmenu, netboot = known
            if render.boot_entry(True, bootmenu, netboot) == render.DISK:
                return self._entry(request, render.DISK, f"node {name}")
            return self._boot(request, name, mac)
        where = controller_of(request, self.store)
        nodes, groups = self.store.discovery_menu()
        return self._render(
            request,
            "discovery.ipxe.j2",
            base=where.base,
            controller=where.host,
            mac=mac,
            nodes=nodes,
            groups=groups,
            timeout=self.discovery_timeout,
        )

    @app.route("/manual/hostname/<node>", methods=["GET"])
    def manual(self, request: Any, node: str) -> bytes:
        """Boot as ``node`` without changing anything."""
        return self._boot(request, node, None)

    @app.route("/manual/hostname/<node>/<mac>", methods=["GET"])
    async def manual_mac(self, request: Any, node: str, mac: str) -> bytes:
        """Boot as ``node`` with this MAC: a node without a MAC takes it; one
        with another MAC only when armed or its group allows it (403)."""
        mac = _mac(mac)
        self.store.node_exists(node)
        await self.store.assign_mac(node, mac)
        return self._boot(request, node, mac)

    @app.route("/manual/group/<group>/<mac>", methods=["GET"])
    async def manual_group(self, request: Any, group: str, mac: str) -> bytes:
        """Boot as the group's node with this MAC, or its first node without one."""
        mac = _mac(mac)
        self.store.group_exists(group)
        name = await self.store.assign_group_mac(group, mac)
        return self._boot(request, name, mac)

    @app.route("/install/<node>", methods=["GET"])
    async def install(self, request: Any, node: str) -> bytes:
        """The node's install script: any time for an admin token; without a
        token, to the node's provisioning address, once per grant."""
        self.store.node_exists(node)
        who = self.auth.principal(request)
        if who is not None and not who.admin:
            raise Forbidden(f"{who.role} tokens may not fetch install scripts")
        if who is None and not self.store.install_source_ok(node, client_ip(request)):
            raise Forbidden(
                f"the install script of {node} is served to an admin token or to "
                f"{node}'s provisioning interface address"
            )
        token = self.auth.issue(node, "node", node=node)
        context = self.store.install_context(
            node, controller_of(request, self.store).base, token, render.heredoc_end
        )
        body = self._render(request, "install.sh.j2", **context)
        if who is None:
            await self.store.take_install(node)
        return body
