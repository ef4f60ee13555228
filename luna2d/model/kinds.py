# -*- test-case-name: tests.test_kinds_table,tests.clients -*-
"""Every object kind luna2d keeps, described once as data.

The store and the config resources read this table and nothing else to know
which fields a kind has, how they are spelled on the wire, what they
inherit from, what they refer to, how a kind is renamed, how it holds
addresses, what its members are and how its changes reach the boot index.
Kind-specific behaviour (IP allocation, renumbering, racks, tags, secrets)
is a hook the store registers for an interface mode or a kind
(``luna2d/store/hooks.py``), never a copy of the machinery, and never a
test of a kind's name."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import overload

from luna2d.errors import NotFound
from luna2d.model.fields import (
    COERCERS,
    DOMAIN_RE,
    INTERFACE_RE,
    KERNEL_OPTIONS_RE,
    TOKEN_RE,
    Field,
)

# A bonding mode (balance-rr, active-backup, 802.3ad, 0-6, ...) and the
# comma-separated interfaces of a bond.
BOND_MODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
# DNS search domains, separated by commas or spaces (cluster domain_search).
_DOMAIN = r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?"
DOMAIN_LIST_RE = re.compile(rf"^{_DOMAIN}([ ,]+{_DOMAIN})*$")
BOND_SLAVES_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}(\s*,\s*[A-Za-z0-9][A-Za-z0-9._:-]{0,31}){0,31}$"
)

# Interface modes:
#   "multi":   named interfaces with network, ipaddress, macaddress (node)
#   "network": named interfaces with a network only (group templates)
#   "single":  one interface, shown as top-level network + ipaddress fields
#   None:      no addresses
INTERFACE_MODES = ("multi", "network", "single")
# Interface modes whose interfaces hold addresses.
ADDRESS_MODES = ("multi", "single")


@dataclass(frozen=True)
class Members:
    """What ``GET /config/<kind>/<name>/_list`` (and ``_member``) answers.

    how: "refers":    objects of ``kind`` whose field ``field`` (resolved
                      through inheritance) names this object; with
                      ``also``, only those where that field is set too;
         "addresses": every object holding an address on this network;
         "placed":    the devices placed in this rack;
         "none":      the kind has members, and there are never any.
    """

    how: str
    kind: str | None = None
    field: str | None = None
    also: str | None = None


NO_MEMBERS = Members("none")


@dataclass(frozen=True)
class Kind:
    """One object kind.

    rename: the body fields that rename an object (the first is canonical).
    interfaces: the interface mode (see INTERFACE_MODES), None for none.
    required: fields a new object must have.
    public: served by the generic /config/<kind> endpoints.
    has_secrets: owns secrets (/config/secrets/<kind>/<name>).
    secrets_from: a ref field whose target's secrets are shown with this
        object's (a node's group).
    rack_device: may be placed in a rack and listed in the inventory.
    reserved: names an object of this kind may not take.
    singleton: there is exactly one object (the cluster); inheritance from
        this kind needs no reference.
    infra: its addresses may be a network's gateway or name server (a
        controller).
    boot: how a change reaches the boot index: "entries" (the kind's
        interfaces with MACs are the boot entries: nodes), "global" (a
        change may alter every entry or network), None (no effect, unless
        the kind holds addresses, which changes the taken set).
    members: what ``_list``/``_member`` answers; None: no such relation.
    shown_as: (field, other name) pairs: the field's value is answered
        under the other name too, for clients that read that spelling.
    """

    name: str
    fields: tuple[Field, ...]
    rename: tuple[str, ...] = ()
    interfaces: str | None = None
    required: tuple[str, ...] = ()
    public: bool = True
    has_secrets: bool = False
    secrets_from: str | None = None
    rack_device: bool = False
    reserved: tuple[str, ...] = ()
    singleton: bool = False
    infra: bool = False
    boot: str | None = None
    members: Members | None = None
    shown_as: tuple[tuple[str, str], ...] = ()
    by_name: dict[str, Field] = dc_field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.interfaces is not None and self.interfaces not in INTERFACE_MODES:
            raise ValueError(f"kind {self.name}: unknown interface mode {self.interfaces!r}")
        table: dict[str, Field] = {}
        for f in self.fields:
            if f.type not in COERCERS:
                raise ValueError(f"kind {self.name}: field {f.name} has unknown type {f.type!r}")
            table[f.name] = f
            for alias in f.aliases:
                table[alias] = f
        for fname, _ in self.shown_as:
            if fname not in table:
                raise ValueError(f"kind {self.name}: shown_as names unknown field {fname!r}")
        object.__setattr__(self, "by_name", table)

    def field(self, name: str) -> Field | None:
        """The field spelled ``name`` (canonical or alias), if any."""
        return self.by_name.get(name)

    @property
    def refs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type == "ref")

    @property
    def holds_addresses(self) -> bool:
        """Whether the kind's interfaces hold addresses (IPAM applies)."""
        return self.interfaces in ADDRESS_MODES

    @property
    def named_interfaces(self) -> bool:
        """Whether the kind has several named interfaces (shown by name)."""
        return self.interfaces in ("multi", "network")


