# -*- test-case-name: tests.test_objects,tests.test_kinds_table -*-
"""The three interface modes of the kind table, as hooks:

- ``multi``: named interfaces with a network, an address and a MAC (nodes);
  a new object takes every interface of its template and of the object its
  ``ipam_parent`` field names (a node's group), each with a free address;
- ``network``: named interfaces with a network only (group templates); a
  change is carried to the objects that take their interfaces from it;
- ``single``: one address, shown as top-level ``network`` and ``ipaddress``
  (switches, other devices, controllers).

Addresses themselves are chosen and checked by ``store/ipam.py``."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid
from luna2d.model.fields import (
    INTERFACE_RE,
    NAME_RE,
    Field,
    coerce,
    normalize_mac,
    parse_ip,
)
from luna2d.model.kinds import KINDS, NETWORK, Kind
from luna2d.store import hooks, ipam
from luna2d.store.body import Body
from luna2d.store.state import Iface, Obj, Tx
from luna2d.store.views import provision_iface

IFACE_KEYS = frozenset(
    {"interface", "network", "ipaddress", "macaddress", "options", "force", "vlanid", "dhcp"}
)
_FORCE = Field("force", "bool")
_OPTIONS = Field("options", "str")


def _iface_name(entry: dict[str, Any], label: str) -> str:
    name = entry.get("interface")
    if not isinstance(name, str) or not INTERFACE_RE.fullmatch(name):
        raise Invalid(f"{label}.interface: {name!r} is not a valid interface name")
    return name


def _entry(entry: Any, label: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise Invalid(f"{label}: expected an interface object")
    unknown = set(entry) - IFACE_KEYS
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown interface field")
    return entry


def _options(entry: dict[str, Any], old: Iface | None, label: str) -> str | None:
    if "options" in entry:
        value: str | None = coerce(_OPTIONS, entry.get("options"), f"{label}.options")
        return value
    return old.options if old else None


def network_named(tx: Tx, value: Any, label: str) -> Obj:
    """The network ``value`` names, or Invalid naming ``label``."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise Invalid(f"{label}: {value!r} is not a network name")
    network = tx.get(NETWORK.name, value)
    if network is None:
        raise Invalid(f"{label}: network {value!r} does not exist")
    return network


def _allocate(tx: Tx, network: Obj, label: str) -> str:
    ip = ipam.next_free(tx, network)
    if ip is None:
        raise Invalid(f"{label}: network {network.name} has no free address left")
    return ip


def _template_parent(kind: Kind) -> str | None:
    """The ref field naming the object whose interface templates this kind
    takes (a node's group): the ref to a kind of mode ``network``."""
    for f in kind.refs:
        target = KINDS.get(f.ref or "")
        if target is not None and target.interfaces == "network":
            return f.name
    return None


def _parent(tx: Tx, obj: Obj) -> Obj | None:
    field = _template_parent(KINDS[obj.kind])
    return tx.obj(obj.data.get(field)) if field else None


# -- multi: named interfaces with addresses and MACs --------------------------------------


def put_multi_iface(tx: Tx, obj: Obj, raw: Any, label: str, force_all: bool = False) -> None:
    """Add or update one interface of a node from an API entry."""
    entry = _entry(raw, label)
    name = _iface_name(entry, label)
    force = coerce(_FORCE, entry.get("force"), f"{label}.force") or force_all
    old = obj.iface(name)
    parent = _parent(tx, obj)
    template = parent.iface(name) if parent is not None else None
    network: Obj | None = None
    if entry.get("network") not in (None, ""):
        network = network_named(tx, entry["network"], f"{label}.network")
    elif old is not None and old.network is not None:
        network = tx.obj(old.network)
    elif template is not None and template.network:
        network = tx.obj(template.network)
    elif entry.get("ipaddress"):
        network = ipam.network_holding(tx, entry["ipaddress"], f"{label}.ipaddress")
    ip: str | None
    holder = (obj.id, name)
    if entry.get("ipaddress") not in (None, ""):
        if network is None:
            raise Invalid(f"{label}.network: needed to place the address of interface {name}")
        ip = ipam.check_address(
            tx, network, str(entry["ipaddress"]), holder, f"{label}.ipaddress", force
        )
    elif network is None:
        ip = None
    elif old is not None and old.ip and old.network == network.id:
        ip = old.ip
    elif old is not None and old.ip and ipam.fits(old.ip, network):
        try:
            ip = ipam.check_address(tx, network, old.ip, holder, label)
        except Invalid:
            ip = _allocate(tx, network, label)
    else:
        ip = _allocate(tx, network, label)
    if "macaddress" in entry:
        value = entry["macaddress"]
        mac = None if value in (None, "") else normalize_mac(value, f"{label}.macaddress")
    else:
        mac = old.mac if old else None
    if mac is not None:
        taken = tx.macs.get(mac)
        if taken is not None and taken != holder:
            raise Invalid(
                f"{label}.macaddress: {mac} already belongs to {ipam.holder_name(tx, taken)}"
            )
    tx.put_iface(
        obj, Iface(name, network.id if network else None, ip, mac, _options(entry, old, label))
    )


