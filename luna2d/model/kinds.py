"""Every object kind luna2d keeps, described once as data.

The store and the config resources read this table and nothing else to know
which fields a kind has, how they are spelled on the wire, what they
inherit from, what they refer to and how a kind is renamed. Kind-specific
behaviour (IP allocation, renumbering, secrets) is a hook keyed on the
``interfaces`` mode or on the kind's name, never a copy of the machinery."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from luna2d.errors import NotFound
from luna2d.model.fields import DOMAIN_RE, INTERFACE_RE, KERNEL_OPTIONS_RE, Field

# Interface modes:
#   "multi":   named interfaces with network, ipaddress, macaddress (node)
#   "network": named interfaces with a network only (group templates)
#   "single":  one interface, shown as top-level network + ipaddress fields
#   None:      no addresses


@dataclass(frozen=True)
class Kind:
    name: str
    fields: tuple[Field, ...]
    rename: tuple[str, ...] = ()
    interfaces: str | None = None
    required: tuple[str, ...] = ()
    public: bool = True  # served by the generic /config/<kind> endpoints
    has_secrets: bool = False
    rack_device: bool = False
    by_name: dict[str, Field] = dc_field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        table: dict[str, Field] = {}
        for f in self.fields:
            table[f.name] = f
            for alias in f.aliases:
                table[alias] = f
        object.__setattr__(self, "by_name", table)

    def field(self, name: str) -> Field | None:
        """The field spelled ``name`` (canonical or alias), if any."""
        return self.by_name.get(name)

    @property
    def refs(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type == "ref")


COMMENT = Field("comment", "text", aliases=("comments",))
SCRIPTS = ("prescript", "partscript", "postscript")

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
    rack_device=True,
    fields=(
        Field("group", "ref", ref="group"),
        Field("macaddr", "mac", aliases=("macaddress",), internal=True),
        Field("switch", "ref", ref="switch"),
        Field("switchport", "int", minimum=0, maximum=1_000_000),
        Field("service", "bool", default=False),
        Field("setupbmc", "bool", default=False, inherit=(("group", "bmcsetup"),)),
        Field("bmcsetup", "ref", ref="bmcsetup", inherit=(("group", "bmcsetupname"),)),
        Field("status", "str"),
        COMMENT,
        Field("osimage", "ref", ref="osimage", inherit=(("group", "osimage"),)),
        Field("osimagetag", "str", inherit=(("group", "osimagetag"),)),
        Field("prescript", "script", inherit=(("group", "prescript"),)),
        Field("partscript", "script", inherit=(("group", "partscript"),)),
        Field("postscript", "script", inherit=(("group", "postscript"),)),
        Field("netboot", "bool", default=True, inherit=(("group", "netboot"),)),
        Field("bootmenu", "bool", default=False, inherit=(("group", "bootmenu"),)),
        Field("localinstall", "bool", default=False, inherit=(("group", "localinstall"),)),
        Field("provision_interface", "str", default="BOOTIF", pattern=INTERFACE_RE,
              inherit=(("group", "provision_interface"),)),
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
        Field("domain", "str", inherit=(("group", "domain"), ("cluster", "domain")), pattern=DOMAIN_RE),
        Field("unmanaged_bmc_users", "choice", choices=("skip", "disable", "delete"),
              inherit=(("group", "unmanaged_bmc_users"),)),
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
    )
    + RACK_FIELDS,
)

GROUP = Kind(
    name="group",
    rename=("newgroupname",),
    interfaces="network",
    has_secrets=True,
    fields=(
        Field("bmcsetup", "bool", default=False),
        Field("bmcsetupname", "ref", ref="bmcsetup"),
        Field("domain", "str", inherit=(("cluster", "domain"),), pattern=DOMAIN_RE),
        Field("osimage", "ref", ref="osimage"),
        Field("osimagetag", "str"),
        Field("partscript", "script"),
        Field("postscript", "script"),
        Field("prescript", "script"),
        Field("provision_interface", "str", default="BOOTIF", pattern=INTERFACE_RE),
        Field("netboot", "bool", default=True),
        Field("localinstall", "bool", default=False),
        Field("bootmenu", "bool", default=False),
        COMMENT,
        Field("provision_method", "token", default="torrent", inherit=(("cluster", "provision_method"),)),
        Field("provision_fallback", "token", default="http", inherit=(("cluster", "provision_fallback"),)),
        Field("unmanaged_bmc_users", "choice", choices=("skip", "disable", "delete")),
        # The discovery menu may give this group's nodes a new MAC without arming.
        Field("mac_reassign", "bool", default=False),
    ),
)

NETWORK = Kind(
    name="network",
    rename=("newnetname", "newnetworkname"),
    required=("network",),
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
    ),
)

OSIMAGE = Kind(
    name="osimage",
    rename=("newosimage", "newosimagename"),
    fields=(
        Field("kernelversion", "str", aliases=("kernver",)),
        Field("kernelmodules", "str", aliases=("kernmodules",)),
        Field("kerneloptions", "str", aliases=("kernopts",), pattern=KERNEL_OPTIONS_RE),
        Field("dracutmodules", "str"),
        Field("grab_exclude", "list", aliases=("grab_exclude_list",)),
        Field("grab_filesystems", "list"),
        Field("kernelfile", "str"),
        Field("initrdfile", "str"),
        Field("imagefile", "str", aliases=("tarball",)),
        Field("torrent", "str"),
        Field("path", "str"),
        Field("distribution", "token", default="redhat"),
        Field("osrelease", "str"),
        COMMENT,
        Field("tags", "text", internal=True),
    ),
)

BMCSETUP = Kind(
    name="bmcsetup",
    rename=("newbmcname", "newbmcsetupname"),
    fields=(
        Field("mgmtchannel", "int", default=1, minimum=0, maximum=15),
        Field("netchannel", "int", default=1, minimum=0, maximum=15),
        Field("password", "secret", secret=True),
        Field("username", "str"),
        Field("userid", "int", default=2, minimum=1, maximum=63),
        COMMENT,
        Field("unmanaged_bmc_users", "choice", choices=("skip", "disable", "delete"), default="skip"),
    ),
)

SWITCH = Kind(
    name="switch",
    rename=("newswitchname",),
    interfaces="single",
    rack_device=True,
    fields=(
        Field("oid", "str", default=".1.3.6.1.2.1.17.7.1.2.2.1.2"),
        Field("read", "str", aliases=("readcommunity",), default="public"),
        Field("rw", "secret", aliases=("rwcommunity",), default="private", secret=True),
        Field("vendor", "str"),
        COMMENT,
    )
    + RACK_FIELDS,
)

OTHERDEV = Kind(
    name="otherdev",
    rename=("newotherdevname", "newotherdevicename"),
    interfaces="single",
    rack_device=True,
    fields=(Field("vendor", "str"), COMMENT) + RACK_FIELDS,
)

RACK = Kind(
    name="rack",
    rename=("newrackname",),
    fields=(
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
    for k in (NODE, GROUP, NETWORK, OSIMAGE, BMCSETUP, SWITCH, OTHERDEV, RACK, CONTROLLER, CLUSTER, USER)
}

# Kinds served by the generic /config/<kind>/<name> machinery.
GENERIC = tuple(k.name for k in KINDS.values() if k.public)
# Kinds that own secrets (/config/secrets/<kind>/<name>).
SECRET_OWNERS = tuple(k.name for k in KINDS.values() if k.has_secrets)

# Which kinds a device in a rack or the inventory may be.
RACK_TYPES = {"node": "node", "switch": "switch", "otherdev": "otherdev", "controller": "controller"}


def kind_named(name: str) -> Kind:
    """Look a kind up by name, 404 when there is no such kind."""
    try:
        return KINDS[name]
    except KeyError:
        raise NotFound(f"there is no object kind {name!r}") from None


def referrers(kind: str) -> list[tuple[Kind, Field]]:
    """Every (kind, field) whose value names an object of ``kind``."""
    return [(k, f) for k in KINDS.values() for f in k.refs if f.ref == kind]