COMMENT = Field("comment", "text", aliases=("comments",), wire="either")
SCRIPTS = ("prescript", "partscript", "postscript")

# Settings an interface of a node or a group may carry besides its network,
# address, MAC and options, by the names the TrinityX CLI sends them. They
# are kept per interface name in the object's ``ifsettings`` (below) and
# shown on the interface only when set; "" or null unsets one.
INTERFACE_SETTINGS = (
    Field("vlanid", "int", minimum=1, maximum=4094),
    Field("vlan_parent", "str", pattern=INTERFACE_RE),
    Field("mtu", "int", minimum=68, maximum=65535),
    Field("dhcp", "bool"),
    Field("bond_mode", "str", pattern=BOND_MODE_RE),
    Field("bond_slaves", "str", pattern=BOND_SLAVES_RE),
)
# interface name -> {setting: value}, written through the interfaces.
IFSETTINGS = Field("ifsettings", "map", internal=True)
# A node's or group's own kernel options replace the image's (as the
# incumbent daemon does): node, then its group, then its osimage.
KERNEL_OPTIONS_INHERIT = (("group", "kerneloptions"), ("osimage", "kerneloptions"))

# Where a device sits in a rack: set through /config/rack, not the kind's own POST.
RACK_FIELDS = (
    Field("rack", "ref", ref="rack", internal=True),
    Field("rackposition", "int", minimum=1, maximum=100, internal=True),
    Field("rackheight", "int", default=1, minimum=1, maximum=50, internal=True),
    Field("rackorientation", "choice", choices=("front", "back"), default="front", internal=True),
    Field("racktype", "str", internal=True),
)

NODE = Kind(
    name="node",
    rename=("newhostname", "newnodename"),
    interfaces="multi",
    required=("group",),
    has_secrets=True,
    secrets_from="group",
    rack_device=True,
    boot="entries",
    members=NO_MEMBERS,
    fields=(
        Field("group", "ref", ref="group"),
        # The MAC of the provisioning interface, kept on that interface.
        Field("macaddr", "mac", aliases=("macaddress",), stored=False),
        Field("switch", "ref", ref="switch"),
        Field("switchport", "int", minimum=0, maximum=1_000_000),
        Field("service", "bool", default=False),
        Field("setupbmc", "bool", default=False, inherit=(("group", "bmcsetup"),)),
        Field("bmcsetup", "ref", ref="bmcsetup", inherit=(("group", "bmcsetupname"),)),
        Field("status", "str"),
        COMMENT,
        Field("osimage", "ref", ref="osimage", inherit=(("group", "osimage"),)),
        Field("osimagetag", "str", inherit=(("group", "osimagetag"),)),
        Field("prescript", "script", inherit=(("group", "prescript"),), wire="base64"),
        Field("partscript", "script", inherit=(("group", "partscript"),), wire="base64"),
        Field("postscript", "script", inherit=(("group", "postscript"),), wire="base64"),
        Field(
            "kerneloptions",
            "str",
            aliases=("kernopts",),
            pattern=KERNEL_OPTIONS_RE,
            inherit=KERNEL_OPTIONS_INHERIT,
            wire="either",
        ),
        Field("netboot", "bool", default=True, inherit=(("group", "netboot"),)),
        Field("bootmenu", "bool", default=False, inherit=(("group", "bootmenu"),)),
        Field("localinstall", "bool", default=False, inherit=(("group", "localinstall"),)),
        Field(
            "provision_interface",
            "str",
            default="BOOTIF",
            pattern=INTERFACE_RE,
            inherit=(("group", "provision_interface"),),
        ),
        Field(
            "provision_method",
            "token",
            default="torrent",
            inherit=(("group", "provision_method"), ("cluster", "provision_method")),
        ),
        Field(
            "provision_fallback",
            "token",
            default="http",
            inherit=(("group", "provision_fallback"), ("cluster", "provision_fallback")),
        ),
        Field(
            "domain", "str", inherit=(("group", "domain"), ("cluster", "domain")), pattern=DOMAIN_RE
        ),
        Field(
            "unmanaged_bmc_users",
            "choice",
            choices=("skip", "disable", "delete"),
            inherit=(("group", "unmanaged_bmc_users"),),
        ),
        Field("tpm_uuid", "str"),
        Field("tpm_pubkey", "text"),
        Field("tpm_sha256", "str"),
        Field("vendor", "str"),
        Field("assettag", "str"),
        # Boot policy (docs/BOOT.md, "Who may claim a node"): set through
        # /config/node/<n>/_arm and by luna2d itself, shown by GET .../_arm.
        Field("armed", "choice", choices=("once", "continuous"), internal=True),
        Field("armed_until", "int", internal=True),
        Field("install_grant", "choice", choices=("power", "discovery", "manual"), internal=True),
        Field("install_grant_until", "int", internal=True),
        IFSETTINGS,
    )
    + RACK_FIELDS,
)

