"""``/boot``: the iPXE scripts a node network-boots through, and the install
script its initrd runs.

Every script is rendered from ``templates/`` (``luna2d.render``) with facts
read from the store's memory: which node a MAC belongs to, its address,
osimage files and boot flags, resolved through inheritance. URLs in the
scripts name the controller by the address the request came in on, so a node
is told to come back the way it reached us.

Open: everything here but ``/boot/install``, which is served to an admin
token or to the node's own address only (it carries a token for that node
and the node's BMC credentials)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from klein import Klein
from twisted.internet.address import IPv4Address, IPv6Address

from luna2d import render
from luna2d.errors import Forbidden, Invalid, NotFound
from luna2d.model.fields import NAME_RE, normalize_mac
from luna2d.model.kinds import KINDS
from luna2d.resources import common
from luna2d.resources.auth import Auth
from luna2d.store import objects, views
from luna2d.store.state import Iface, Obj, Tx, ip_key

TEXT_TYPE = b"text/plain; charset=utf-8"
NODE = KINDS["node"]
DEFAULT_PORT = 7050
# iPXE's own MAC variable: used where the script, not the server, knows the MAC.
IPXE_MAC = "${netX/mac}"


def text(request: Any, body: str) -> bytes:
    """A plain-text answer (iPXE and shell scripts)."""
    request.setResponseCode(200)
    request.setHeader(b"content-type", TEXT_TYPE)
    request.setHeader(b"cache-control", b"no-store")
    return body.encode("utf-8")


def effective(reader: Any, node: Obj, field: str) -> Any:
    """A node field's value after inheritance (group, cluster, default)."""
    return views.resolve(reader, NODE, node, NODE.by_name[field])[0]


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


def controller_of(request: Any, reader: Any) -> Controller:
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
    for controller in reader.all("controller"):
        if controller.ifaces and controller.ifaces[0].ip:
            return Controller(scheme, controller.ifaces[0].ip,
                              controller.data.get("serverport") or DEFAULT_PORT)
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


# -- what the store says about a node -------------------------------------------------------


def node_by_mac(reader: Any, mac: str) -> Obj | None:
    """The node one of whose interfaces carries ``mac``."""
    holder = reader.macs.get(mac)
    if holder is None:
        return None
    obj = reader.obj(holder[0])
    return obj if obj is not None and obj.kind == "node" else None


def node_by_ip(reader: Any, ip: str | None) -> Obj | None:
    """The node one of whose interfaces holds ``ip``."""
    if ip is None:
        return None
    holder = reader.ips.get(ip_key(ip))
    obj = reader.obj(holder[0]) if holder is not None else None
    return obj if obj is not None and obj.kind == "node" else None


def node_named(reader: Any, name: str) -> Obj:
    """The node ``name``, or NotFound."""
    node = reader.get("node", name) if NAME_RE.fullmatch(name) else None
    if node is None:
        raise NotFound(f"node {name!r} does not exist")
    return node


def _mac(value: str) -> str:
    return normalize_mac(value, "mac")


def boot_flags(reader: Any, node: Obj) -> tuple[bool, bool]:
    """(bootmenu, netboot) of a node, inherited values resolved."""
    return bool(effective(reader, node, "bootmenu")), bool(effective(reader, node, "netboot"))


def provisioning(reader: Any, node: Obj) -> tuple[str, Iface | None, Obj | None]:
    """The provisioning interface's name, the interface and its network."""
    name = effective(reader, node, "provision_interface") or "BOOTIF"
    item = node.iface(name)
    network = reader.obj(item.network) if item is not None else None
    return name, item, network


def image_files(reader: Any, node: Obj) -> tuple[Obj | None, dict]:
    """The node's osimage and the files it boots: the osimage's own, or
    those of the node's osimage tag when the tag exists."""
    image = reader.obj(effective(reader, node, "osimage"))
    if image is None:
        return None, {}
    files = {key: image.data.get(key) for key in ("kernelfile", "initrdfile", "imagefile", "torrent")}
    tag = effective(reader, node, "osimagetag")
    tagged = (image.data.get("tags") or {}).get(tag) if tag else None
    if tagged:
        files = {**{key: tagged.get(key) for key in ("kernelfile", "initrdfile", "imagefile")}, "torrent": None}
    return image, files


