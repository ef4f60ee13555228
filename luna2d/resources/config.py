# -*- test-case-name: tests.test_api_config,tests.boot.test_policy,tests.clients -*-
"""``/config``: one set of handlers for every object kind, plus the few
endpoints that only some kinds have (network addresses, osimage tags,
secrets, racks, the cluster)."""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.internet import defer

from luna2d.errors import Forbidden, Invalid, NotFound, Unavailable
from luna2d.model.fields import NAME_RE
from luna2d.model.kinds import GENERIC, KINDS, SECRET_OWNERS
from luna2d.requests import RequestTable
from luna2d.resources import common, jsonlist
from luna2d.resources.auth import Auth, check_node_update
from luna2d.resources.boot import client_ip
from luna2d.resources.common import (
    envelope,
    message,
    no_content,
    read_json,
    reply,
    single,
)
from luna2d.store import objects

KERNEL_FIELDS = {"kernelversion", "kernver", "kernelfile", "initrdfile", "name"}


def _kind(kind: str) -> str:
    if kind not in GENERIC:
        raise NotFound(f"there is no object kind {kind!r} under /config")
    return kind


def _name(kind: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise NotFound(f"{kind} {name!r} does not exist")
    return name


def _has_body(request: Any) -> bool:
    """Whether the request carries anything but whitespace (``_arm``'s body is optional)."""
    content = request.content
    if content is None:
        return False
    content.seek(0)
    has = bool(content.read(4096).strip())
    content.seek(0)
    return has


def _wrap(kind: str, name: str, payload: Any) -> dict[str, Any]:
    return {"config": {kind: {name: payload}}}


def _created_or_updated(request: Any, created: bool, text: str) -> bytes:
    """A write's answer: 201 with ``text`` when it made something new, else 204."""
    if created:
        return message(request, text, 201)
    return no_content(request)


class ConfigAPI:
    """Handlers under /config."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(
        self, store: Any, auth: Auth, ini_admin: str, requests: RequestTable | None = None
    ) -> None:
        self.store = store
        self.auth = auth
        self.ini_admin = ini_admin
        # /config requests polled at /config/status (osimage clone).
        self.requests = requests if requests is not None else RequestTable(auth.clock)

    def _reveal(self, request: Any) -> bool:
        return self.auth.reader(request).admin

    # -- cluster ----------------------------------------------------------------------
    @app.route("/cluster", methods=["GET"])
    def cluster_show(self, request: Any) -> bytes:
        self.auth.reader(request)
        return reply(request, {"config": {"cluster": self.store.cluster()}})

    @app.route("/cluster", methods=["POST"])
    async def cluster_update(self, request: Any) -> bytes:
        self.auth.admin(request)
        body = envelope(read_json(request), "config", "cluster")
        await self.store.write(objects.update_cluster, body)
        return no_content(request)

    # -- networks ---------------------------------------------------------------------
    @app.route("/network/<name>/_nextfreeip", methods=["GET"])
    def nextfreeip(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        ip = self.store.nextfreeip(_name("network", name))
        if ip is None:
            raise NotFound(f"network {name!r} has no free address left")
        return reply(request, _wrap("network", name, {"nextip": ip}))

    @app.route("/network/<name>/_list", methods=["GET"])
    def taken(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        return reply(
            request, _wrap("network", name, {"taken": self.store.taken(_name("network", name))})
        )

    def network_members(self, request: Any, name: str) -> bytes:
        """A network's members, and its taken addresses as ``luna network
        reserve`` reads them (``taken``: ipaddress and device, as ``_list``)."""
        self.auth.reader(request)
        network = _name("network", name)
        answer = {
            "members": self.store.members("network", network),
            "taken": self.store.taken(network),
        }
        return reply(request, _wrap("network", name, answer))

    @app.route("/network/<name>/<ip>", methods=["GET"])
    async def ipinfo(self, request: Any, name: str, ip: str) -> bytes:
        # This route shadows the generic GET routes of a network.
        if ip == "_member":
            return self.network_members(request, name)
        if ip == "_delete":
            return await self.delete(request, "network", name)
        if ip == "interfaces":
            return self.interfaces(request, "network", name)
        self.auth.reader(request)
        return reply(
            request, {"config": {"network": {ip: self.store.ipinfo(_name("network", name), ip)}}}
        )

    # -- osimage extras -------------------------------------------------------------------
    # -- extra DNS records of a network (luna network dns; store/dns.py) -----------------
    @app.route("/dns/<network>", methods=["GET"])
    def dns_show(self, request: Any, network: str) -> bytes:
        self.auth.reader(request)
        records = self.store.dns_records(_name("network", network))
        return reply(request, _wrap("dns", network, records))

    @app.route("/dns/<network>", methods=["POST"])
    async def dns_update(self, request: Any, network: str) -> bytes:
        self.auth.admin(request)
        records = envelope(read_json(request), "config", "dns", _name("network", network))
        await self.store.put_dns_records(network, records)
        return message(request, "DNS entries added or changed", 201)

    @app.route("/dns/<network>/<host>/_delete", methods=["GET", "POST"])
    async def dns_delete(self, request: Any, network: str, host: str) -> bytes:
        self.auth.admin(request)
        await self.store.delete_dns_record(_name("network", network), host)
        return no_content(request)

    @app.route("/osimage/<name>/_pack", methods=["GET"])
    def pack(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        self.store.show("osimage", _name("osimage", name))
        raise Unavailable(f"osimage {name!r}: packing is not available in this luna2d release yet")

    @app.route("/osimage/<name>/kernel", methods=["POST"])
    async def kernel(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), "osimage", name)
        if not isinstance(body, dict) or not body or set(body) - KERNEL_FIELDS:
            raise Invalid(
                "config.osimage: the kernel endpoint takes kernelversion, kernelfile and "
                "initrdfile only"
            )
        await self.store.write(objects.upsert, "osimage", _name("osimage", name), body, False)
        return no_content(request)

    @app.route("/osimage/<name>/tag", methods=["POST"])
    async def tag(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), "osimage", name)
        # 204 whether the tag is new or moved, as the spec and the CLI want.
        await self.store.write(objects.put_tag, _name("osimage", name), body)
        return no_content(request)

    @app.route("/osimage/<name>/osimagetag/<tag>/_delete", methods=["GET"])
    async def tag_delete(self, request: Any, name: str, tag: str) -> bytes:
        self.auth.admin(request)
        await self.store.write(objects.delete_tag, _name("osimage", name), tag)
        return no_content(request)

    @app.route("/osimagetag", methods=["GET"])
    def tags(self, request: Any) -> bytes:
        self.auth.reader(request)
        return reply(request, {"config": {"osimagetag": self.store.tags()}})

    @app.route("/osimagetag/<name>", methods=["GET"])
    def tags_of(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        return reply(request, {"config": {"osimagetag": self.store.tags(_name("osimage", name))}})

    @app.route("/osimagetag/<name>/_member", methods=["GET"])
    @app.route("/osimagetag/<name>/_list", methods=["GET"])
    def tag_members(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        members = self.store.members("osimagetag", _name("osimage", name))
        return reply(request, _wrap("osimage", name, {"members": members}))

    # -- secrets -------------------------------------------------------------------------
    def _secret_reader(self, request: Any, owner_kind: str, owner: str) -> bool:
        who = self.auth.need(request)
        if who.role == "node":
            if owner_kind != "node" or who.node != owner:
                raise Forbidden(f"this token belongs to node {who.node}")
            return True
        return who.admin

    @staticmethod
    def _owner_kind(owner_kind: str) -> str:
        if owner_kind not in SECRET_OWNERS:
            raise NotFound(f"secrets belong to a node or a group, not to {owner_kind!r}")
        return owner_kind

    @staticmethod
    def _secret_items(body: Any, owner_kind: str, owner: str) -> Any:
        if isinstance(body, dict) and "config" not in body and "secrets" in body:
            body = {"config": body}
        return single({"config": envelope(body, "config", "secrets")}, owner_kind, owner)

    @app.route("/secrets", methods=["GET"])
    def secrets(self, request: Any) -> bytes:
        reveal = self._reveal(request)
        return reply(request, {"config": {"secrets": self.store.secrets(reveal=reveal)}})

    @app.route("/secrets/<owner_kind>/<owner>", methods=["GET"])
    def secrets_of(self, request: Any, owner_kind: str, owner: str) -> bytes:
        reveal = self._secret_reader(request, self._owner_kind(owner_kind), owner)
        return reply(
            request, {"config": {"secrets": self.store.secrets(owner_kind, owner, reveal=reveal)}}
        )

    @app.route("/secrets/<owner_kind>/<owner>", methods=["POST"])
    async def secrets_put(self, request: Any, owner_kind: str, owner: str) -> bytes:
        self.auth.admin(request)
        items = self._secret_items(read_json(request), self._owner_kind(owner_kind), owner)
        outcome = await self.store.write(objects.put_secrets, owner_kind, owner, items)
        return self._secret_outcome(request, outcome, owner_kind, owner)

    @staticmethod
    def _secret_outcome(request: Any, outcome: str, owner_kind: str, owner: str) -> bytes:
        if outcome == "created":
            return message(request, f"secrets created for {owner_kind} {owner}", 201)
        # "updated" and "unchanged" both answer 204: the CLI's `secrets change`
        # reads 204 as success, and every other kind answers 204 to a POST
        # that changes nothing.
        return no_content(request)

    @app.route("/secrets/<owner_kind>/<owner>/<secret>", methods=["GET"])
    def secret_show(self, request: Any, owner_kind: str, owner: str, secret: str) -> bytes:
        reveal = self._secret_reader(request, self._owner_kind(owner_kind), owner)
        return reply(
            request, {"config": {"secrets": self.store.secrets(owner_kind, owner, secret, reveal)}}
        )

    @app.route("/secrets/<owner_kind>/<owner>/<secret>", methods=["POST"])
    async def secret_put(self, request: Any, owner_kind: str, owner: str, secret: str) -> bytes:
        self.auth.admin(request)
        items = self._secret_items(read_json(request), self._owner_kind(owner_kind), owner)
        outcome = await self.store.write(objects.put_secrets, owner_kind, owner, items, secret)
        return self._secret_outcome(request, outcome, owner_kind, owner)

    @app.route("/secrets/<owner_kind>/<owner>/<secret>/_clone", methods=["POST"])
    async def secret_clone(self, request: Any, owner_kind: str, owner: str, secret: str) -> bytes:
        self.auth.admin(request)
        items = self._secret_items(read_json(request), self._owner_kind(owner_kind), owner)
        await self.store.write(objects.clone_secret, owner_kind, owner, secret, items)
        return message(request, f"secret {secret} of {owner_kind} {owner} cloned", 201)

    @app.route("/secrets/<owner_kind>/<owner>/<secret>/_delete", methods=["GET"])
    async def secret_delete(self, request: Any, owner_kind: str, owner: str, secret: str) -> bytes:
        self.auth.admin(request)
        await self.store.write(objects.delete_secret, self._owner_kind(owner_kind), owner, secret)
        return no_content(request)

    @app.route("/secrets/<owner_kind>/<owner>/<secret>/_delete", methods=["POST"])
    def secret_delete_post(self, request: Any, owner_kind: str, owner: str, secret: str) -> bytes:
        self.auth.admin(request)
        raise Invalid("deleting a secret is GET .../_delete; POST is not supported")

    # -- racks and inventory ---------------------------------------------------------------
    @app.route("/rack/inventory", methods=["GET"])
    def inventory(self, request: Any) -> bytes:
        self.auth.reader(request)
        return reply(request, {"config": {"rack": {"inventory": self.store.inventory()}}})

    @app.route("/rack/inventory", methods=["POST"])
    async def inventory_update(self, request: Any) -> bytes:
        self.auth.admin(request)
        items = envelope(read_json(request), "config", "rack", "inventory")
        await self.store.write(objects.update_inventory, items)
        return no_content(request)

    @app.route("/rack/inventory/<subset>", methods=["GET"])
    def inventory_subset(self, request: Any, subset: str) -> bytes:
        self.auth.reader(request)
        return reply(request, {"config": {"rack": {"inventory": self.store.inventory(subset)}}})

    @app.route("/rack/inventory/<device>/type/<dtype>/_delete", methods=["GET"])
    async def inventory_clear(self, request: Any, device: str, dtype: str) -> bytes:
        self.auth.admin(request)
        await self.store.write(objects.clear_inventory, device, dtype)
        return no_content(request)

    # -- arming a node for network boot (docs/BOOT.md, "Who may claim a node") ---------------
    @app.route("/node/<name>/_arm", methods=["GET"])
    def armed(self, request: Any, name: str) -> bytes:
        self.auth.reader(request)
        return reply(request, _wrap("node", name, self.store.arming(_name("node", name))))

    @app.route("/node/<name>/_arm", methods=["POST"])
    async def arm(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), "node", name) if _has_body(request) else None
        await self.store.arm(_name("node", name), body)
        return no_content(request)

    @app.route("/node/<name>/_disarm", methods=["POST"])
    async def disarm(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        await self.store.disarm(_name("node", name))
        return no_content(request)

    # -- users ------------------------------------------------------------------------------
    @app.route("/user/<name>", methods=["POST"])
    async def user_put(self, request: Any, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), "user", name)
        created = await self.store.put_user(name, body, self.ini_admin)
        return _created_or_updated(request, created, f"user {name} created")

    # -- every kind -------------------------------------------------------------------------
    @app.route("/<kind>", methods=["GET"])
    def list(self, request: Any, kind: str) -> bytes | defer.Deferred[bytes]:
        reveal = self._reveal(request)
        edge = getattr(request, "edge", None)
        if edge is None:  # a bare Site (unit tests): all at once
            return reply(request, {"config": {_kind(kind): self.store.objects_of(kind, reveal)}})
        # 10,000 nodes are 0.6 s of CPU: rendered in slices (resources/jsonlist.py).
        items = self.store.views_of(_kind(kind), reveal)
        return jsonlist.envelope_sliced(request, edge.cooperator, kind, items)

    @app.route("/<kind>", methods=["POST"])
    def list_post(self, request: Any, kind: str) -> bytes:
        self.auth.admin(request)
        if kind == "secrets":
            raise Invalid(
                "POST /config/secrets is not supported; POST to /config/secrets/{node,group}/<name>"
            )
        _kind(kind)
        raise Invalid(f"POST /config/{kind} is not supported; POST to /config/{kind}/<name>")

    @app.route("/<kind>/<name>", methods=["GET"])
    def show(self, request: Any, kind: str, name: str) -> bytes:
        reveal = self._reveal(request)
        return reply(
            request, _wrap(kind, name, self.store.show(_kind(kind), _name(kind, name), reveal))
        )

    @app.route("/<kind>/<name>", methods=["POST"])
    async def update(self, request: Any, kind: str, name: str) -> bytes:
        who = self.auth.need(request)
        if who.role == "readonly":
            raise Forbidden("readonly tokens may not change anything")
        _kind(kind)
        body = single(read_json(request), kind, name)
        if who.role == "node":
            if kind != "node":
                raise Forbidden("a node token may only update its own node")
            check_node_update(who, name, body)
            # Its own address only by the boot policy's rules (docs/BOOT.md).
            await self.store.node_report(name, body, client_ip(request))
            return no_content(request)
        if who.role != "admin":
            raise Forbidden(f"{who.role} tokens may not change anything")
        if kind == "rack" and name == "inventory":
            raise Invalid("name: 'inventory' is reserved")
        if kind == "user":
            raise Invalid("users are managed through POST /config/user/<name>")
        created = await self.store.write(objects.upsert, kind, name, body)
        return _created_or_updated(request, created, f"{kind} {name} created")

    @app.route("/<kind>/<name>/_clone", methods=["POST"])
    async def clone(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), _kind(kind), name)
        if kind == "user":
            raise Invalid("users cannot be cloned")
        if kind == "osimage":
            return await self._clone_osimage(request, name, body)
        new = await self.store.write(objects.clone, kind, _name(kind, name), body)
        return message(request, f"{kind} {name} cloned as {new}", 201)

    async def _clone_osimage(self, request: Any, name: str, body: Any) -> bytes:
        """``luna osimage clone``: the CLI reads only a 200 with a
        ``request_id``, then polls /config/status. Copying the image's files
        comes with issue 11: until then only ``nocopy: true`` (the record,
        sharing the source's path unless the body gives one) is done; without
        it the answer is 503 and nothing is created."""
        fields = dict(body) if isinstance(body, dict) else body
        options: dict[str, bool] = {}
        if isinstance(fields, dict):
            for option in ("nocopy", "bare"):
                value = fields.pop(option, None)
                if value not in (None, True, False):
                    raise Invalid(f"{option}: expected true or false, got {value!r}")
                options[option] = bool(value)
        self.store.show("osimage", _name("osimage", name))
        if not options.get("nocopy"):
            raise Unavailable(
                f"osimage {name!r}: cloning with its image files is not available in this luna2d "
                f"release yet; nocopy (luna osimage clone --nocopy) clones the record only"
            )
        new = await self.store.write(objects.clone, "osimage", _name("osimage", name), fields)
        tracked = self.requests.start("config", 1, {"action": "clone"})
        path = self.store.show("osimage", new).get("path")
        self.requests.record(
            tracked, new, True, f"cloned from {name} without its files (nocopy); path {path}"
        )
        self.requests.finish(tracked)
        return reply(
            request, {"message": f"osimage {name} cloned as {new}", "request_id": tracked.id}
        )

    @app.route("/<kind>/<name>/_delete", methods=["GET"])
    async def delete(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.admin(request)
        await self.store.write(objects.delete, _kind(kind), _name(kind, name))
        return no_content(request)

    @app.route("/<kind>/<name>/_delete", methods=["POST"])
    def delete_post(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.admin(request)
        raise Invalid(f"deleting is GET /config/{kind}/{name}/_delete; POST is not supported")

    @app.route("/<kind>/<name>/_list", methods=["GET"])
    @app.route("/<kind>/<name>/_member", methods=["GET"])
    def members(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.reader(request)
        members = self.store.members(_kind(kind), _name(kind, name))
        return reply(request, _wrap(kind, name, {"members": members}))

    # -- interfaces of nodes and groups -----------------------------------------------------------
    @staticmethod
    def _iface_kind(kind: str) -> str:
        if kind not in KINDS or not KINDS[kind].named_interfaces:
            raise NotFound(f"{kind} objects have no interfaces endpoint")
        return kind

    @app.route("/<kind>/<name>/interfaces", methods=["GET"])
    def interfaces(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.reader(request)
        items = self.store.interfaces(self._iface_kind(kind), _name(kind, name))
        return reply(request, _wrap(kind, name, {"interfaces": items}))

    @app.route("/<kind>/<name>/interfaces", methods=["POST"])
    async def interfaces_put(self, request: Any, kind: str, name: str) -> bytes:
        self.auth.admin(request)
        body = single(read_json(request), self._iface_kind(kind), name)
        entries = envelope(body, "interfaces")
        # 204 for a new interface too: ``luna group changeinterface`` (which
        # adds as well as changes) reads only 204, the other interface
        # commands read 204 or 201 (docs/API.md, "Interfaces").
        await self.store.write(objects.put_interfaces, kind, _name(kind, name), entries)
        return no_content(request)

    @app.route("/<kind>/<name>/interfaces/<iface>", methods=["GET"])
    def interface(self, request: Any, kind: str, name: str, iface: str) -> bytes:
        self.auth.reader(request)
        items = self.store.interfaces(self._iface_kind(kind), _name(kind, name), iface)
        return reply(request, _wrap(kind, name, {"interfaces": items}))

    @app.route("/<kind>/<name>/interfaces/<iface>/_delete", methods=["GET"])
    async def interface_delete(self, request: Any, kind: str, name: str, iface: str) -> bytes:
        self.auth.admin(request)
        await self.store.write(
            objects.delete_interface, self._iface_kind(kind), _name(kind, name), iface
        )
        return no_content(request)
