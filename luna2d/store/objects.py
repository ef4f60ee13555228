"""The generic object machinery: create-or-update, rename, clone, delete,
interfaces. Every function here works on a Tx and raises LunaError values;
nothing here does I/O. Kind-specific behaviour hangs off the kind table
(interface mode, references, inheritance) and a few hooks below."""

from __future__ import annotations

import ipaddress
from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import (
    INTERFACE_RE,
    NAME_RE,
    SECRET_NAME_RE,
    Field,
    coerce,
    normalize_mac,
    parse_ip,
)
from luna2d.model.kinds import KINDS, RACK_TYPES, Kind, referrers
from luna2d.store import ipam
from luna2d.store.state import Iface, Obj, Secret, Tx, ip_key
from luna2d.store.views import provision_iface

# Keys a client may send back unchanged from a GET; they are not stored.
OUTPUT_ONLY = {"members", "tags", "devices", "_override"}
IFACE_KEYS = {"interface", "network", "ipaddress", "macaddress", "options", "force", "vlanid", "dhcp"}


def check_name(kind: str, name: Any, label: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid(
            f"{label}: {name!r} is not a valid {kind} name "
            "(lowercase letters, digits, '.', '_' and '-', at most 63 characters)"
        )
    if kind == "rack" and name == "inventory":
        raise Invalid(f"{label}: 'inventory' is reserved")
    return name


def require(tx: Tx, kind: str, name: str) -> Obj:
    obj = tx.get(kind, name)
    if obj is None:
        raise NotFound(f"{kind} {name!r} does not exist")
    return obj


def _ref(tx: Tx, f: Field, value: str | None, label: str) -> int | None:
    if value is None:
        return None
    target = tx.get(f.ref or "", value)
    if target is None:
        raise Invalid(f"{label}: {f.ref} {value!r} does not exist")
    return target.id


class Body:
    """A request body for one object, split into its parts."""

    def __init__(self, kind: Kind, name: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise Invalid(f"the {kind.name} {name!r} must be a JSON object of fields")
        self.kind = kind
        self.new_name: str | None = None
        self.values: dict[str, Any] = {}
        self.given: set[str] = set()
        self.interfaces: list | None = None
        self.network: tuple[bool, Any] = (False, None)
        self.ipaddress: tuple[bool, Any] = (False, None)
        self.macaddr: tuple[bool, Any] = (False, None)
        self.extra: dict[str, Any] = {}
        for key, value in raw.items():
            if not isinstance(key, str):
                raise Invalid("field names must be strings")
            if key in kind.rename:
                if value not in (None, "", name):
                    self.new_name = check_name(kind.name, value, key)
                continue
            if key == "name":
                if value not in (None, name):
                    raise Invalid(
                        f"name: {value!r} differs from {name!r} in the path; "
                        f"use {kind.rename[0] if kind.rename else 'a new object'} to rename"
                    )
                continue
            if kind.name == "rack" and key == "devices":
                # A rack's devices are its content, not an echoed output.
                self.extra["devices"] = value
                continue
            if key in OUTPUT_ONLY or (key.startswith("_") and key.endswith("_source")):
                continue
            if key == "interfaces" and kind.interfaces in ("multi", "network"):
                if not isinstance(value, list):
                    raise Invalid("interfaces: expected a list of interface objects")
                self.interfaces = value
                continue
            if kind.interfaces == "single" and key in ("network", "ipaddress"):
                setattr(self, key, (True, value))
                continue
            if kind.name == "node" and key in ("macaddr", "macaddress"):
                self.macaddr = (True, value)
                continue
            f = kind.field(key)
            if f is None or f.internal:
                raise Invalid(f"{key}: unknown field for {kind.name}")
            if f.name in self.given and key != f.name:
                # Both spellings given: the canonical one wins.
                continue
            self.values[f.name] = coerce(f, value, key)
            self.given.add(f.name)


# -- create or update ------------------------------------------------------------------


def upsert(tx: Tx, kind_name: str, name: str, raw: Any, allow_create: bool = True) -> bool:
    """Create ``name`` or update it with the fields in ``raw``; True when created."""
    kind = KINDS[kind_name]
    check_name(kind.name, name)
    body = Body(kind, name, raw)
    existing = tx.get(kind.name, name)
    if existing is None:
        if not allow_create:
            raise NotFound(f"{kind.name} {name!r} does not exist")
        missing = [f for f in kind.required if body.values.get(f) is None]
        if missing:
            raise Invalid(f"{missing[0]}: required to create {kind.name} {name!r}")
        obj = tx.create(kind.name, name)
        created = True
    else:
        obj = tx.edit(existing)
        created = False
    apply_body(tx, obj, body, created)
    if body.new_name is not None:
        rename(tx, obj, body.new_name)
    return created


def apply_body(tx: Tx, obj: Obj, body: Body, created: bool, template: Obj | None = None) -> None:
    kind = body.kind
    before = dict(obj.data)
    for fname in kind.required:
        if fname in body.given and body.values.get(fname) is None:
            raise Invalid(f"{fname}: required for {kind.name} {obj.name!r}; it cannot be unset")
    for fname, value in body.values.items():
        f = kind.by_name[fname]
        if f.type == "ref":
            value = _ref(tx, f, value, fname)
        if value is None:
            obj.data.pop(fname, None)
        else:
            obj.data[fname] = value
    if kind.name == "network":
        network_hook(tx, obj, before, body, created)
    if kind.interfaces == "multi":
        if body.interfaces is not None:
            for index, entry in enumerate(body.interfaces):
                put_node_iface(tx, obj, entry, f"interfaces[{index}]")
        if created:
            fill_from(tx, obj, template)
        elif before.get("group") != obj.data.get("group"):
            regroup(tx, obj)
        if body.macaddr[0]:
            set_boot_mac(tx, obj, body.macaddr[1])
    elif kind.interfaces == "network":
        if body.interfaces is not None:
            for index, entry in enumerate(body.interfaces):
                put_group_iface(tx, obj, entry, f"interfaces[{index}]")
    elif kind.interfaces == "single":
        put_single_iface(tx, obj, body, created)
    if kind.name == "rack" and "devices" in body.extra:
        place_devices(tx, obj, body.extra["devices"])
    elif kind.name == "rack" and not created:
        check_rack(tx, obj)  # a smaller size must still hold its devices


def rename(tx: Tx, obj: Obj, new_name: str) -> None:
    if new_name == obj.name:
        return
    if tx.get(obj.kind, new_name) is not None:
        raise Invalid(f"{obj.kind} {new_name!r} already exists")
    tx.rename(obj, new_name)


# -- interfaces --------------------------------------------------------------------------


def _iface_name(entry: dict, label: str) -> str:
    name = entry.get("interface")
    if not isinstance(name, str) or not INTERFACE_RE.fullmatch(name):
        raise Invalid(f"{label}.interface: {name!r} is not a valid interface name")
    return name


def _entry(entry: Any, label: str) -> dict:
    if not isinstance(entry, dict):
        raise Invalid(f"{label}: expected an interface object")
    unknown = set(entry) - IFACE_KEYS
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown interface field")
    return entry


def _network(tx: Tx, value: Any, label: str) -> Obj:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise Invalid(f"{label}: {value!r} is not a network name")
    network = tx.get("network", value)
    if network is None:
        raise Invalid(f"{label}: network {value!r} does not exist")
    return network


def _network_holding(tx: Tx, ip: str, label: str) -> Obj:
    addr = parse_ip(ip, label)
    # The most specific network holding it; the oldest one among equals.
    holding = [n for n in tx.all("network") if addr in ipam.net_of(n)]
    if holding:
        return min(holding, key=lambda n: (-ipam.net_of(n).prefixlen, n.id))
    raise Invalid(f"{label}: no configured network holds {addr}")


def _allocate(tx: Tx, network: Obj, label: str) -> str:
    ip = ipam.next_free(tx, network)
    if ip is None:
        raise Invalid(f"{label}: network {network.name} has no free address left")
    return ip


def put_node_iface(tx: Tx, obj: Obj, raw: Any, label: str, force_all: bool = False) -> None:
    """Add or update one interface of a node from an API entry."""
    entry = _entry(raw, label)
    name = _iface_name(entry, label)
    force = coerce(Field("force", "bool"), entry.get("force"), f"{label}.force") or force_all
    old = obj.iface(name)
    group = tx.obj(obj.data.get("group"))
    network: Obj | None = None
    if entry.get("network") not in (None, ""):
        network = _network(tx, entry["network"], f"{label}.network")
    elif old is not None and old.network is not None:
        network = tx.obj(old.network)
    elif group is not None and group.iface(name) is not None and group.iface(name).network:
        network = tx.obj(group.iface(name).network)
    elif entry.get("ipaddress"):
        network = _network_holding(tx, entry["ipaddress"], f"{label}.ipaddress")
    ip: str | None
    holder = (obj.id, name)
    if entry.get("ipaddress") not in (None, ""):
        if network is None:
            raise Invalid(f"{label}.network: needed to place the address of interface {name}")
        ip = ipam.check_address(tx, network, str(entry["ipaddress"]), holder, f"{label}.ipaddress", force)
    elif network is None:
        ip = None
    elif old is not None and old.ip and old.network == network.id:
        ip = old.ip
    elif old is not None and old.ip and ipaddress.ip_address(old.ip) in ipam.net_of(network):
        try:
            ip = ipam.check_address(tx, network, old.ip, holder, label)
        except Invalid:
            ip = _allocate(tx, network, label)
    else:
        ip = _allocate(tx, network, label)
    if "macaddress" in entry:
        mac = None if entry["macaddress"] in (None, "") else normalize_mac(entry["macaddress"], f"{label}.macaddress")
    else:
        mac = old.mac if old else None
    if mac is not None:
        taken = tx.macs.get(mac)
        if taken is not None and taken != holder:
            raise Invalid(f"{label}.macaddress: {mac} already belongs to {ipam.holder_name(tx, taken)}")
    options = coerce(Field("options", "str"), entry.get("options"), f"{label}.options") if "options" in entry else (
        old.options if old else None
    )
    tx.put_iface(obj, Iface(name, network.id if network else None, ip, mac, options))


def put_group_iface(tx: Tx, group: Obj, raw: Any, label: str) -> None:
    """Add or change a group interface and carry the change to its members."""
    entry = _entry(raw, label)
    name = _iface_name(entry, label)
    if "ipaddress" in entry or "macaddress" in entry:
        raise Invalid(f"{label}: group interfaces carry a network only, not addresses")
    old = group.iface(name)
    if entry.get("network") not in (None, ""):
        network = _network(tx, entry["network"], f"{label}.network")
    elif old is not None:
        network = tx.obj(old.network) if old.network else None
    else:
        raise Invalid(f"{label}.network: required for the new interface {name}")
    options = coerce(Field("options", "str"), entry.get("options"), f"{label}.options") if "options" in entry else (
        old.options if old else None
    )
    tx.put_iface(group, Iface(name, network.id if network else None, None, None, options))
    old_network = old.network if old else None
    for node in list(tx.all("node")):
        if node.data.get("group") != group.id:
            continue
        mine = node.iface(name)
        if mine is None:
            node = tx.edit(node)
            put_node_iface(tx, node, {"interface": name}, f"{label} for node {node.name}")
        elif network is not None and mine.network != network.id and mine.network in (None, old_network):
            node = tx.edit(node)
            put_node_iface(tx, node, {"interface": name, "network": network.name}, f"{label} for node {node.name}")


def fill_from(tx: Tx, node: Obj, template: Obj | None) -> None:
    """Give a new node every interface of its template (a cloned node) and
    of its group that it does not have yet, each with a free address."""
    sources = []
    if template is not None:
        sources.append(template)
    group = tx.obj(node.data.get("group"))
    if group is not None:
        sources.append(group)
    for source in sources:
        for item in source.ifaces:
            if node.iface(item.name) is None:
                entry: dict[str, Any] = {"interface": item.name, "options": item.options}
                network = tx.obj(item.network)
                if network is not None:
                    entry["network"] = network.name
                put_node_iface(tx, node, entry, f"interface {item.name}")


def regroup(tx: Tx, node: Obj) -> None:
    """A node moved to another group: keep addresses that still fit, give
    a free one where the network changed, add the group's new interfaces."""
    group = tx.obj(node.data.get("group"))
    if group is None:
        return
    for item in group.ifaces:
        mine = node.iface(item.name)
        network = tx.obj(item.network)
        if mine is None or network is None:
            entry: dict[str, Any] = {"interface": item.name}
            if network is not None:
                entry["network"] = network.name
            put_node_iface(tx, node, entry, f"interface {item.name}")
        elif mine.network != network.id:
            put_node_iface(tx, node, {"interface": item.name, "network": network.name}, f"interface {item.name}")


def set_boot_mac(tx: Tx, node: Obj, value: Any) -> None:
    name = provision_iface(tx, node)
    if node.iface(name) is None:
        raise Invalid(f"macaddr: node {node.name} has no interface {name} to carry it")
    put_node_iface(tx, node, {"interface": name, "macaddress": value}, "macaddr")


def put_single_iface(tx: Tx, obj: Obj, body: Body, created: bool) -> None:
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
    if given_net and net_value not in (None, ""):
        network = _network(tx, net_value, "network")
    elif given_ip and ip_value not in (None, ""):
        if not isinstance(ip_value, str):
            raise Invalid(f"ipaddress: expected an IP address string, got {ip_value!r}")
        if old is not None and old.network is not None and ipaddress.ip_address(
            _canonical_ip(ip_value, "ipaddress")
        ) in ipam.net_of(tx.obj(old.network)):
            network = tx.obj(old.network)
        else:
            network = _network_holding(tx, ip_value, "ipaddress")
    elif old is not None:
        network = tx.obj(old.network)
    name = old.name if old else obj.kind
    holder = (obj.id, name)
    if network is None:
        raise Invalid("network: required to give an address")
    if given_ip and ip_value not in (None, ""):
        if not isinstance(ip_value, str):
            raise Invalid(f"ipaddress: expected an IP address string, got {ip_value!r}")
        ip = ipam.check_address(
            tx, network, ip_value, holder, "ipaddress", force=True, infra=obj.kind == "controller"
        )
    elif old is not None and old.ip and old.network == network.id:
        ip = old.ip
    else:
        ip = _allocate(tx, network, "ipaddress")
    tx.put_iface(obj, Iface(name, network.id, ip, None, None))


def _canonical_ip(value: str, label: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"{label}: {value!r} is not an IP address") from None


def put_interfaces(tx: Tx, kind_name: str, name: str, entries: Any) -> bool:
    """POST .../interfaces: add or update the listed interfaces; True when
    any of them is new."""
    obj = tx.edit(require(tx, kind_name, name))
    if not isinstance(entries, list) or not entries:
        raise Invalid("interfaces: expected a non-empty list of interface objects")
    before = {item.name for item in obj.ifaces}
    for index, entry in enumerate(entries):
        if kind_name == "node":
            put_node_iface(tx, obj, entry, f"interfaces[{index}]")
        else:
            put_group_iface(tx, obj, entry, f"interfaces[{index}]")
    return any(item.name not in before for item in obj.ifaces)


def delete_interface(tx: Tx, kind_name: str, name: str, iface: str) -> None:
    obj = require(tx, kind_name, name)
    if obj.iface(iface) is None:
        raise NotFound(f"{kind_name} {name!r} has no interface {iface!r}")
    obj = tx.edit(obj)
    tx.drop_iface(obj, iface)
    if kind_name == "group":
        for node in list(tx.all("node")):
            if node.data.get("group") == obj.id and node.iface(iface) is not None:
                tx.drop_iface(tx.edit(node), iface)


# -- networks --------------------------------------------------------------------------


def network_hook(tx: Tx, network: Obj, before: dict, body: Body, created: bool) -> None:
    """Check a network's addresses and renumber its devices when its CIDR moves."""
    net = ipaddress.ip_network(network.data["network"])
    old_cidr = before.get("network")
    if old_cidr and old_cidr != network.data["network"]:
        old = ipaddress.ip_network(old_cidr)
        if old.version != net.version:
            raise Invalid("network: cannot change the address family of a network")
        for key in ("gateway", "nameserver_ip", "dhcp_range_begin", "dhcp_range_end"):
            if key not in body.given and network.data.get(key):
                moved = ipam.translate(network.data[key], old, net)
                if moved is None:
                    raise Invalid(f"{key}: {network.data[key]} does not fit in {net}; give a new value")
                network.data[key] = moved
        renumber(tx, network, old, net)
    for key in ("gateway", "nameserver_ip", "dhcp_range_begin", "dhcp_range_end"):
        value = network.data.get(key)
        if value and ipaddress.ip_address(value) not in net:
            raise Invalid(f"{key}: {value} is not inside {net}")
        if value and ipaddress.ip_address(value).version != net.version:
            raise Invalid(f"{key}: {value} is not of the network's address family")
    begin, end = network.data.get("dhcp_range_begin"), network.data.get("dhcp_range_end")
    if (begin is None) != (end is None):
        raise Invalid("dhcp_range_begin: the DHCP range needs both its begin and its end")
    if begin is not None:
        b, e = ipaddress.ip_address(begin), ipaddress.ip_address(end)
        if b > e:
            raise Invalid(f"dhcp_range_end: {end} comes before dhcp_range_begin {begin}")
        if b == net.network_address or e == net.broadcast_address:
            raise Invalid("dhcp_range_begin: the DHCP range must not hold the network or broadcast address")
        if network.data.get("dhcp") and (int(e) - int(b)) > 1 << 20:
            raise Invalid("dhcp_range_end: a DHCP range may hold at most 1048576 addresses")
        if not created:
            for obj, iface in ipam.holders_on(tx, network.id):
                item = obj.iface(iface)
                if (
                    item
                    and item.ip
                    and b <= ipaddress.ip_address(item.ip) <= e
                    and obj.kind == "node"
                    and ("dhcp_range_begin" in body.given or "dhcp_range_end" in body.given)
                ):
                    raise Invalid(
                        f"dhcp_range_begin: the range would hold {item.ip} of node {obj.name}"
                    )
    for key in ("gateway", "nameserver_ip"):
        value = network.data.get(key)
        holder = tx.ips.get(ip_key(value)) if value else None
        if holder is not None and getattr(tx.obj(holder[0]), "kind", None) != "controller":
            raise Invalid(f"{key}: {value} is already taken by {ipam.holder_name(tx, holder)}")


def renumber(tx: Tx, network: Obj, old: Any, new: Any) -> None:
    holders = ipam.holders_on(tx, network.id)
    misfits = []
    moves = []
    for obj, name in holders:
        item = obj.iface(name)
        if item is None or not item.ip:
            continue
        moved = ipam.translate(item.ip, old, new)
        if moved is None:
            misfits.append(f"{item.ip} of {obj.name}")
        else:
            moves.append((obj, name, moved))
    if misfits:
        shown = ", ".join(misfits[:5]) + (f" and {len(misfits) - 5} more" if len(misfits) > 5 else "")
        raise Invalid(f"network: {new} cannot hold {shown}")
    edited = []
    for obj, name, _ in moves:
        mine = tx.edit(obj)
        item = mine.iface(name)
        edited.append((mine, item))
        tx.put_iface(mine, Iface(item.name, item.network, None, item.mac, item.options))
    for (mine, item), (_, _, moved) in zip(edited, moves):
        ipam.check_address(tx, network, moved, (mine.id, item.name), f"network (moving {mine.name})", force=True,
                           infra=mine.kind == "controller")
        tx.put_iface(mine, Iface(item.name, item.network, moved, item.mac, item.options))


# -- clone and delete ----------------------------------------------------------------------

NOT_CLONED = {"macaddr", "status", "vendor", "assettag", "tpm_uuid", "tpm_pubkey", "tpm_sha256",
              "rack", "rackposition", "rackheight", "rackorientation", "racktype",
              "armed", "armed_until", "install_grant", "install_grant_until"}


def clone(tx: Tx, kind_name: str, name: str, raw: Any) -> str:
    """Copy ``name`` to the name in the body's ``new...`` field."""
    kind = KINDS[kind_name]
    source = require(tx, kind.name, name)
    body = Body(kind, name, raw)
    if body.new_name is None:
        raise Invalid(f"{kind.rename[0]}: required to clone {kind.name} {name!r}")
    if tx.get(kind.name, body.new_name) is not None:
        raise Invalid(f"{kind.name} {body.new_name!r} already exists")
    obj = tx.create(kind.name, body.new_name)
    obj.data = {k: v for k, v in source.clone().data.items() if k not in NOT_CLONED}
    obj.secrets = [Secret(s.name, s.content, s.path) for s in source.secrets]
    if kind.interfaces == "network":
        for item in source.ifaces:
            tx.put_iface(obj, Iface(item.name, item.network, None, None, item.options))
    if kind.interfaces == "single" and source.ifaces and not body.ipaddress[0]:
        network = tx.obj(source.ifaces[0].network)
        if network is not None and not body.network[0]:
            body.network = (True, network.name)
    apply_body(tx, obj, body, created=True, template=source if kind.interfaces == "multi" else None)
    return obj.name


def users_of(tx: Tx, obj: Obj) -> list[str]:
    """Who still refers to ``obj``: the reason a delete is refused."""
    out = []
    for kind, f in referrers(obj.kind):
        if f.internal:
            continue
        for other in tx.all(kind.name):
            if other.data.get(f.name) == obj.id:
                out.append(f"{kind.name} {other.name}")
    if obj.kind == "network":
        for other, iface in ipam.holders_on(tx, obj.id):
            out.append(f"{other.kind} {other.name} (interface {iface})" if other.kind in ("node", "group")
                       else f"{other.kind} {other.name}")
    return out


def delete(tx: Tx, kind_name: str, name: str) -> None:
    obj = require(tx, kind_name, name)
    users = users_of(tx, obj)
    if users:
        shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
        raise Invalid(f"{kind_name} {name!r} is still used by {shown}")
    if kind_name == "rack":
        for kind in KINDS.values():
            if kind.rack_device:
                for other in list(tx.all(kind.name)):
                    if other.data.get("rack") == obj.id:
                        _unplace(tx.edit(other))
    tx.delete(obj)


# -- cluster --------------------------------------------------------------------------


def update_cluster(tx: Tx, raw: Any) -> None:
    cluster = tx.singleton("cluster")
    if cluster is None:
        raise NotFound("the cluster is not initialised")
    if not isinstance(raw, dict):
        raise Invalid("the cluster must be a JSON object of fields")
    kind = KINDS["cluster"]
    controllers = {c.name for c in tx.all("controller")}
    mine = tx.edit(cluster)
    for key, value in raw.items():
        if key in controllers or key.startswith("controller"):
            raise Invalid(f"{key}: controllers are configured in the ini file, not through the API")
        if key == "name" or key in OUTPUT_ONLY:
            if key == "name" and value not in (None, cluster.name):
                raise Invalid("name: the cluster name cannot be changed")
            continue
        f = kind.field(key)
        if f is None:
            raise Invalid(f"{key}: unknown field for cluster")
        value = coerce(f, value, key)
        if value is None:
            mine.data.pop(f.name, None)
        else:
            mine.data[f.name] = value


# -- secrets ------------------------------------------------------------------------------


def _secret_item(raw: Any, label: str) -> tuple[str, str | None, str | None, str | None]:
    if not isinstance(raw, dict):
        raise Invalid(f"{label}: expected a secret object")
    unknown = set(raw) - {"secretname", "name", "content", "path", "newsecretname"}
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown secret field")
    name = raw.get("secretname", raw.get("name"))
    if not isinstance(name, str) or not SECRET_NAME_RE.fullmatch(name):
        raise Invalid(f"{label}.secretname: {name!r} is not a valid secret name")
    content = coerce(Field("content", "text"), raw.get("content"), f"{label}.content")
    path = coerce(Field("path", "str"), raw.get("path"), f"{label}.path")
    if path is not None and not path.startswith("/"):
        raise Invalid(f"{label}.path: {path!r} must be an absolute path")
    new = raw.get("newsecretname")
    if new is not None and (not isinstance(new, str) or not SECRET_NAME_RE.fullmatch(new)):
        raise Invalid(f"{label}.newsecretname: {new!r} is not a valid secret name")
    return name, content, path, new


def put_secrets(tx: Tx, owner_kind: str, owner: str, items: Any, only: str | None = None) -> str:
    """Create or update secrets of a node or group; answers 'created',
    'updated' or 'unchanged'."""
    obj = require(tx, owner_kind, owner)
    if not isinstance(items, list) or not items:
        raise Invalid(f"secrets: expected a non-empty list of secrets for {owner_kind} {owner}")
    mine = tx.edit(obj)
    outcome = "unchanged"
    for index, raw in enumerate(items):
        name, content, path, new = _secret_item(raw, f"{owner}[{index}]")
        if only is not None and name != only:
            raise Invalid(f"{owner}[{index}].secretname: {name!r} differs from {only!r} in the path")
        current = mine.secret(name)
        if current is None:
            if content is None:
                raise Invalid(f"{owner}[{index}].content: required to create secret {name!r}")
            mine.secrets.append(Secret(name, content, path))
            current = mine.secrets[-1]
            outcome = "created"
        else:
            changed = False
            if content is not None and content != current.content:
                current.content = content
                changed = True
            if "path" in raw and path != current.path:
                current.path = path
                changed = True
            if changed and outcome != "created":
                outcome = "updated"
        if new is not None and new != name:
            if mine.secret(new) is not None:
                raise Invalid(f"{owner}[{index}].newsecretname: secret {new!r} already exists")
            current.name = new
            if outcome != "created":
                outcome = "updated"
    return outcome


def clone_secret(tx: Tx, owner_kind: str, owner: str, name: str, items: Any) -> None:
    obj = require(tx, owner_kind, owner)
    source = obj.secret(name)
    if source is None:
        raise NotFound(f"{owner_kind} {owner} has no secret {name!r}")
    if not isinstance(items, list) or len(items) != 1:
        raise Invalid("secrets: expected one secret carrying newsecretname")
    _, content, path, new = _secret_item(items[0], f"{owner}[0]")
    if new is None:
        raise Invalid("newsecretname: required to clone a secret")
    mine = tx.edit(obj)
    if mine.secret(new) is not None:
        raise Invalid(f"newsecretname: secret {new!r} already exists")
    mine.secrets.append(Secret(new, content if content is not None else source.content,
                               path if "path" in items[0] else source.path))


def delete_secret(tx: Tx, owner_kind: str, owner: str, name: str) -> None:
    obj = require(tx, owner_kind, owner)
    if obj.secret(name) is None:
        raise NotFound(f"{owner_kind} {owner} has no secret {name!r}")
    mine = tx.edit(obj)
    mine.secrets = [s for s in mine.secrets if s.name != name]


# -- racks and inventory ---------------------------------------------------------------------


def _device(tx: Tx, raw: Any, label: str) -> Obj:
    if not isinstance(raw, dict):
        raise Invalid(f"{label}: expected a device object")
    unknown = set(raw) - {"name", "type", "vendor", "orientation", "height", "position", "rack"}
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown device field")
    dtype = raw.get("type", "node")
    if not isinstance(dtype, str) or dtype not in RACK_TYPES:
        raise Invalid(f"{label}.type: must be one of {', '.join(RACK_TYPES)}")
    name = raw.get("name")
    if not isinstance(name, str) or tx.get(RACK_TYPES[dtype], name) is None:
        raise Invalid(f"{label}.name: {dtype} {name!r} does not exist")
    device = tx.edit(tx.get(RACK_TYPES[dtype], name))
    kind = KINDS[device.kind]
    for key, fname in (("vendor", "vendor"), ("orientation", "rackorientation"), ("height", "rackheight")):
        if key in raw:
            value = coerce(kind.by_name[fname], raw[key], f"{label}.{key}")
            if value is None:
                device.data.pop(fname, None)
            else:
                device.data[fname] = value
    return device


def _unplace(device: Obj) -> None:
    device.data.pop("rack", None)
    device.data.pop("rackposition", None)


def place_devices(tx: Tx, rack: Obj, devices: Any) -> None:
    """Set the full content of a rack: listed devices placed, others removed."""
    if not isinstance(devices, list):
        raise Invalid("devices: expected a list of device objects")
    listed = set()
    for index, raw in enumerate(devices):
        device = _device(tx, raw, f"devices[{index}]")
        position = coerce(Field("position", "int", minimum=1, maximum=100), raw.get("position"),
                          f"devices[{index}].position")
        if position is None:
            raise Invalid(f"devices[{index}].position: required to place {device.name} in a rack")
        device.data["rack"] = rack.id
        device.data["rackposition"] = position
        listed.add(device.id)
    for kind in KINDS.values():
        if kind.rack_device:
            for other in list(tx.all(kind.name)):
                if other.data.get("rack") == rack.id and other.id not in listed:
                    _unplace(tx.edit(other))
    check_rack(tx, rack)


def check_rack(tx: Tx, rack: Obj) -> None:
    size = rack.data.get("size") or KINDS["rack"].by_name["size"].default
    used: dict[int, str] = {}
    for kind in KINDS.values():
        if not kind.rack_device:
            continue
        for device in tx.all(kind.name):
            if device.data.get("rack") != rack.id:
                continue
            position = device.data.get("rackposition") or 1
            height = device.data.get("rackheight") or 1
            if position + height - 1 > size:
                raise Invalid(f"devices: {device.name} at {position} (height {height}) does not fit rack of size {size}")
            for unit in range(position, position + height):
                if unit in used:
                    raise Invalid(f"devices: {device.name} and {used[unit]} both take unit {unit} of rack {rack.name}")
                used[unit] = device.name


def update_inventory(tx: Tx, items: Any) -> None:
    if not isinstance(items, list):
        raise Invalid("inventory: expected a list of device objects")
    for index, raw in enumerate(items):
        device = _device(tx, raw, f"inventory[{index}]")
        rack = tx.obj(device.data.get("rack"))
        if rack is not None:
            check_rack(tx, rack)


def clear_inventory(tx: Tx, name: str, dtype: str) -> None:
    if dtype not in RACK_TYPES:
        raise NotFound(f"there is no device type {dtype!r}")
    device = require(tx, RACK_TYPES[dtype], name)
    _unplace(tx.edit(device))


# -- osimage tags ------------------------------------------------------------------------


def put_tag(tx: Tx, osimage: str, raw: Any) -> bool:
    image = require(tx, "osimage", osimage)
    if not isinstance(raw, dict) or set(raw) - {"tag", "name"}:
        raise Invalid("tag: expected an object with the field tag")
    tag = raw.get("tag")
    if not isinstance(tag, str) or not NAME_RE.fullmatch(tag):
        raise Invalid(f"tag: {tag!r} is not a valid tag name")
    mine = tx.edit(image)
    tags = dict(mine.data.get("tags") or {})
    created = tag not in tags
    tags[tag] = {
        "kernelfile": mine.data.get("kernelfile"),
        "initrdfile": mine.data.get("initrdfile"),
        "imagefile": mine.data.get("imagefile"),
    }
    mine.data["tags"] = tags
    return created


def delete_tag(tx: Tx, osimage: str, tag: str) -> None:
    image = require(tx, "osimage", osimage)
    tags = dict(image.data.get("tags") or {})
    if tag not in tags:
        raise NotFound(f"osimage {osimage!r} has no tag {tag!r}")
    for kind in ("node", "group"):
        for obj in tx.all(kind):
            if obj.data.get("osimagetag") == tag and obj.data.get("osimage") in (image.id, None):
                raise Invalid(f"tag {tag!r} is still used by {kind} {obj.name}")
    del tags[tag]
    mine = tx.edit(image)
    mine.data["tags"] = tags