GROUP = Kind(
    name="group",
    rename=("newgroupname",),
    interfaces="network",
    has_secrets=True,
    boot="global",
    members=Members("refers", kind="node", field="group"),
    # The CLI reads a group's flag as setupbmc (as the incumbent answers it).
    shown_as=(("bmcsetup", "setupbmc"),),
    fields=(
        # The spec's name for a group's flag is bmcsetup (a node's is
        # setupbmc, inheriting this); the TrinityX CLI sends setupbmc.
        Field("bmcsetup", "bool", aliases=("setupbmc",), default=False),
        Field("bmcsetupname", "ref", ref="bmcsetup"),
        Field("domain", "str", inherit=(("cluster", "domain"),), pattern=DOMAIN_RE),
        Field("osimage", "ref", ref="osimage"),
        Field("osimagetag", "str"),
        Field("partscript", "script", wire="base64"),
        Field("postscript", "script", wire="base64"),
        Field("prescript", "script", wire="base64"),
        Field(
            "kerneloptions",
            "str",
            aliases=("kernopts",),
            pattern=KERNEL_OPTIONS_RE,
            inherit=KERNEL_OPTIONS_INHERIT[1:],
            wire="either",
        ),
        Field("provision_interface", "str", default="BOOTIF", pattern=INTERFACE_RE),
        Field("netboot", "bool", default=True),
        Field("localinstall", "bool", default=False),
        Field("bootmenu", "bool", default=False),
        COMMENT,
        Field(
            "provision_method",
            "token",
            default="torrent",
            inherit=(("cluster", "provision_method"),),
        ),
        Field(
            "provision_fallback",
            "token",
            default="http",
            inherit=(("cluster", "provision_fallback"),),
        ),
        Field("unmanaged_bmc_users", "choice", choices=("skip", "disable", "delete")),
        # The discovery menu may give this group's nodes a new MAC without arming.
        Field("mac_reassign", "bool", default=False),
        IFSETTINGS,
    ),
)

NETWORK = Kind(
    name="network",
    rename=("newnetname", "newnetworkname"),
    required=("network",),
    boot="global",
    members=Members("addresses"),
    fields=(
        Field("network", "cidr"),
        Field("gateway", "ip"),
        Field("ns_hostname", "str"),
        Field("nameserver_ip", "ip", aliases=("ns_ip",)),
        Field("ntp_server", "str", inherit=(("cluster", "ntp_server"),)),
        COMMENT,
        Field("dhcp", "bool", aliases=("dhcp_enable",), default=False),
        Field("dhcp_range_begin", "ip", aliases=("dhcp_begin",)),
        Field("dhcp_range_end", "ip", aliases=("dhcp_end",)),
        # host -> address: extra DNS records, through /config/dns/<network>
        # (luna2d/store/dns.py).
        Field("dns_records", "map", internal=True),
        # Kept and shown as the luna2 daemon keeps them; luna2d does not act
        # on them yet (docs/API.md, "Fields kept for the TrinityX clients").
        Field("gateway_metric", "int", minimum=0, maximum=2**32 - 1),
        Field("zone", "choice", choices=("internal", "external")),
        Field("type", "str", pattern=TOKEN_RE),
        Field("shared", "ref", ref="network"),
        Field("non_authoritative", "bool"),
    ),
)

