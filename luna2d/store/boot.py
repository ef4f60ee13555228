# -*- test-case-name: tests.boot.test_policy,tests.boot.test_boot,tests.boot.test_install -*-
"""What network boot reads from the store and the few writes it makes.

Reads answer plain data (names, dicts, tuples) for the ``/boot``,
``/monitor``, ``/files`` and ``/control`` resources; none of them needs to
know the in-memory objects. Writes are functions over a ``Tx`` run through
``Store.write``.

The boot policy lives here too (docs/BOOT.md, "Who may claim a node"):

- the manual boot (``/boot/manual/...``) gives a MAC to a node that has
  none yet (first provisioning), and moves a MAC only between nodes that an
  admin armed or whose group allows it (``mac_reassign``);
- the install script's secrets and node token go out once per grant: an
  admin's arming (``once``; ``continuous`` for nodes that reinstall at every
  boot), a boot luna2d started (power on, cycle, reset through
  ``/control``), or the first provisioning of a node (its first MAC);
- a node token reports only the address its boot interface holds on a
  network with ``dhcp`` on, from that address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from luna2d.errors import Forbidden, Invalid, NotFound
from luna2d.model import wire
from luna2d.model.fields import KERNEL_OPTIONS_RE, NAME_RE, Field, coerce
from luna2d.model.kinds import KINDS
from luna2d.store import ipam, objects, views
from luna2d.store.state import Iface, Obj, Tx, ip_key

NODE = KINDS["node"]
DEFAULT_PORT = 7050
# iPXE's own MAC variable: used where the script, not the server, knows the MAC.
IPXE_MAC = "${netX/mac}"
# How long a boot luna2d started (power control, first provisioning) may
# take to fetch its install script, and how long an admin's arming lasts
# unless the call says otherwise.
GRANT_LIFETIME = 3600
ARM_LIFETIME = 3600
MAX_ARM_LIFETIME = 30 * 86400
ARM_MODES = ("once", "continuous")
# What a node token may send about its own node.
REPORT_IFACE_KEYS = {"interface", "ipaddress", "force"}


# -- facts about a node -----------------------------------------------------------------


def effective(reader: Any, node: Obj, field: str) -> Any:
    """A node field's value after inheritance (group, cluster, default)."""
    return views.resolve(reader, NODE, node, NODE.by_name[field])[0]


def node_named(reader: Any, name: str) -> Obj:
    """The node ``name``, or NotFound."""
    node: Obj | None = reader.get("node", name) if NAME_RE.fullmatch(name) else None
    if node is None:
        raise NotFound(f"node {name!r} does not exist")
    return node


def node_by_mac(reader: Any, mac: str) -> Obj | None:
    """The node one of whose interfaces carries ``mac``."""
    holder = reader.macs.get(mac)
    if holder is None:
        return None
    obj = reader.obj(holder[0])
    return obj if obj is not None and KINDS[obj.kind].boot == "entries" else None


def node_by_ip(reader: Any, ip: str | None) -> Obj | None:
    """The node one of whose interfaces holds ``ip``."""
    if ip is None:
        return None
    try:
        key = ip_key(ip)
    except ValueError:
        return None
    holder = reader.ips.get(key)
    obj = reader.obj(holder[0]) if holder is not None else None
    return obj if obj is not None and KINDS[obj.kind].boot == "entries" else None


def provisioning(reader: Any, node: Obj) -> tuple[str, Iface | None, Obj | None]:
    """The provisioning interface's name, the interface and its network."""
    name = effective(reader, node, "provision_interface") or "BOOTIF"
    item = node.iface(name)
    network = reader.obj(item.network) if item is not None else None
    return name, item, network


def boot_mac(reader: Any, node: Obj) -> str | None:
    """The MAC of the node's provisioning interface."""
    _, item, _ = provisioning(reader, node)
    return item.mac if item is not None else None


def image_files(reader: Any, node: Obj) -> tuple[Obj | None, dict[str, Any]]:
    """The node's osimage and the files it boots: the osimage's own, or
    those of the node's osimage tag when the tag exists."""
    image = reader.obj(effective(reader, node, "osimage"))
    if image is None:
        return None, {}
    keys = ("kernelfile", "initrdfile", "imagefile", "torrent")
    files = {key: image.data.get(key) for key in keys}
    tag = effective(reader, node, "osimagetag")
    tagged = (image.data.get("tags") or {}).get(tag) if tag else None
    if tagged:
        files = {**{key: tagged.get(key) for key in keys[:3]}, "torrent": None}
    return image, files