def fill_from(tx: Tx, obj: Obj, template: Obj | None) -> None:
    """Give a new object every interface of its template (a clone's source)
    and of its parent (a node's group) that it does not have yet."""
    sources = [s for s in (template, _parent(tx, obj)) if s is not None]
    for source in sources:
        for item in source.ifaces:
            if obj.iface(item.name) is None:
                entry: dict[str, Any] = {"interface": item.name, "options": item.options}
                network = tx.obj(item.network)
                if network is not None:
                    entry["network"] = network.name
                put_multi_iface(tx, obj, entry, f"interface {item.name}")


def regroup(tx: Tx, obj: Obj) -> None:
    """An object moved to another parent: keep addresses that still fit,
    give a free one where the network changed, add the new interfaces."""
    parent = _parent(tx, obj)
    if parent is None:
        return
    for item in parent.ifaces:
        mine = obj.iface(item.name)
        network = tx.obj(item.network)
        if mine is None or network is None:
            entry: dict[str, Any] = {"interface": item.name}
            if network is not None:
                entry["network"] = network.name
            put_multi_iface(tx, obj, entry, f"interface {item.name}")
        elif mine.network != network.id:
            put_multi_iface(
                tx, obj, {"interface": item.name, "network": network.name}, f"interface {item.name}"
            )


def set_boot_mac(tx: Tx, obj: Obj, value: Any) -> None:
    """``macaddr``: the MAC of the provisioning interface."""
    name = provision_iface(tx, obj)
    if obj.iface(name) is None:
        raise Invalid(f"macaddr: {obj.kind} {obj.name} has no interface {name} to carry it")
    put_multi_iface(tx, obj, {"interface": name, "macaddress": value}, "macaddr")


class MultiInterfaces(hooks.Hooks):
    """Nodes: named interfaces with addresses and MACs."""

    def apply(self, tx: Tx, obj: Obj, body: Body, change: hooks.Change) -> None:
        if body.interfaces is not None:
            for index, entry in enumerate(body.interfaces):
                put_multi_iface(tx, obj, entry, f"interfaces[{index}]")
        field = _template_parent(body.kind)
        if change.created:
            fill_from(tx, obj, change.template)
        elif field is not None and change.before.get(field) != obj.data.get(field):
            regroup(tx, obj)
        if "macaddr" in body.virtual:
            set_boot_mac(tx, obj, body.virtual["macaddr"])

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        out["interfaces"] = interface_views(reader, obj)
        boot = obj.iface(provision_iface(reader, obj))
        out["macaddr"] = boot.mac if boot else None

    def put_interface(self, tx: Tx, obj: Obj, raw: Any, label: str) -> None:
        put_multi_iface(tx, obj, raw, label)

    def drop_interface(self, tx: Tx, obj: Obj, name: str) -> None:
        tx.drop_iface(obj, name)


# -- network: interface templates with a network only ---------------------------------------


def _takers(tx: Tx, template: Obj) -> list[Obj]:
    """The objects that take their interfaces from ``template``."""
    out: list[Obj] = []
    for kind in KINDS.values():
        field = _template_parent(kind) if kind.interfaces == "multi" else None
        if field is not None:
            out.extend(o for o in tx.all(kind.name) if o.data.get(field) == template.id)
    return out


def put_template_iface(tx: Tx, group: Obj, raw: Any, label: str) -> None:
    """Add or change a group interface and carry the change to its members."""
    entry = _entry(raw, label)
    name = _iface_name(entry, label)
    if "ipaddress" in entry or "macaddress" in entry:
        raise Invalid(f"{label}: group interfaces carry a network only, not addresses")
    old = group.iface(name)
    network: Obj | None
    if entry.get("network") not in (None, ""):
        network = network_named(tx, entry["network"], f"{label}.network")
    elif old is not None:
        network = tx.obj(old.network) if old.network else None
    else:
        raise Invalid(f"{label}.network: required for the new interface {name}")
    tx.put_iface(
        group, Iface(name, network.id if network else None, None, None, _options(entry, old, label))
    )
    old_network = old.network if old else None
    for member in _takers(tx, group):
        mine = member.iface(name)
        if mine is None:
            member = tx.edit(member)
            put_multi_iface(
                tx, member, {"interface": name}, f"{label} for {member.kind} {member.name}"
            )
        elif (
            network is not None
            and mine.network != network.id
            and mine.network in (None, old_network)
        ):
            member = tx.edit(member)
            put_multi_iface(
                tx,
                member,
                {"interface": name, "network": network.name},
                f"{label} for {member.kind} {member.name}",
            )