OSIMAGE = Kind(
    name="osimage",
    rename=("newosimage", "newosimagename"),
    members=Members("refers", kind="node", field="osimage"),
    fields=(
        Field("kernelversion", "str", aliases=("kernver",)),
        Field("kernelmodules", "str", aliases=("kernmodules",)),
        Field(
            "kerneloptions", "str", aliases=("kernopts",), pattern=KERNEL_OPTIONS_RE, wire="either"
        ),
        Field("dracutmodules", "str"),
        Field("grab_exclude", "list", aliases=("grab_exclude_list",), wire="either"),
        Field("grab_filesystems", "list", wire="either"),
        Field("kernelfile", "str"),
        Field("initrdfile", "str"),
        Field("imagefile", "str", aliases=("tarball",)),
        Field("torrent", "str"),
        Field("path", "str"),
        Field("distribution", "token", default="redhat"),
        Field("osrelease", "str"),
        COMMENT,
        # tag -> {kernelfile, initrdfile, imagefile}: written by .../tag,
        # shown as the list of tag names.
        Field("tags", "map", readonly=True),
    ),
)

BMCSETUP = Kind(
    name="bmcsetup",
    rename=("newbmcname", "newbmcsetupname"),
    members=Members("refers", kind="node", field="bmcsetup"),
    fields=(
        Field("mgmtchannel", "int", default=1, minimum=0, maximum=15),
        Field("netchannel", "int", default=1, minimum=0, maximum=15),
        Field("password", "secret", secret=True),
        Field("username", "str"),
        Field("userid", "int", default=2, minimum=1, maximum=63),
        COMMENT,
        Field(
            "unmanaged_bmc_users", "choice", choices=("skip", "disable", "delete"), default="skip"
        ),
    ),
)

SWITCH = Kind(
    name="switch",
    rename=("newswitchname",),
    interfaces="single",
    rack_device=True,
    members=Members("refers", kind="node", field="switch"),
    fields=(
        Field("oid", "str", default=".1.3.6.1.2.1.17.7.1.2.2.1.2"),
        Field("read", "str", aliases=("readcommunity",), default="public"),
        Field("rw", "secret", aliases=("rwcommunity",), default="private", secret=True),
        Field("vendor", "str"),
        Field("macaddress", "mac", aliases=("macaddr",)),
        COMMENT,
        Field("uplinkports", "str"),  # kept and shown; luna2d does not act on it yet
    )
    + RACK_FIELDS,
)

OTHERDEV = Kind(
    name="otherdev",
    rename=("newotherdevname", "newotherdevicename"),
    interfaces="single",
    rack_device=True,
    members=NO_MEMBERS,
    fields=(Field("vendor", "str"), Field("macaddress", "mac", aliases=("macaddr",)), COMMENT)
    + RACK_FIELDS,
)

RACK = Kind(
    name="rack",
    rename=("newrackname",),
    reserved=("inventory",),
    members=Members("placed"),
    fields=(
        # The devices in the rack, kept on the devices themselves.
        Field("devices", "records", stored=False),
        Field("size", "int", default=42, minimum=1, maximum=100),
        Field("order", "choice", choices=("ascending", "descending"), default="ascending"),
        Field("room", "str"),
        Field("site", "str"),
        COMMENT,
    ),
)

CONTROLLER = Kind(
    name="controller",
    public=False,
    interfaces="single",
    rack_device=True,
    infra=True,
    boot="global",
    fields=(
        Field("status", "choice", choices=("primary", "standby"), default="primary"),
        Field("serverport", "int", default=7050, minimum=1, maximum=65535),
        Field("luna_config", "str"),
        Field("vendor", "str"),
    )
    + RACK_FIELDS,
)