def fqdn(reader: Any, node: Obj) -> str:
    """``<node>.<effective domain>``, or the bare name without a domain."""
    domain = effective(reader, node, "domain")
    return f"{node.name}.{domain}" if domain else node.name


# -- queries for /boot ---------------------------------------------------------------------


def _boot_flags(reader: Any, node: Obj | None) -> tuple[str, bool, bool] | None:
    """(name, bootmenu, netboot) of ``node``, with inherited values."""
    if node is None:
        return None
    return (
        node.name,
        bool(effective(reader, node, "bootmenu")),
        bool(effective(reader, node, "netboot")),
    )


def node_at(reader: Any, ip: str | None) -> tuple[str, bool, bool] | None:
    """(name, bootmenu, netboot) of the node holding ``ip``, if any."""
    return _boot_flags(reader, node_by_ip(reader, ip))


def node_with_mac(reader: Any, mac: str) -> tuple[str, bool, bool] | None:
    """(name, bootmenu, netboot) of the node carrying ``mac``, if any."""
    return _boot_flags(reader, node_by_mac(reader, mac))


def cluster_name(reader: Any) -> str:
    """The cluster's name, as menus show it."""
    cluster = reader.singleton("cluster")
    return cluster.name if cluster is not None else "cluster"


def controller_address(reader: Any) -> tuple[str, int] | None:
    """The controller object's address and API port, when it has one."""
    for controller in reader.all("controller"):
        if controller.ifaces and controller.ifaces[0].ip:
            return controller.ifaces[0].ip, controller.data.get("serverport") or DEFAULT_PORT
    return None


def boot_script(
    reader: Any, name: str, mac: str | None, base: str, host: str
) -> tuple[str, dict[str, Any]]:
    """The template and context that boot node ``name`` (or explain why it
    cannot), for a controller reached at ``base`` (``http://host:port``)."""
    node = node_named(reader, name)
    _, item, network = provisioning(reader, node)
    mac = mac or (item.mac if item is not None else None) or IPXE_MAC
    common = {"base": base, "controller": host, "node": node.name, "mac": mac, "retry": 30}
    image, files = image_files(reader, node)
    if image is None:
        return "noboot.ipxe.j2", {
            **common,
            "reason": "it has no osimage (set one on the node or its group)",
        }
    missing = [key for key in ("kernelfile", "initrdfile") if not files.get(key)]
    if missing:
        reason = f"osimage {image.name} has no {' and no '.join(missing)}"
        return "noboot.ipxe.j2", {**common, "reason": reason}
    options = views.kernel_options(reader, node)
    if not KERNEL_OPTIONS_RE.fullmatch(options):
        # Stored before luna2d refused them: never put them on the imgargs line.
        reason = (
            f"the kerneloptions of osimage {image.name} hold ||, &&, a lone ; or ${{...}}, "
            "which iPXE would run as commands; correct them"
        )
        return "noboot.ipxe.j2", {**common, "reason": reason}
    ip = item.ip if item is not None else None
    prefix = None
    if ip and network is not None:
        prefix = ipaddress.ip_network(network.data["network"]).prefixlen
    return "node.ipxe.j2", {
        **common,
        "kernel_url": f"{base}/files/{quote(str(files['kernelfile']), safe='')}",
        "initrd_url": f"{base}/files/{quote(str(files['initrdfile']), safe='')}",
        "bootproto": "static" if ip and prefix is not None else "dhcp",
        "ip": ip if prefix is not None else None,
        "prefix": prefix,
        "hostname": fqdn(reader, node),
        "service": 1 if node.data.get("service") else 0,
        "kernel_options": options,
    }