def fqdn(reader: Any, node: Obj) -> str:
    """``<node>.<effective domain>``, or the bare name without a domain."""
    domain = effective(reader, node, "domain")
    return f"{node.name}.{domain}" if domain else node.name


def node_script(reader: Any, node: Obj, mac: str | None, where: Controller) -> tuple[str, dict]:
    """The template and context that boot ``node`` (or explain why it cannot)."""
    _, item, network = provisioning(reader, node)
    boot_mac = mac or (item.mac if item is not None else None) or IPXE_MAC
    base = {"base": where.base, "controller": where.host, "node": node.name, "mac": boot_mac, "retry": 30}
    image, files = image_files(reader, node)
    if image is None:
        return "noboot.ipxe.j2", {**base, "reason": "it has no osimage (set one on the node or its group)"}
    missing = [key for key in ("kernelfile", "initrdfile") if not files.get(key)]
    if missing:
        return "noboot.ipxe.j2", {**base, "reason": f"osimage {image.name} has no {' and no '.join(missing)}"}
    ip = item.ip if item is not None else None
    prefix = ipaddress.ip_network(network.data["network"]).prefixlen if ip and network is not None else None
    return "node.ipxe.j2", {
        **base,
        "kernel_url": f"{where.base}/files/{render.urlpath(files['kernelfile'])}",
        "initrd_url": f"{where.base}/files/{render.urlpath(files['initrdfile'])}",
        "bootproto": "static" if ip and prefix is not None else "dhcp",
        "ip": ip if prefix is not None else None,
        "prefix": prefix,
        "hostname": fqdn(reader, node),
        "service": 1 if node.data.get("service") else 0,
        "kernel_options": image.data.get("kerneloptions") or "",
    }


def discovery_menu(reader: Any) -> tuple[list[dict], list[dict]]:
    """The nodes and groups an unknown machine may choose to become."""
    nodes = []
    free: dict[int, int] = {}
    size: dict[int, int] = {}
    for node in sorted(reader.all("node"), key=lambda n: n.name):
        _, item, _ = provisioning(reader, node)
        group = reader.obj(node.data.get("group"))
        mac = item.mac if item is not None else None
        label = node.name + (f" (now {mac})" if mac else " (no MAC yet)") + (f" [{group.name}]" if group else "")
        nodes.append({"name": node.name, "label": label})
        if group is not None:
            size[group.id] = size.get(group.id, 0) + 1
            if item is not None and mac is None:
                free[group.id] = free.get(group.id, 0) + 1
    groups = [
        {"name": g.name, "label": f"{g.name} ({free.get(g.id, 0)} of {size.get(g.id, 0)} nodes without a MAC)"}
        for g in sorted(reader.all("group"), key=lambda g: g.name)
    ]
    return nodes, groups


# -- writes: manual boot gives a node the MAC it booted with ----------------------------------


def assign_mac(tx: Tx, node_name: str, mac: str) -> bool:
    """Give ``mac`` to the provisioning interface of ``node_name``, taking it
    away from whichever interface had it. False when nothing changed."""
    node = objects.require(tx, "node", node_name)
    iface = views.provision_iface(tx, node)
    holder = tx.macs.get(mac)
    if holder == (node.id, iface):
        return False
    if node.iface(iface) is None:
        raise Invalid(f"mac: node {node_name} has no interface {iface} to carry {mac}")
    if holder is not None:
        owner = tx.obj(holder[0])
        item = owner.iface(holder[1]) if owner is not None else None
        if owner is not None and item is not None:
            tx.put_iface(tx.edit(owner), Iface(item.name, item.network, item.ip, None, item.options))
    objects.set_boot_mac(tx, tx.edit(objects.require(tx, "node", node_name)), mac)
    return True


