# -*- test-case-name: tests.test_objects,tests.test_kinds_table,tests.clients.test_config_shapes -*-
"""The interface modes of the kind table, as hooks:

- ``multi``: named interfaces with a network, an address and a MAC (nodes);
  a new object takes every interface of its clone source and of the object
  that gives it templates (its reference to a kind of mode ``network``: a
  node's group), each with a free address;
- ``network``: interface templates (groups), in ``store/templates.py``;
- ``single``: one address (switches, other devices, controllers), in
  ``store/single.py``.

Interfaces of both named modes carry the settings of the kind table's
``INTERFACE_SETTINGS`` (VLAN, MTU, DHCP, bonding), kept per interface name
in the object's ``ifsettings``, and may be renamed (``newinterfacename``
in an interface entry, as the TrinityX CLI sends it).

Addresses themselves are chosen and checked by ``store/ipam.py``."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import (
    INTERFACE_RE,
    NAME_RE,
    Field,
    coerce,
    encode_field,
    normalize_mac,
)
from luna2d.model.kinds import IFSETTINGS, INTERFACE_SETTINGS, KINDS, NETWORK, Kind
from luna2d.store import hooks, ipam
from luna2d.store.body import Body
from luna2d.store.state import Iface, Obj, Tx
from luna2d.store.views import provision_iface

SETTINGS: dict[str, Field] = {f.name: f for f in INTERFACE_SETTINGS}
RENAME_KEY = "newinterfacename"
IFACE_KEYS = frozenset(
    {"interface", "network", "ipaddress", "macaddress", "options", "force", RENAME_KEY}
) | frozenset(SETTINGS)
_FORCE = Field("force", "bool")
_OPTIONS = Field("options", "str", wire="either")


def iface_name(entry: dict[str, Any], label: str) -> str:
    name = entry.get("interface")
    if not isinstance(name, str) or not INTERFACE_RE.fullmatch(name):
        raise Invalid(f"{label}.interface: {name!r} is not a valid interface name")
    return name


def entry_of(entry: Any, label: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise Invalid(f"{label}: expected an interface object")
    unknown = set(entry) - IFACE_KEYS
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown interface field")
    return entry


def wire_options(options: str | None) -> str | None:
    """An interface's stored options as answered (and as sent again when
    an interface is copied: the answered form reads back unchanged)."""
    return None if options is None else encode_field(_OPTIONS, options)


def options_of(entry: dict[str, Any], old: Iface | None, label: str) -> str | None:
    if "options" in entry:
        value: str | None = coerce(_OPTIONS, entry.get("options"), f"{label}.options")
        return value
    return old.options if old else None


def settings_of(obj: Obj, name: str) -> dict[str, Any]:
    """The settings (VLAN, MTU, DHCP, bonding) of ``obj``'s interface ``name``."""
    return dict((obj.data.get(IFSETTINGS.name) or {}).get(name) or {})


def _store_settings(obj: Obj, name: str, values: dict[str, Any]) -> None:
    every = dict(obj.data.get(IFSETTINGS.name) or {})
    if values:
        every[name] = values
    else:
        every.pop(name, None)
    if every:
        obj.data[IFSETTINGS.name] = every
    else:
        obj.data.pop(IFSETTINGS.name, None)


def put_settings(obj: Obj, name: str, entry: dict[str, Any], label: str) -> None:
    """Set on the edited ``obj``'s interface ``name`` the settings ``entry``
    names; "" or null unsets one."""
    values = settings_of(obj, name)
    for key, f in SETTINGS.items():
        if key not in entry:
            continue
        raw = entry[key]
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            values.pop(key, None)
            continue
        value = coerce(f, raw, f"{label}.{key}")
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    _store_settings(obj, name, values)


def drop_settings(obj: Obj, name: str) -> None:
    """Forget the settings of an interface that is gone."""
    if name in (obj.data.get(IFSETTINGS.name) or {}):
        _store_settings(obj, name, {})