class TemplateInterfaces(hooks.Hooks):
    """Groups: interface templates with a network only."""

    def apply(self, tx: Tx, obj: Obj, body: Body, change: hooks.Change) -> None:
        if body.interfaces is not None:
            for index, entry in enumerate(body.interfaces):
                put_template_iface(tx, obj, entry, f"interfaces[{index}]")

    def clone(self, tx: Tx, source: Obj, obj: Obj, body: Body) -> None:
        for item in source.ifaces:
            tx.put_iface(obj, Iface(item.name, item.network, None, None, item.options))

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        out["interfaces"] = interface_views(reader, obj)

    def put_interface(self, tx: Tx, obj: Obj, raw: Any, label: str) -> None:
        put_template_iface(tx, obj, raw, label)

    def drop_interface(self, tx: Tx, obj: Obj, name: str) -> None:
        tx.drop_iface(obj, name)
        for member in _takers(tx, obj):
            if member.iface(name) is not None:
                tx.drop_iface(tx.edit(member), name)


# -- single: one address -------------------------------------------------------------------


def put_single_iface(tx: Tx, obj: Obj, body: Body) -> None:
    """The one address of a switch, other device or controller."""
    given_net, net_value = body.network
    given_ip, ip_value = body.ipaddress
    if not given_net and not given_ip:
        return
    old = obj.ifaces[0] if obj.ifaces else None
    if given_net and net_value in (None, "") and (not given_ip or ip_value in (None, "")):
        if old is not None:
            tx.drop_iface(obj, old.name)
        return
    network: Obj | None = None
    old_network = tx.obj(old.network) if old is not None else None
    if given_net and net_value not in (None, ""):
        network = network_named(tx, net_value, "network")
    elif given_ip and ip_value not in (None, ""):
        _ip_text(ip_value)
        if old_network is not None and ipam.fits(str(parse_ip(ip_value, "ipaddress")), old_network):
            network = old_network
        else:
            network = ipam.network_holding(tx, ip_value, "ipaddress")
    elif old is not None:
        network = old_network
    name = old.name if old else obj.kind
    if network is None:
        raise Invalid("network: required to give an address")
    if given_ip and ip_value not in (None, ""):
        ip = ipam.check_address(
            tx,
            network,
            _ip_text(ip_value),
            (obj.id, name),
            "ipaddress",
            force=True,
            infra=KINDS[obj.kind].infra,
        )
    elif old is not None and old.ip and old.network == network.id:
        ip = old.ip
    else:
        ip = _allocate(tx, network, "ipaddress")
    tx.put_iface(obj, Iface(name, network.id, ip, None, None))


def _ip_text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"ipaddress: expected an IP address string, got {value!r}")
    return value


class SingleInterface(hooks.Hooks):
    """Switches, other devices, controllers: one address."""

    def apply(self, tx: Tx, obj: Obj, body: Body, change: hooks.Change) -> None:
        put_single_iface(tx, obj, body)

    def clone(self, tx: Tx, source: Obj, obj: Obj, body: Body) -> None:
        if source.ifaces and not body.ipaddress[0] and not body.network[0]:
            network = tx.obj(source.ifaces[0].network)
            if network is not None:
                body.network = (True, network.name)

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        item = obj.ifaces[0] if obj.ifaces else None
        network = reader.obj(item.network) if item else None
        out["network"] = network.name if network else None
        out["ipaddress"] = item.ip if item else None


def interface_views(reader: Any, obj: Obj) -> list[dict[str, Any]]:
    """A named-interface object's interfaces as the API shows them."""
    with_addresses = KINDS[obj.kind].holds_addresses
    out = []
    for item in obj.ifaces:
        network = reader.obj(item.network)
        entry: dict[str, Any] = {
            "interface": item.name,
            "network": network.name if network else None,
        }
        if with_addresses:
            entry["ipaddress"] = item.ip
            entry["macaddress"] = item.mac
        entry["options"] = item.options
        out.append(entry)
    return out


hooks.for_mode("multi", MultiInterfaces())
hooks.for_mode("network", TemplateInterfaces())
hooks.for_mode("single", SingleInterface())