def assign_group_mac(tx: Tx, group_name: str, mac: str) -> str:
    """The node of ``group_name`` that boots with ``mac``: the one that has
    it already, else the first (by name) whose provisioning interface has no
    MAC, which is given it."""
    group = objects.require(tx, "group", group_name)
    current = node_by_mac(tx, mac)
    if current is not None and current.data.get("group") == group.id:
        return current.name
    for node in sorted(tx.all("node"), key=lambda n: n.name):
        if node.data.get("group") != group.id:
            continue
        item = node.iface(views.provision_iface(tx, node))
        if item is not None and item.mac is None:
            assign_mac(tx, node.name, mac)
            return node.name
    raise Invalid(f"group {group_name!r} has no node left without a MAC address; create one first")


# -- the install script ---------------------------------------------------------------------------


def _script(name: str, value: str | None) -> dict | None:
    if not value or not value.strip():
        return None
    body = value.replace("\r\n", "\n")
    if not body.endswith("\n"):
        body += "\n"
    return {"name": name, "text": body, "end": render.heredoc_end(body, name.upper())}


def install_context(reader: Any, node: Obj, where: Controller, token: str) -> dict:
    """Everything ``install.sh.j2`` renders for ``node``."""
    image, files = image_files(reader, node)
    provision_name, _, _ = provisioning(reader, node)
    scripts = [s for s in (_script(n, effective(reader, node, n)) for n in ("prescript", "partscript", "postscript")) if s]
    secrets = []
    group = reader.obj(node.data.get("group"))
    for owner in (group, node):
        for secret in owner.secrets if owner is not None else ():
            if not secret.path:
                continue
            body = secret.content if secret.content.endswith("\n") else secret.content + "\n"
            folder = secret.path.rsplit("/", 1)[0] or "/"
            secrets.append({"path": secret.path, "folder": folder, "text": body,
                            "end": render.heredoc_end(body, "SECRET")})
    setupbmc = bool(effective(reader, node, "setupbmc"))
    bmc = None
    setup = reader.obj(effective(reader, node, "bmcsetup"))
    if setupbmc and setup is not None:
        item = node.bmc_iface()
        network = reader.obj(item.network) if item is not None else None
        netmask = str(ipaddress.ip_network(network.data["network"]).netmask) if network is not None else None
        defaults = {f.name: f.default for f in KINDS["bmcsetup"].fields}
        value = {key: setup.data.get(key, defaults.get(key)) for key in defaults}
        bmc = {
            "ip": item.ip if item is not None and netmask else None,
            "netmask": netmask,
            "gateway": network.data.get("gateway") if network is not None else None,
            "netchannel": int(value["netchannel"] if value["netchannel"] is not None else 1),
            "mgmtchannel": int(value["mgmtchannel"] if value["mgmtchannel"] is not None else 1),
            "userid": int(value["userid"] if value["userid"] is not None else 2),
            "username": value["username"] or "",
            "password": value["password"] or "",
            "unmanaged": effective(reader, node, "unmanaged_bmc_users") or value["unmanaged_bmc_users"] or "skip",
        }
    return {
        "node": node.name,
        "hostname": fqdn(reader, node),
        "base": where.base,
        "token": token,
        "osimage": image.name if image is not None else "",
        "imagefile": files.get("imagefile") or "",
        "torrent": files.get("torrent") or "",
        "provision_method": effective(reader, node, "provision_method") or "",
        "provision_fallback": effective(reader, node, "provision_fallback") or "",
        "provision_interface": provision_name,
        "localinstall": 1 if effective(reader, node, "localinstall") else 0,
        "setupbmc": 1 if setupbmc else 0,
        "bmc": bmc,
        "scripts": scripts,
        "secrets": secrets,
    }