def rename_iface(tx: Tx, obj: Obj, old_name: str, new_name: Any, label: str) -> None:
    """Give the edited ``obj``'s interface ``old_name`` the name
    ``new_name``, with its network, address, MAC, options, settings and
    place. When it is the object's provisioning interface, the object's own
    ``provision_interface`` follows; one inherited from elsewhere is not
    changed behind the admin's back: the rename is refused."""
    if not isinstance(new_name, str) or not INTERFACE_RE.fullmatch(new_name):
        raise Invalid(f"{label}.{RENAME_KEY}: {new_name!r} is not a valid interface name")
    item = obj.iface(old_name)
    if item is None:
        raise NotFound(f"{obj.kind} {obj.name!r} has no interface {old_name!r}")
    if new_name == old_name:
        return
    if obj.iface(new_name) is not None:
        raise Invalid(
            f"{label}.{RENAME_KEY}: {obj.kind} {obj.name} already has an interface {new_name}"
        )
    if KINDS[obj.kind].field("provision_interface") is not None:
        if obj.data.get("provision_interface") == old_name:
            obj.data["provision_interface"] = new_name
        elif provision_iface(tx, obj) == old_name:
            raise Invalid(
                f"{label}.{RENAME_KEY}: {old_name} is the provisioning interface of "
                f"{obj.kind} {obj.name} (provision_interface, inherited); set "
                f"provision_interface to {new_name} in the same request"
            )
    index = obj.ifaces.index(item)
    tx.drop_iface(obj, old_name)
    tx.put_iface(obj, Iface(new_name, item.network, item.ip, item.mac, item.options))
    obj.ifaces.insert(index, obj.ifaces.pop())
    moved = settings_of(obj, old_name)
    drop_settings(obj, old_name)
    _store_settings(obj, new_name, moved)


def renamed_entry(tx: Tx, obj: Obj, entry: dict[str, Any], label: str) -> dict[str, Any]:
    """``entry`` after the rename it asks for (if any), naming the interface
    by its new name."""
    if entry.get(RENAME_KEY) in (None, ""):
        return entry
    old_name = iface_name(entry, label)
    rename_iface(tx, obj, old_name, entry[RENAME_KEY], label)
    rest = {k: v for k, v in entry.items() if k != RENAME_KEY}
    rest["interface"] = entry[RENAME_KEY]
    return rest


def network_named(tx: Tx, value: Any, label: str) -> Obj:
    """The network ``value`` names, or Invalid naming ``label``."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise Invalid(f"{label}: {value!r} is not a network name")
    network = tx.get(NETWORK.name, value)
    if network is None:
        raise Invalid(f"{label}: network {value!r} does not exist")
    return network


def allocate(tx: Tx, network: Obj, label: str) -> str:
    ip = ipam.next_free(tx, network)
    if ip is None:
        raise Invalid(f"{label}: network {network.name} has no free address left")
    return ip


def template_parent(kind: Kind) -> str | None:
    """The ref field naming the object whose interface templates this kind
    takes (a node's group): the ref to a kind of mode ``network``."""
    for f in kind.refs:
        target = KINDS.get(f.ref or "")
        if target is not None and target.interfaces == "network":
            return f.name
    return None


def _parent(tx: Tx, obj: Obj) -> Obj | None:
    field = template_parent(KINDS[obj.kind])
    return tx.obj(obj.data.get(field)) if field else None


# -- multi: named interfaces with addresses and MACs --------------------------------------


def put_multi_iface(tx: Tx, obj: Obj, raw: Any, label: str, force_all: bool = False) -> None:
    """Add or update one interface of a node from an API entry."""
    entry = renamed_entry(tx, obj, entry_of(raw, label), label)
    name = iface_name(entry, label)
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
            ip = allocate(tx, network, label)
    else:
        ip = allocate(tx, network, label)
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
        obj, Iface(name, network.id if network else None, ip, mac, options_of(entry, old, label))
    )
    put_settings(obj, name, entry, label)


def fill_from(tx: Tx, obj: Obj, template: Obj | None) -> None:
    """Give a new object every interface of its template (a clone's source)
    and of its parent (a node's group) that it does not have yet."""
    sources = [s for s in (template, _parent(tx, obj)) if s is not None]
    for source in sources:
        for item in source.ifaces:
            if obj.iface(item.name) is None:
                entry: dict[str, Any] = {
                    "interface": item.name,
                    "options": wire_options(item.options),
                    **settings_of(source, item.name),
                }
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
            if mine is None:
                entry.update(settings_of(parent, item.name))
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
        field = template_parent(body.kind)
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
        drop_settings(obj, name)


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
        entry["options"] = wire_options(item.options)
        entry.update(settings_of(obj, item.name))
        out.append(entry)
    return out


hooks.for_mode("multi", MultiInterfaces())