CLUSTER = Kind(
    name="cluster",
    public=False,
    singleton=True,
    boot="global",
    fields=(
        Field("ntp_server", "str"),
        Field("technical_contacts", "str"),
        Field("provision_method", "token", aliases=("provisioning_method",), default="torrent"),
        Field("provision_fallback", "token", aliases=("provisioning_fallback",), default="http"),
        Field("debug", "bool", default=False),
        Field("domain", "str", default="cluster", pattern=DOMAIN_RE),
        COMMENT,
        # The discovery menu lists node and group names to unknown machines.
        Field("discovery_names", "bool", default=False),
        # Kept and shown as the luna2 daemon keeps them; luna2d does not act
        # on them yet (docs/API.md, "Fields kept for the TrinityX clients").
        Field("user", "str"),
        Field("nameserver_ip", "iplist"),
        Field("forwardserver_ip", "iplist"),
        Field("domain_search", "str", pattern=DOMAIN_LIST_RE),
        Field("security", "bool"),
        Field("packing_bootpause", "bool"),
        Field("createnode_ondemand", "bool"),
        Field("createnode_macashost", "bool"),
        Field("nextnode_discover", "bool"),
        Field("bind_legacy", "bool"),
        Field("dnssec_enable", "bool"),
        Field("dnssec_validation", "bool"),
    ),
)

USER = Kind(
    name="user",
    rename=("newusername",),
    fields=(
        Field("role", "choice", choices=("admin", "readonly"), default="readonly"),
        Field("pwhash", "str", internal=True),
        # Tokens are bound to these (luna2d/store/users.py).
        Field("uid", "str", internal=True),
        Field("generation", "int", minimum=0, internal=True),
        COMMENT,
    ),
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        NODE,
        GROUP,
        NETWORK,
        OSIMAGE,
        BMCSETUP,
        SWITCH,
        OTHERDEV,
        RACK,
        CONTROLLER,
        CLUSTER,
        USER,
    )
}

# Relations served under a name that is not a kind: (owner kind, members).
# /config/osimagetag/<osimage>/_member: the nodes of an image that boot a tag.
RELATIONS: dict[str, tuple[str, Members]] = {
    "osimagetag": ("osimage", Members("refers", kind="node", field="osimage", also="osimagetag")),
}


class _KindNames(Sequence[str]):
    """The names of the kinds that satisfy a test, read live from KINDS (so
    that a kind registered later is seen)."""

    def __init__(self, test: Callable[[Kind], bool]) -> None:
        self._test = test

    def _names(self) -> tuple[str, ...]:
        return tuple(k.name for k in KINDS.values() if self._test(k))

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        kind = KINDS.get(name) if isinstance(name, str) else None
        return kind is not None and self._test(kind)

    def __repr__(self) -> str:
        return repr(self._names())


# Kinds served by the generic /config/<kind>/<name> machinery.
GENERIC: Sequence[str] = _KindNames(lambda k: k.public)
# Kinds that own secrets (/config/secrets/<kind>/<name>).
SECRET_OWNERS: Sequence[str] = _KindNames(lambda k: k.has_secrets)
# Which kinds a device in a rack or the inventory may be.
RACK_TYPES: Sequence[str] = _KindNames(lambda k: k.rack_device)


def kind_named(name: str) -> Kind:
    """Look a kind up by name, 404 when there is no such kind."""
    try:
        return KINDS[name]
    except KeyError:
        raise NotFound(f"there is no object kind {name!r}") from None


def kinds_where(test: Callable[[Kind], bool]) -> list[Kind]:
    """Every kind that satisfies ``test``, in table order."""
    return [k for k in KINDS.values() if test(k)]


def referrers(kind: str) -> list[tuple[Kind, Field]]:
    """Every (kind, field) whose value names an object of ``kind``."""
    return [(k, f) for k in KINDS.values() for f in k.refs if f.ref == kind]


def register(kind: Kind) -> Callable[[], None]:
    """Add ``kind`` to the table; answers a function that takes it out
    again. For extensions and tests: a State built afterwards knows it."""
    if kind.name in KINDS or kind.name in RELATIONS:
        raise ValueError(f"kind {kind.name!r} is already defined")
    KINDS[kind.name] = kind

    def unregister() -> None:
        KINDS.pop(kind.name, None)

    return unregister