def discovery_menu(reader: Any) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The nodes and groups the discovery menu lists: none unless the
    cluster's ``discovery_names`` is on (an unknown machine then types a
    name). Labels say which nodes still wait for a MAC, never the MACs."""
    cluster = reader.singleton("cluster")
    if cluster is None or not cluster.data.get("discovery_names"):
        return [], []
    nodes = []
    free: dict[int, int] = {}
    size: dict[int, int] = {}
    for node in sorted(reader.all("node"), key=lambda n: n.name):
        _, item, _ = provisioning(reader, node)
        group = reader.obj(node.data.get("group"))
        waiting = item is not None and item.mac is None
        label = node.name + (" (no MAC yet)" if waiting else " (has a MAC)")
        nodes.append({"name": node.name, "label": label + (f" [{group.name}]" if group else "")})
        if group is not None:
            size[group.id] = size.get(group.id, 0) + 1
            if waiting:
                free[group.id] = free.get(group.id, 0) + 1
    groups = [
        {
            "name": g.name,
            "label": f"{g.name} ({free.get(g.id, 0)} of {size.get(g.id, 0)} nodes without a MAC)",
        }
        for g in sorted(reader.all("group"), key=lambda g: g.name)
    ]
    return nodes, groups


def _dynamic_network(reader: Any, item: Iface, addr: str) -> Obj | None:
    """The network a DHCP-given ``addr`` of ``item`` is on: the interface's
    own, else the most specific network holding the address."""
    if item.network is not None:
        network: Obj | None = reader.obj(item.network)
        return network
    value = ipaddress.ip_address(addr)
    holding = [n for n in reader.all("network") if value in ipam.net_of(n)]
    return min(holding, key=lambda n: (-ipam.net_of(n).prefixlen, n.id)) if holding else None


def _dynamic_problem(network: Obj | None, addr: str) -> str | None:
    """Why ``addr`` is no address DHCP gives on ``network`` (None when it is):
    the network must have ``dhcp`` on and hold the address in its range."""
    if network is None:
        return f"no configured network holds {addr}"
    if not network.data.get("dhcp"):
        return f"network {network.name} has dhcp off"
    if ipaddress.ip_address(addr) not in ipam.net_of(network):
        return f"{addr} is not inside network {network.name}"
    begin, end = network.data.get("dhcp_range_begin"), network.data.get("dhcp_range_end")
    if begin and end and not ip_key(begin) <= ip_key(addr) <= ip_key(end):
        return f"{addr} is outside the DHCP range of network {network.name}"
    return None


def install_source_ok(reader: Any, name: str, ip: str | None) -> bool:
    """Whether ``ip`` is the address of node ``name``'s provisioning
    interface (not its BMC, not another interface); for an interface without
    an address (it boots by DHCP), an address of a DHCP range that no device
    holds."""
    node = node_named(reader, name)
    _, item, _ = provisioning(reader, node)
    if ip is None or item is None:
        return False
    try:
        key = ip_key(ip)
        if item.ip:
            return ip_key(item.ip) == key
        return (
            reader.ips.get(key) is None
            and _dynamic_problem(_dynamic_network(reader, item, ip), ip) is None
        )
    except ValueError:
        return False


def _script(name: str, value: str | None, heredoc_end: Any) -> dict[str, str] | None:
    if not value or not value.strip():
        return None
    body = value.replace("\r\n", "\n")
    if not body.endswith("\n"):
        body += "\n"
    return {"name": name, "text": body, "end": heredoc_end(body, name.upper())}


def install_context(
    reader: Any, name: str, base: str, token: str, heredoc_end: Any
) -> dict[str, Any]:
    """Everything ``install.sh.j2`` renders for node ``name``; ``heredoc_end``
    makes a here-document delimiter for a text (luna2d.render's)."""
    node = node_named(reader, name)
    image, files = image_files(reader, node)
    provision_name, _, _ = provisioning(reader, node)
    scripts = [
        s
        for s in (
            _script(n, effective(reader, node, n), heredoc_end)
            for n in ("prescript", "partscript", "postscript")
        )
        if s
    ]
    secrets = []
    group = reader.obj(node.data.get("group"))
    for owner in (group, node):
        for secret in owner.secrets if owner is not None else ():
            if not secret.path:
                continue
            # Byte for byte: base64 in the script, decoded by base64 -d on the node.
            body = wire.wrapped(secret.content)
            folder = secret.path.rsplit("/", 1)[0] or "/"
            secrets.append(
                {
                    "path": secret.path,
                    "folder": folder,
                    "base64": body,
                    "end": heredoc_end(body, "SECRET"),
                }
            )
    setupbmc = bool(effective(reader, node, "setupbmc"))
    bmc = None
    setup = reader.obj(effective(reader, node, "bmcsetup"))
    if setupbmc and setup is not None:
        item = node.bmc_iface()
        network = reader.obj(item.network) if item is not None else None
        netmask = (
            str(ipaddress.ip_network(network.data["network"]).netmask)
            if network is not None
            else None
        )
        defaults = {f.name: f.default for f in KINDS["bmcsetup"].fields}
        value = {key: setup.data.get(key, defaults.get(key)) for key in defaults}

        def number(key: str, fallback: int) -> int:
            return int(value[key] if value[key] is not None else fallback)

        unmanaged = effective(reader, node, "unmanaged_bmc_users") or value["unmanaged_bmc_users"]
        bmc = {
            "ip": item.ip if item is not None and netmask else None,
            "netmask": netmask,
            "gateway": network.data.get("gateway") if network is not None else None,
            "netchannel": number("netchannel", 1),
            "mgmtchannel": number("mgmtchannel", 1),
            "userid": number("userid", 2),
            "username": value["username"] or "",
            "password": value["password"] or "",
            "unmanaged": unmanaged or "skip",
        }
    return {
        "node": node.name,
        "hostname": fqdn(reader, node),
        "base": base,
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


# -- queries for /monitor, /files and /control ------------------------------------------------


def node_status(reader: Any, name: str) -> str | None:
    """The node's stored ``status`` field (NotFound for an unknown node)."""
    status = node_named(reader, name).data.get("status")
    return status if isinstance(status, str) else None


def boot_file_names(reader: Any) -> set[str]:
    """Kernel and initrd names of every osimage and osimage tag."""
    names: set[str] = set()
    for image in reader.all("osimage"):
        for source in (image.data, *(image.data.get("tags") or {}).values()):
            for key in ("kernelfile", "initrdfile"):
                value = source.get(key)
                if isinstance(value, str) and value:
                    names.add(value)
    return names


def missing_nodes(reader: Any, names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are no node."""
    return [
        name for name in names if not NAME_RE.fullmatch(name) or reader.get("node", name) is None
    ]


def bmc_access(reader: Any, name: str) -> tuple[str, str, str] | str:
    """(BMC address, user, password) of node ``name``, or why there is none.
    The BMC is the node's ``BMC`` interface (any case); the credentials are
    its effective bmcsetup's."""
    node = node_named(reader, name)
    iface = node.bmc_iface()
    if iface is None or not iface.ip:
        return f"no BMC: node {node.name} has no 'BMC' interface with an address"
    setup = reader.obj(effective(reader, node, "bmcsetup"))
    if setup is None:
        return f"no BMC credentials: neither node {node.name} nor its group names a bmcsetup"
    username, password = setup.data.get("username"), setup.data.get("password")
    if not username:
        return f"no BMC credentials: bmcsetup {setup.name} has no username"
    if password is None:
        return f"no BMC credentials: bmcsetup {setup.name} has no password"
    return iface.ip, str(username), str(password)


# -- arming and grants ----------------------------------------------------------------------------


def _valid(until: Any, now: int) -> bool:
    return until is None or (isinstance(until, int) and now < until)


def arming(reader: Any, name: str, now: int) -> dict[str, Any]:
    """What node ``name`` is armed or granted for, as admins see it."""
    node = node_named(reader, name)
    mode, until = node.data.get("armed"), node.data.get("armed_until")
    grant, grant_until = node.data.get("install_grant"), node.data.get("install_grant_until")
    group = reader.obj(node.data.get("group"))
    return {
        "armed": mode if mode and _valid(until, now) else None,
        "armed_until": until if mode and _valid(until, now) else None,
        "install_grant": grant if grant and _valid(grant_until, now) else None,
        "install_grant_until": grant_until if grant and _valid(grant_until, now) else None,
        "mac_reassign": bool(group is not None and group.data.get("mac_reassign")),
        "macaddr": boot_mac(reader, node),
    }


def _armed(node: Obj, now: int) -> str | None:
    mode = node.data.get("armed")
    return mode if mode in ARM_MODES and _valid(node.data.get("armed_until"), now) else None


def _set(obj: Obj, key: str, value: Any) -> None:
    if value is None:
        obj.data.pop(key, None)
    else:
        obj.data[key] = value


def parse_arming(raw: Any, name: str) -> tuple[str, int | None]:
    """(mode, lifetime in seconds or None for no deadline) of an ``_arm``
    body: ``{"config": {"node": {name: {"mode", "expiry"}}}}`` unwrapped to
    the node's object, or None for the defaults (once, one hour)."""
    if raw is None:
        return "once", ARM_LIFETIME
    if not isinstance(raw, dict):
        raise Invalid(f"config.node.{name}: expected an object with mode and expiry")
    unknown = set(raw) - {"mode", "expiry", "name"}
    if unknown:
        raise Invalid(f"config.node.{name}.{min(unknown)}: unknown field (mode, expiry)")
    mode = raw.get("mode", "once")
    if mode not in ARM_MODES:
        raise Invalid(f"config.node.{name}.mode: must be once or continuous")
    expiry = coerce(
        Field("expiry", "int", minimum=0, maximum=MAX_ARM_LIFETIME),
        raw.get("expiry", ARM_LIFETIME),
        f"config.node.{name}.expiry",
    )
    return mode, (expiry or None)


def arm(tx: Tx, name: str, mode: str, lifetime: int | None, now: int) -> None:
    """Arm node ``name``: until ``lifetime`` seconds from ``now`` (or
    until disarmed), the manual boot may give it a new MAC and its install
    script carries its secrets (``once``: for one fetch)."""
    node = tx.edit(objects.require(tx, "node", name))
    node.data["armed"] = mode
    _set(node, "armed_until", now + lifetime if lifetime else None)


def disarm(tx: Tx, name: str) -> None:
    """Take every arming and grant from node ``name``."""
    node = objects.require(tx, "node", name)
    keys = ("armed", "armed_until", "install_grant", "install_grant_until")
    if any(key in node.data for key in keys):
        mine = tx.edit(node)
        for key in keys:
            mine.data.pop(key, None)


def grant_install(tx: Tx, names: Iterable[str], reason: str, now: int) -> None:
    """Let each node fetch its install script with secrets once within
    GRANT_LIFETIME: luna2d started their boot (``reason``: power)."""
    for name in names:
        node = tx.get("node", name)
        if node is None:
            continue
        mine = tx.edit(node)
        mine.data["install_grant"] = reason
        mine.data["install_grant_until"] = now + GRANT_LIFETIME


def take_install(tx: Tx, name: str, now: int) -> str:
    """Spend node ``name``'s grant for one install script with secrets and
    a node token; answers what granted it. Forbidden when nothing does."""
    node = objects.require(tx, "node", name)
    mode = _armed(node, now)
    if mode == "continuous":
        return "armed (continuous)"
    if mode == "once":
        mine = tx.edit(node)
        mine.data.pop("armed", None)
        mine.data.pop("armed_until", None)
        return "armed (once)"
    grant = node.data.get("install_grant")
    if grant and _valid(node.data.get("install_grant_until"), now):
        mine = tx.edit(node)
        mine.data.pop("install_grant", None)
        mine.data.pop("install_grant_until", None)
        return str(grant)
    raise Forbidden(
        f"node {name} is not armed for an install: an admin arms it "
        f"(POST /config/node/{name}/_arm) or powers it on, cycles or resets it through /control"
    )


# -- manual boot: a MAC for a node ------------------------------------------------------------


def _may_lose_mac(tx: Tx, node: Obj, now: int) -> bool:
    """Whether the manual boot may take node's boot MAC away: armed, or
    its group allows it."""
    if _armed(node, now) is not None:
        return True
    group = tx.obj(node.data.get("group"))
    return bool(group is not None and group.data.get("mac_reassign"))


def assign_mac(tx: Tx, node_name: str, mac: str, now: int) -> bool:
    """Give ``mac`` to the provisioning interface of ``node_name``, taking it
    away from whichever interface had it, as the boot policy allows. False
    when nothing changed (the node has that MAC already)."""
    node = objects.require(tx, "node", node_name)
    iface = views.provision_iface(tx, node)
    holder = tx.macs.get(mac)
    if holder == (node.id, iface):
        return False
    item = node.iface(iface)
    if item is None:
        raise Invalid(f"mac: node {node_name} has no interface {iface} to carry {mac}")
    first = item.mac is None
    if not first and not _may_lose_mac(tx, node, now):
        raise Forbidden(
            f"node {node_name} already has a MAC; the boot menu gives it another only when an "
            f"admin armed it (POST /config/node/{node_name}/_arm) or its group has mac_reassign on"
        )
    if holder is not None:
        owner = tx.obj(holder[0])
        taken = owner.iface(holder[1]) if owner is not None else None
        if owner is not None and owner.id != node.id and not _may_lose_mac(tx, owner, now):
            raise Forbidden(
                f"{mac} belongs to {owner.kind} {owner.name}, which is not armed to give it up "
                f"(POST /config/node/{owner.name}/_arm, or mac_reassign on its group)"
            )
        if owner is not None and taken is not None:
            tx.put_iface(
                tx.edit(owner), Iface(taken.name, taken.network, taken.ip, None, taken.options)
            )
    mine = tx.edit(objects.require(tx, "node", node_name))
    objects.set_boot_mac(tx, mine, mac)
    mode = _armed(mine, now)
    if mode == "once":
        # The arming's MAC change is spent; its install stays granted.
        until = mine.data.pop("armed_until", None)
        mine.data.pop("armed", None)
        mine.data["install_grant"] = "manual"
        _set(mine, "install_grant_until", until if until is not None else now + GRANT_LIFETIME)
    elif mode is None:
        mine.data["install_grant"] = "discovery"
        mine.data["install_grant_until"] = now + GRANT_LIFETIME
    return True


def assign_group_mac(tx: Tx, group_name: str, mac: str, now: int) -> str:
    """The node of ``group_name`` that boots with ``mac``: the one that has
    it already, else the first (by name) whose provisioning interface has no
    MAC, which is given it."""
    group = tx.get("group", group_name) if NAME_RE.fullmatch(group_name) else None
    if group is None:
        raise NotFound(f"group {group_name!r} does not exist")
    current = node_by_mac(tx, mac)
    if current is not None and current.data.get("group") == group.id:
        return current.name
    for node in sorted(tx.all("node"), key=lambda n: n.name):
        if node.data.get("group") != group.id:
            continue
        item = node.iface(views.provision_iface(tx, node))
        if item is not None and item.mac is None:
            assign_mac(tx, node.name, mac, now)
            return node.name
    raise Invalid(f"group {group_name!r} has no node left without a MAC address; create one first")


# -- what a node reports about itself ----------------------------------------------------------


def report_status(tx: Tx, name: str, value: str) -> None:
    """Store a node's state as its ``status`` field."""
    objects.upsert(tx, "node", name, {"status": value}, False)


def _report_address(tx: Tx, node: Obj, entries: Any, source: str | None) -> None:
    """The one address a node token may report: that of its provisioning
    interface, on a network with ``dhcp`` on (it booted by DHCP), inside that
    network and its DHCP range, and the address the report comes from."""
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise Forbidden(
            "interfaces: a node token reports exactly one address, of its boot interface"
        )
    entry = entries[0]
    unknown = set(entry) - REPORT_IFACE_KEYS
    if unknown:
        raise Forbidden(f"interfaces[0].{min(unknown)}: a node token may only report its address")
    name, item, _ = provisioning(tx, node)
    if entry.get("interface") != name or item is None:
        raise Forbidden(
            f"interfaces[0].interface: a node token may only report its boot interface {name}"
        )
    text = entry.get("ipaddress")
    if not isinstance(text, str):
        raise Invalid("interfaces[0].ipaddress: expected an IP address string")
    addr = coerce(Field("ipaddress", "ip"), text, "interfaces[0].ipaddress")
    if addr is None:
        raise Invalid("interfaces[0].ipaddress: required")
    network = _dynamic_network(tx, item, addr)
    if network is None or ipaddress.ip_address(addr) not in ipam.net_of(network):
        raise Invalid(
            f"interfaces[0].ipaddress: {addr} is not inside the network of interface {name}"
        )
    problem = _dynamic_problem(network, addr)
    if problem is not None:
        raise Forbidden(
            f"interfaces[0].ipaddress: {problem}, so {node.name} does not boot by DHCP there; "
            "only an admin sets that address"
        )
    if source is None or ip_key(source) != ip_key(addr):
        raise Forbidden(
            f"interfaces[0].ipaddress: a node token may only report the address it calls from "
            f"({source or 'unknown'})"
        )
    if item.ip == addr:
        return
    objects.put_node_iface(
        tx, tx.edit(node), {"interface": name, "ipaddress": addr, "force": True}, "interfaces[0]"
    )


def node_report(tx: Tx, name: str, raw: Any, source: str | None) -> None:
    """What a node token sends to ``POST /config/node/<self>``: system
    information and status through the generic update, its address by
    the rules of ``_report_address``."""
    node = objects.require(tx, "node", name)
    if not isinstance(raw, dict):
        raise Invalid(f"the node {name!r} must be a JSON object of fields")
    fields = {key: value for key, value in raw.items() if key != "interfaces"}
    if fields:
        objects.upsert(tx, "node", name, fields, False)
    if "interfaces" in raw:
        _report_address(tx, tx.get("node", name) or node, raw["interfaces"], source)