class BootAPI:
    """Handlers under /boot."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(self, store: Any, auth: Auth, renderer: render.Renderer | None = None,
                 menu_timeout: int = 5000, discovery_timeout: int = 30000) -> None:
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
        state = self.store.state
        where = controller_of(request, state)
        cluster = state.singleton("cluster")
        return self._render(request, f"{'boot' if entry == render.NORMAL else entry}.ipxe.j2",
                            base=where.base, controller=where.host, timeout=self.menu_timeout,
                            cluster=cluster.name if cluster else "cluster", who=who)

    def _boot(self, request: Any, node: Obj, mac: str | None, obey_flags: bool) -> bytes:
        state = self.store.state
        if obey_flags:
            bootmenu, netboot = boot_flags(state, node)
            if render.boot_entry(True, bootmenu, netboot) == render.DISK:
                return self._entry(request, render.DISK, f"node {node.name}")
        template, context = node_script(state, node, mac, controller_of(request, state))
        return self._render(request, template, **context)

    @app.route("/", methods=["GET"])
    def menu(self, request: Any) -> bytes:
        """The full menu; a known node (by its address) gets its entry of
        the spec's template table instead."""
        node = node_by_ip(self.store.state, client_ip(request))
        if node is None:
            return self._entry(request, render.NORMAL)
        bootmenu, netboot = boot_flags(self.store.state, node)
        return self._entry(request, render.boot_entry(True, bootmenu, netboot), f"node {node.name}")

    @app.route("/short", methods=["GET"])
    def short(self, request: Any) -> bytes:
        """Straight to the machine's own script by its MAC (no menu)."""
        return self._entry(request, render.SHORT)

    @app.route("/disk", methods=["GET"])
    def disk(self, request: Any) -> bytes:
        """Leave network boot for the local disk."""
        node = node_by_ip(self.store.state, client_ip(request))
        return self._entry(request, render.DISK, f"node {node.name}" if node else "this machine")

    @app.route("/search/mac/<mac>", methods=["GET"])
    @app.route("/search/<mac>", methods=["GET"])
    def search(self, request: Any, mac: str) -> bytes:
        """A known MAC boots its node (or its disk, when netboot is off); an
        unknown one gets the discovery menu."""
        mac = _mac(mac)
        state = self.store.state
        node = node_by_mac(state, mac)
        if node is not None:
            return self._boot(request, node, mac, obey_flags=True)
        where = controller_of(request, state)
        nodes, groups = discovery_menu(state)
        return self._render(request, "discovery.ipxe.j2", base=where.base, controller=where.host, mac=mac,
                            nodes=nodes, groups=groups, timeout=self.discovery_timeout)

    @app.route("/manual/hostname/<node>", methods=["GET"])
    def manual(self, request: Any, node: str) -> bytes:
        """Boot as ``node`` without changing anything."""
        return self._boot(request, node_named(self.store.state, node), None, obey_flags=False)

    @app.route("/manual/hostname/<node>/<mac>", methods=["GET"])
    async def manual_mac(self, request: Any, node: str, mac: str) -> bytes:
        """Boot as ``node``: the MAC becomes the node's (taken from any other)."""
        mac = _mac(mac)
        node_named(self.store.state, node)
        await self.store.write(assign_mac, node, mac)
        return self._boot(request, node_named(self.store.state, node), mac, obey_flags=False)

    @app.route("/manual/group/<group>/<mac>", methods=["GET"])
    async def manual_group(self, request: Any, group: str, mac: str) -> bytes:
        """Boot as the group's node with this MAC, or its first node without one."""
        mac = _mac(mac)
        if not NAME_RE.fullmatch(group) or self.store.state.get("group", group) is None:
            raise NotFound(f"group {group!r} does not exist")
        name = await self.store.write(assign_group_mac, group, mac)
        return self._boot(request, node_named(self.store.state, name), mac, obey_flags=False)

    @app.route("/install/<node>", methods=["GET"])
    def install(self, request: Any, node: str) -> bytes:
        """The node's install script, for an admin or the node itself."""
        state = self.store.state
        obj = node_named(state, node)
        source = client_ip(request)
        if source is None or not any(item.ip == source for item in obj.ifaces):
            who = self.auth.principal(request)
            if who is None or not who.admin:
                raise Forbidden(f"the install script of {node} is served to an admin token or to {node} itself")
        token = self.auth.issue(obj.name, "node", node=obj.name)
        context = install_context(state, obj, controller_of(request, state), token)
        return self._render(request, "install.sh.j2", **context)
