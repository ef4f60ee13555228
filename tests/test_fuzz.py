"""Property tests with hypothesis: random and plausible-but-wrong input to
every POST endpoint, random GET paths and methods. CoverageTests reads the
POST routes from the Klein apps' URL maps and fails when one is no target
here. /control runs against a fake IPMI client whose BMCs answer at once
(some time out), so hostlist requests are answered, not refused with 503.

Each example runs a short sequence of requests against a fresh API (the
whole HTTP stack through StubTreq, the store on a real SQLite file run
synchronously), starting from bootstrap's sample cluster or from a richer
one (RICH_SETUP: one object of every kind, a rack in use, secrets, a tag,
MACs, users). After every request:

- the answer is 2xx or 4xx (never 5xx; the documented exceptions are the
  503 of ``/config/osimage/<o>/_pack``, the 503 of an osimage ``_clone``
  without ``nocopy`` (copying the files comes with issue 11), and the spec's 500 of ``GET
  /monitor/node/<n>`` for a node whose state is a failure, which must say
  so), JSON with ``content-type: application/json`` (204 has no body), and
  a 4xx body is an object with a string ``message``;
- the live state keeps its invariants: no address or MAC held twice, every
  interface address inside its network, every reference (node/group
  fields, interface networks) naming an existing object of the right kind,
  required fields set, gateways and nameservers held by no device but a
  controller, racks without overlaps, the indexes matching the interfaces.

After each example a fresh Store opened on the same SQLite file with the
same key must show exactly what the live store shows (every kind in the
same order, secrets, cluster, tags, inventory, raw objects, the address and
MAC indexes).

Also: unknown paths and methods answer JSON 404/405, a sweep of nesting
depths around the recursion limits, and random ini text into
``luna2d.config.load`` gives a Config or a ConfigError, nothing else.
``LUNA2D_FUZZ_SCALE=10`` multiplies every example count for a long hunt."""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote_to_bytes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.trial import unittest

from luna2d import config as configmod
from luna2d.errors import ConfigError
from luna2d.ipmi.session import Fault, Success
from luna2d.model.kinds import GENERIC, KINDS
from luna2d.resources.boot import BootAPI
from luna2d.resources.config import ConfigAPI
from luna2d.resources.control import ControlAPI
from luna2d.resources.files import FilesAPI
from luna2d.resources.monitor import MonitorAPI, state_ok
from luna2d.resources.root import RootAPI
from luna2d.resources.service import ServiceAPI
from luna2d.store import crypto as cryptomod
from luna2d.store import store as storemod
from luna2d.store.state import State, ip_key
from luna2d.store.store import JOURNAL_FIELDS, Store
from tests.support import (
    API,
    PASSWORD,
    InlineThreads,
    hash_inline,
    load_store,
    open_store,
)

# -- vocabulary ---------------------------------------------------------------------------

# Names per kind: the ones bootstrap made, the ones examples may create, and
# a few that name another kind's objects.
KIND_NAMES = {
    "node": ["node001", "node002", "node004", "node005", "node006"],
    "group": ["compute", "g2"],
    "network": ["cluster", "ipmi", "ib", "net2", "net6"],
    "osimage": ["compute", "img2"],
    "bmcsetup": ["compute", "b2"],
    "switch": ["sw1", "sw2"],
    "otherdev": ["dev1", "dev2"],
    "rack": ["rack1", "r2"],
    "user": ["admin2", "ro1"],
    "controller": ["controller"],
}
NAMES = sorted({n for pool in KIND_NAMES.values() for n in pool} | {"inventory", "luna", "cluster"})
BAD_NAMES = [
    "",
    "UPPER",
    "-x",
    "a" * 64,
    "sp ace",
    "..",
    "a/b",
    "\u00e9t\u00e9",
    "_delete",
    "n\x00",
]
IFACE_NAMES = ["BOOTIF", "BMC", "ib0", "eth1"]
BAD_IFACE_NAMES = ["", "bad name", "x" * 40, "-a"]
SECRET_NAMES = ["key", "software license", "other"]
BAD_SECRET_NAMES = ["bad/name", "", " lead", "x" * 200]
GOOD_CIDRS = [
    "10.150.0.0/16",
    "10.151.0.0/24",
    "10.141.0.0/16",
    "10.141.0.0/24",
    "10.141.0.0/29",
    "10.148.0.0/17",
    "10.151.0.0/30",
    "fd00::/64",
    "10.141.0.0/8",
]
BAD_CIDRS = [
    "10.141.0.0/31",
    "10.141.0.0/32",
    "fd00::/127",
    "10.141.0.0/33",
    "10.141.0.0",
    "nonsense",
    "",
    "0.0.0.0/0",
    "::/0",
]
FIXED_IPS = [
    "10.141.255.254",
    "10.141.0.200",
    "10.141.0.253",
    "10.141.0.0",
    "10.141.255.255",
    "10.148.255.254",
    "fd00::1",
    "fd00::2",
    "::1",
    "10.141.0.1",
    "10.148.0.1",
    "10.149.0.1",
    "10.150.0.1",
    "10.151.0.1",
    "10.151.0.3",
    "10.151.0.255",
]
BAD_IPS = ["256.1.1.1", "10.141.0.01", " 10.141.0.5 ", "", "10.141.0.5/16", "x", "1e3"]
TOKEN_ROLES = ["admin"] * 30 + ["readonly", "node", "none", "junk", "admin2", "ro1"]

ADMIN_NAME = "luna"


def often(good: st.SearchStrategy, bad: st.SearchStrategy, ratio: int = 7) -> st.SearchStrategy:
    """Mostly ``good``, sometimes ``bad`` (one in ratio + 1). Not one_of over
    repeated branches: hypothesis folds identical branches into one."""
    return st.sampled_from([True] * ratio + [False]).flatmap(lambda ok: good if ok else bad)


# -- value strategies ---------------------------------------------------------------------


def _long(c: str, n: int) -> str:
    return c * n


plain_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=10)
weird_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfff",
            "\u202e",
            "\n",
            "yes",
            "no",
            "true",
            "0",
            "1",
            "-1",
            "12",
            " 7 ",
            "null",
            "None",
            "/abs/path",
            "rel/path",
        ]
    ),
    st.builds(
        _long,
        st.sampled_from(["a", "\u00e9", "\U0001f600"]),
        st.sampled_from([4095, 4096, 4097, 65536, 65537]),
    ),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=300),
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=False, allow_infinity=False),
    weird_text,
)
wild_json = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(NAMES)), children, max_size=4
        ),
    ),
    max_leaves=8,
)


def _ip_in(prefix: str, c: int, d: int) -> str:
    return f"{prefix}.{c}.{d}"


good_ips = st.one_of(
    st.builds(
        _ip_in,
        st.sampled_from(["10.141", "10.148", "10.149", "10.150", "10.151"]),
        st.sampled_from([0, 0, 0, 1]),
        st.integers(1, 12),
    ),
    st.sampled_from(FIXED_IPS),
)
ips = often(
    good_ips,
    st.one_of(
        st.sampled_from(BAD_IPS),
        st.ip_addresses().map(str),
        st.builds(
            _ip_in, st.sampled_from(["10.200", "192.168"]), st.integers(0, 255), st.integers(0, 255)
        ),
    ),
    3,
)


def _mac(n: int, sep: str, upper: bool) -> str:
    text = sep.join(["aa", "bb", "cc", "dd", "ee", f"{n:02x}"])
    return text.upper() if upper else text


good_macs = st.builds(_mac, st.integers(0, 4), st.sampled_from([":", ":", "-", ""]), st.booleans())
macs = often(
    good_macs,
    st.sampled_from(
        [
            "",
            "zz:zz:zz:zz:zz:zz",
            "aa:bb:cc:dd:ee",
            "aa:bb-cc:dd:ee:ff",
            " aa:bb:cc:dd:ee:01 ",
            "aa:bb:cc:dd:ee:ff:00",
        ]
    ),
)
names = often(st.sampled_from(NAMES), st.sampled_from(BAD_NAMES), 3)


@functools.cache
def names_of(kind: str | None) -> st.SearchStrategy:
    """Mostly names of that kind, sometimes any name, sometimes a bad one."""
    pool = KIND_NAMES.get(kind or "", NAMES)
    return often(st.sampled_from(pool), names, 3)


scripts = st.one_of(plain_text, plain_text.map(lambda t: base64.b64encode(t.encode()).decode()))


def good_value(f: Any) -> st.SearchStrategy:
    """Values a field accepts (references may still name missing objects)."""
    if getattr(f, "pattern", None) is not None:
        # A text field with a fixed form (an interface name, a DNS domain):
        # samples of that form, and "" which unsets it.
        samples = [
            v
            for v in IFACE_NAMES + ["hpc.example.org", "cluster", "lab-1.example."]
            if f.pattern.fullmatch(v)
        ]
        return st.one_of(st.sampled_from(samples), st.just(""))
    if f.type in ("str", "text", "secret"):
        return plain_text
    if f.type == "script":
        return scripts
    if f.type == "int":
        low = f.minimum if f.minimum is not None else -5
        high = f.maximum if f.maximum is not None else 1000
        return st.one_of(
            st.integers(low, min(high, low + 10)),
            st.integers(low, high),
            st.integers(low, min(high, low + 10)).map(str),
        )
    if f.type == "bool":
        return st.one_of(st.booleans(), st.sampled_from([0, 1, "yes", "no", "true", "off"]))
    if f.type == "ip":
        return st.one_of(good_ips, st.just(""))
    if f.type == "iplist":
        return st.one_of(good_ips, st.lists(good_ips, max_size=3).map(", ".join), st.just(""))
    if f.type == "cidr":
        return st.sampled_from(GOOD_CIDRS)
    if f.type == "mac":
        return good_macs
    if f.type == "list":
        return st.one_of(st.lists(plain_text, max_size=3), plain_text)
    if f.type == "ref":
        return st.one_of(st.sampled_from(KIND_NAMES.get(f.ref, NAMES)), st.just(""))
    if f.type == "choice":
        return st.sampled_from(f.choices)
    if f.type == "token":
        return st.sampled_from(["torrent", "http", "tftp"])
    if f.type == "map":  # shown but set elsewhere: an echo is ignored
        return st.just({})
    if f.type == "records":
        return st.just([])
    raise AssertionError(f.type)


def bad_value(f: Any) -> st.SearchStrategy:
    """Values of the wrong type or shape for a field, or wild JSON."""
    by_type = {
        "int": st.sampled_from(
            ["1e3", "99999999999999999999", 2.5, 10**40, -(10**40), True, "", [1], -100, 10**6]
        ),
        "bool": st.sampled_from([2, -1, "maybe", "", [], {}, 0.5]),
        "ip": st.sampled_from(BAD_IPS + [167837953, ["10.141.0.1"], True]),
        "iplist": st.sampled_from(
            [
                "256.1.1.1",
                "10.141.0.01",
                "10.141.0.5/16",
                "x",
                167837953,
                True,
                "10.141.0.1,banana",
                ["10.141.0.1", 7],
            ]
        ),
        "cidr": st.sampled_from(BAD_CIDRS + [16, None]),
        "mac": st.sampled_from(["zz:zz:zz:zz:zz:zz", "aa:bb:cc:dd:ee", 1, ["aa"]]),
        "ref": st.sampled_from(BAD_NAMES + ["nope", 1, True, {"a": 1}] + NAMES),
        "choice": st.sampled_from(["", "other", "FRONT", 1, None]),
        "token": st.sampled_from(["Bad Word", "", "x" * 40, 7]),
    }
    return st.one_of(by_type.get(f.type, weird_text), wild_json)


@functools.cache
def field_values(f: Any) -> st.SearchStrategy:
    return often(good_value(f), bad_value(f))


@functools.cache
def iface_entry(for_group: bool = False) -> st.SearchStrategy:
    good_pairs = [
        st.tuples(st.just("network"), st.sampled_from(KIND_NAMES["network"])),
        st.tuples(st.just("options"), plain_text),
    ]
    if not for_group:
        good_pairs += [
            st.tuples(st.just("ipaddress"), st.one_of(good_ips, st.just(""))),
            st.tuples(st.just("macaddress"), st.one_of(good_macs, st.just(""), st.none())),
            st.tuples(st.just("force"), st.booleans()),
        ]
    bad_pairs = [
        st.tuples(st.just("interface"), st.one_of(st.sampled_from(BAD_IFACE_NAMES), wild_json)),
        st.tuples(st.just("network"), st.one_of(st.sampled_from(["nope", "", "NET"]), wild_json)),
        st.tuples(st.just("ipaddress"), st.one_of(ips, wild_json)),
        st.tuples(st.just("macaddress"), macs),
        st.tuples(st.just("options"), wild_json),
        st.tuples(st.just("force"), st.one_of(st.sampled_from(["maybe", 2]), wild_json)),
        st.tuples(st.sampled_from(["vlanid", "dhcp", "bogus"]), wild_json),
    ]
    return often(
        st.builds(
            lambda name, pairs: {"interface": name, **dict(pairs)},
            st.sampled_from(IFACE_NAMES),
            st.lists(often(st.one_of(*good_pairs), st.one_of(*bad_pairs), 6), max_size=3),
        ),
        st.one_of(st.lists(st.one_of(*good_pairs, *bad_pairs), max_size=4).map(dict), wild_json),
        5,
    )


@functools.cache
def iface_lists(for_group: bool = False) -> st.SearchStrategy:
    return often(st.lists(iface_entry(for_group), min_size=1, max_size=3), wild_json)


RACKABLE = [
    ("node", "node001"),
    ("node", "node002"),
    ("node", "node005"),
    ("switch", "sw1"),
    ("otherdev", "dev1"),
    ("controller", "controller"),
]
device_entry = often(
    st.builds(
        lambda dev, pairs: {"type": dev[0], "name": dev[1], **dict(pairs)},
        st.sampled_from(RACKABLE),
        st.lists(
            st.one_of(
                st.tuples(st.just("position"), st.integers(1, 44)),
                st.tuples(st.just("height"), st.integers(1, 4)),
                st.tuples(st.just("orientation"), st.sampled_from(["front", "back"])),
                st.tuples(st.just("vendor"), plain_text),
                st.tuples(
                    st.sampled_from(["position", "height"]),
                    st.sampled_from([0, 101, "3", 2.0, None, -1]),
                ),
                st.tuples(st.just("type"), st.sampled_from(["rack", "", None, "node"])),
                st.tuples(st.sampled_from(["rack", "bogus", "orientation", "name"]), wild_json),
            ),
            max_size=4,
        ),
    ),
    wild_json,
)
device_lists = often(st.lists(device_entry, max_size=4), wild_json)


@functools.cache
def key_values(kind_name: str) -> st.SearchStrategy:
    """(key, value) pairs for an object body of a kind: mostly its real
    fields with fitting values, sometimes wrong values or unknown keys."""
    kind = KINDS[kind_name]
    good = [
        st.tuples(st.just(key), field_values(f))
        for key, f in sorted(kind.by_name.items())
        if not f.internal
    ]
    extra_good = []
    for key in kind.rename:
        extra_good.append(st.tuples(st.just(key), names_of(kind_name)))
    if kind.interfaces == "multi":
        extra_good += [
            st.tuples(st.just("interfaces"), iface_lists()),
            st.tuples(st.sampled_from(["macaddr", "macaddress"]), macs),
        ]
    if kind.interfaces == "network":
        extra_good.append(st.tuples(st.just("interfaces"), iface_lists(for_group=True)))
    if kind.interfaces == "single":
        extra_good += [
            st.tuples(
                st.just("network"), often(st.sampled_from(KIND_NAMES["network"] + [""]), wild_json)
            ),
            st.tuples(st.just("ipaddress"), ips),
        ]
    if kind_name == "rack":
        extra_good.append(st.tuples(st.just("devices"), device_lists))
    if kind_name == "user":
        extra_good.append(
            st.tuples(
                st.just("password"),
                often(
                    st.sampled_from(["long-enough-pw", "another-pw-1"]),
                    st.one_of(st.just("short"), weird_text, wild_json),
                ),
            )
        )
    bad = st.one_of(
        st.tuples(st.just("name"), st.one_of(names, wild_json)),
        st.tuples(
            st.sampled_from(
                ["interfaces", "network", "ipaddress", "macaddr", "devices", "password"]
            ),
            wild_json,
        ),
        st.tuples(
            st.sampled_from(["members", "tags", "_override", "_osimage_source", "_x_source"]),
            wild_json,
        ),
        st.tuples(st.sampled_from(sorted(kind.by_name) or ["comment"]), wild_json),
        st.tuples(
            st.one_of(
                st.text(max_size=6), st.sampled_from(["bogus", "group", "size", "rack", "pwhash"])
            ),
            wild_json,
        ),
    )
    return often(st.one_of(*(good + extra_good)), bad, 12)


@functools.cache
def required_pairs(kind_name: str) -> st.SearchStrategy:
    """What creating an object of the kind needs, most of the time."""
    if kind_name == "node":
        return st.sampled_from([[("group", "compute")]] * 3 + [[("group", "g2")], []])
    if kind_name == "network":
        return often(st.sampled_from(GOOD_CIDRS).map(lambda c: [("network", c)]), st.just([]))
    if kind_name == "user":
        return st.sampled_from([[("password", "long-enough-pw")]] * 3 + [[]])
    return st.just([])


@st.composite
def object_body(draw: Any, kind_name: str) -> Any:
    if draw(st.integers(0, 29)) == 0:
        return draw(wild_json)
    pairs = draw(required_pairs(kind_name)) + draw(st.lists(key_values(kind_name), max_size=3))
    return dict(pairs)


@st.composite
def enveloped(draw: Any, kind: str, name: str, inner: Any) -> Any:
    """The right envelope, mostly; sometimes a subtly wrong one."""
    shape = draw(st.integers(0, 29))
    if shape <= 24:
        return {"config": {kind: {name: inner}}}
    if shape == 25:
        return {"config": {kind: {draw(names): inner}}}
    if shape == 26:
        return {"config": {kind: {name: inner, draw(names): draw(wild_json)}}}
    if shape == 27:
        return draw(
            st.sampled_from(
                [
                    {"config": {kind: inner}},
                    {kind: {name: inner}},
                    {"config": inner},
                    inner,
                    {"config": {kind: []}},
                    {"config": {kind: {name: inner}}, "extra": 1},
                ]
            )
        )
    if shape == 28:
        return {"config": {draw(st.sampled_from(list(KINDS) + ["secrets", "x"])): {name: inner}}}
    return draw(wild_json)


# -- request strategies -------------------------------------------------------------------


def q(segment: str) -> str:
    return quote(segment, safe="")


GENERIC_WEIGHTED = list(GENERIC) + [
    "node",
    "node",
    "network",
    "group",
    "switch",
    "rack",
    "otherdev",
]


POST_COMBOS = (
    [("upsert", k) for k in GENERIC for _ in range(2)]
    + [("clone", k) for k in GENERIC]
    + [
        ("interfaces", "node"),
        ("interfaces", "node"),
        ("interfaces", "group"),
        ("interfaces", "switch"),
        ("cluster", ""),
        ("cluster", ""),
        ("secrets", "node"),
        ("secrets", "group"),
        ("secret", "node"),
        ("secret", "group"),
        ("secret_clone", "node"),
        ("secret_clone", "group"),
        ("secrets", "switch"),
        ("secret_delete", "node"),
        ("secret_delete", "group"),
        ("tag", "osimage"),
        ("kernel", "osimage"),
        ("inventory", ""),
        ("inventory", ""),
        ("journal", ""),
        ("token", ""),
        ("list", ""),
        ("delete", ""),
        ("upsert", "cluster"),
        ("upsert", "controller"),
        ("upsert", "bogus"),
        ("clone", "controller"),
        ("monitor", "node"),
        ("monitor", "node"),
        ("control", ""),
        ("control", ""),
        ("arm", "node"),
        ("disarm", "node"),
        ("dns", "network"),
        ("dns", "network"),
        ("dns_delete", "network"),
    ]
)
DNS_HOSTS = ["storage01", "license.cluster", "NAS", "bad host", "-x"]
MONITOR_PATHS = [
    "node",
    "status",
]  # /monitor/node/<n> (the installer's) and /monitor/status/<n> (the spec's)
# The control actions docs/API.md names, as (command, action).
CONTROL_PAIRS = [
    ("power", "status"),
    ("power", "on"),
    ("power", "off"),
    ("power", "reset"),
    ("power", "cycle"),
    ("power", "soft"),
    ("chassis", "identify"),
    ("chassis", "noidentify"),
    ("sel", "list"),
    ("sel", "clear"),
]


def post_path(what: str, kind: str, name: str, extra: str = "") -> str:
    """The path of the POST endpoint ``what`` for ``kind`` and ``name``;
    ``extra`` is the secret's name, the /monitor path word or the control
    ``command/action``."""
    if what == "token":
        return "/token"
    if what == "upsert":
        return f"/config/{q(kind)}/{q(name)}"
    if what == "clone":
        return f"/config/{q(kind)}/{q(name)}/_clone"
    if what == "interfaces":
        return f"/config/{kind}/{q(name)}/interfaces"
    if what == "cluster":
        return "/config/cluster"
    if what == "secrets":
        return f"/config/secrets/{kind}/{q(name)}"
    if what in ("secret", "secret_clone", "secret_delete"):
        suffix = {"secret": "", "secret_clone": "/_clone", "secret_delete": "/_delete"}[what]
        return f"/config/secrets/{kind}/{q(name)}/{q(extra)}{suffix}"
    if what in ("tag", "kernel"):
        return f"/config/osimage/{q(name)}/{what}"
    if what == "inventory":
        return "/config/rack/inventory"
    if what == "journal":
        return "/journal"
    if what == "list":
        return f"/config/{q(kind)}"
    if what == "delete":
        return f"/config/{q(kind)}/{q(name)}/_delete"
    if what == "monitor":
        return f"/monitor/{extra}/{q(name)}"
    if what == "control":
        command, _, action = extra.partition("/")
        return f"/control/action/{q(command)}/_{q(action)}"
    if what in ("arm", "disarm"):
        return f"/config/node/{q(name)}/_{what}"
    if what == "dns":
        return f"/config/dns/{q(name)}"
    if what == "dns_delete":
        return f"/config/dns/{q(name)}/{q(extra)}/_delete"
    raise AssertionError(what)


@st.composite
def post_target(draw: Any) -> tuple[str, str, str]:
    """(what, path, kind|name, owner-kind|owner or command/action) of a POST endpoint."""
    what, kind = draw(st.sampled_from(POST_COMBOS))
    if what in ("list", "delete"):
        kind = draw(
            st.sampled_from(
                list(GENERIC) + ["cluster", "controller", "secrets", "osimagetag", "bogus"]
            )
        )
    name = draw(names_of(kind))
    extra = ""
    if what in ("secret", "secret_clone", "secret_delete"):
        extra = draw(st.sampled_from(SECRET_NAMES))
    elif what == "monitor":
        extra = draw(st.sampled_from(MONITOR_PATHS))
    elif what == "dns_delete":
        extra = draw(st.sampled_from(DNS_HOSTS))
    elif what == "control":
        command, action = draw(
            often(
                st.sampled_from(CONTROL_PAIRS),
                st.tuples(
                    st.sampled_from(["power", "chassis", "sel", "device", "bogus", ""]),
                    st.sampled_from(["status", "on", "identify", "list", "id", "bogus", ""]),
                ),
                5,
            )
        )
        extra = f"{command}/{action}"
    path = post_path(what, kind, name, extra)
    if what in ("token", "cluster", "inventory", "journal"):
        return what, path, ""
    if what == "list":
        return what, path, kind
    if what == "control":
        return what, path, extra
    return what, path, kind + "|" + name


secret_item = often(
    st.builds(
        lambda n, c, pairs: {"secretname": n, "content": c, **dict(pairs)},
        st.sampled_from(SECRET_NAMES),
        plain_text,
        st.lists(
            st.one_of(
                st.tuples(st.just("content"), plain_text),
                st.tuples(st.just("path"), st.sampled_from(["/etc/key", "/root/x", None])),
                st.tuples(st.just("newsecretname"), st.sampled_from(SECRET_NAMES + ["renamed"])),
                st.tuples(st.just("content"), often(weird_text, wild_json, 1)),
                st.tuples(st.just("path"), st.sampled_from(["rel", "", 1])),
                st.tuples(st.just("newsecretname"), st.sampled_from(BAD_SECRET_NAMES + [None, 1])),
            ),
            max_size=3,
        ),
    ),
    st.one_of(
        st.lists(
            st.one_of(
                st.tuples(
                    st.sampled_from(["secretname", "name"]),
                    st.one_of(st.sampled_from(SECRET_NAMES + BAD_SECRET_NAMES), wild_json),
                ),
                st.tuples(
                    st.sampled_from(["content", "path", "newsecretname", "bogus"]), wild_json
                ),
            ),
            max_size=4,
        ).map(dict),
        wild_json,
    ),
)


@st.composite
def plausible_body(draw: Any, what: str, extra: str) -> Any:
    """A structurally plausible body for the endpoint ``what``."""
    if what == "token":
        return draw(
            often(
                st.fixed_dictionaries(
                    {
                        "username": st.sampled_from([ADMIN_NAME, "admin2", "ro1", "nobody"]),
                        "password": st.sampled_from([PASSWORD, "long-enough-pw", "wrong"]),
                    }
                ),
                st.lists(
                    st.one_of(
                        st.tuples(st.sampled_from(["username", "password", "extra"]), wild_json),
                        st.tuples(st.just("username"), st.sampled_from([ADMIN_NAME, "admin2"])),
                        st.tuples(
                            st.just("password"), st.sampled_from([PASSWORD, "long-enough-pw"])
                        ),
                    ),
                    max_size=3,
                ).map(dict),
            )
        )
    if what in ("upsert", "clone", "interfaces", "tag", "kernel"):
        kind, name = extra.split("|", 1)
        if what == "interfaces":
            inner = draw(
                often(
                    st.builds(lambda v: {"interfaces": v}, iface_lists(kind == "group")),
                    object_body("node"),
                    6,
                )
            )
        elif what == "tag":
            inner = draw(
                often(
                    st.builds(lambda t: {"tag": t}, st.sampled_from(["v1", "v2", "latest"])),
                    st.one_of(
                        st.lists(
                            st.one_of(
                                st.tuples(st.just("tag"), st.one_of(names, wild_json)),
                                st.tuples(st.sampled_from(["name", "bogus"]), wild_json),
                            ),
                            max_size=2,
                        ).map(dict),
                        wild_json,
                    ),
                )
            )
        elif what == "kernel":
            inner = draw(
                often(
                    st.lists(
                        st.tuples(
                            st.sampled_from(
                                ["kernelversion", "kernver", "kernelfile", "initrdfile"]
                            ),
                            plain_text,
                        ),
                        min_size=1,
                        max_size=3,
                    ).map(dict),
                    st.one_of(
                        st.lists(
                            st.tuples(
                                st.sampled_from(["kernelversion", "name", "bogus", "path"]),
                                wild_json,
                            ),
                            max_size=3,
                        ).map(dict),
                        wild_json,
                    ),
                )
            )
        else:
            inner = draw(object_body(kind if kind in KINDS else "node"))
            if (
                what == "clone"
                and isinstance(inner, dict)
                and kind in KINDS
                and KINDS[kind].rename
                and draw(st.integers(0, 3)) > 0
            ):
                inner[draw(st.sampled_from(KINDS[kind].rename))] = draw(names_of(kind))
        return draw(enveloped(kind, name, inner))
    if what == "cluster":
        inner = draw(
            often(
                st.lists(key_values("cluster"), max_size=3).map(dict),
                st.one_of(
                    st.lists(
                        st.tuples(
                            st.sampled_from(["controller", "controller2", "name", "members"]),
                            wild_json,
                        ),
                        min_size=1,
                        max_size=2,
                    ).map(dict),
                    wild_json,
                ),
            )
        )
        return draw(
            often(
                st.just({"config": {"cluster": inner}}),
                st.sampled_from([{"cluster": inner}, inner, {"config": inner}]),
                8,
            )
        )
    if what in ("secrets", "secret", "secret_clone", "secret_delete"):
        owner_kind, owner = extra.split("|", 1)
        items = draw(
            often(st.lists(secret_item, min_size=1, max_size=3), st.one_of(st.just([]), wild_json))
        )
        shape = draw(st.integers(0, 9))
        if shape <= 6:
            return {"config": {"secrets": {owner_kind: {owner: items}}}}
        if shape == 7:
            return {"secrets": {owner_kind: {owner: items}}}
        if shape == 8:
            return {"config": {"secrets": {owner_kind: {owner: items, "other": items}}}}
        return {"config": {"secrets": items}}
    if what == "inventory":
        return draw(
            often(
                st.builds(lambda v: {"config": {"rack": {"inventory": v}}}, device_lists), wild_json
            )
        )
    if what == "journal":
        entry = often(
            st.builds(
                lambda pairs: {"function": "f", "sendfor": "controller", **dict(pairs)},
                st.lists(
                    st.tuples(st.sampled_from(JOURNAL_FIELDS), st.one_of(plain_text, json_scalar)),
                    max_size=3,
                ),
            ),
            st.one_of(
                st.lists(
                    st.tuples(st.sampled_from(list(JOURNAL_FIELDS) + ["bogus"]), wild_json),
                    max_size=4,
                ).map(dict),
                wild_json,
            ),
        )
        return draw(
            often(
                st.builds(lambda v: {"journal": v}, st.lists(entry, min_size=1, max_size=3)),
                wild_json,
            )
        )
    if what == "monitor":
        _, node = extra.split("|", 1)
        report = often(
            st.builds(
                lambda state, pairs: {"state": state, **dict(pairs)},
                often(st.sampled_from(REPORT_STATES), st.sampled_from(BAD_REPORT_STATES), 4),
                st.lists(
                    st.tuples(
                        st.just("status"),
                        often(plain_text, st.one_of(weird_text, wild_json, st.just("x" * 1025)), 3),
                    ),
                    max_size=1,
                ),
            ),
            st.one_of(
                st.lists(
                    st.tuples(st.sampled_from(["state", "status", "bogus"]), wild_json), max_size=3
                ).map(dict),
                wild_json,
            ),
        )
        about = draw(often(st.just(node), names_of("node"), 6))
        return draw(
            often(
                st.builds(lambda r: {"monitor": {"status": {about: r}}}, report),
                st.one_of(
                    st.builds(lambda r: {"monitor": {"status": {about: r, "node002": r}}}, report),
                    st.builds(lambda r: {"status": {about: r}}, report),
                    wild_json,
                ),
                8,
            )
        )
    if what == "control":
        command, _, action = extra.partition("/")
        hosts = often(
            st.sampled_from(HOSTLISTS),
            st.one_of(st.sampled_from(BAD_HOSTLISTS), weird_text, wild_json),
            3,
        )
        if draw(st.integers(0, 7)) == 0:  # the body names another command or action than the path
            command, action = draw(st.sampled_from(CONTROL_PAIRS))
        return draw(
            often(
                st.builds(lambda h: {"control": {command: {action: {"hostlist": h}}}}, hosts),
                st.one_of(
                    st.builds(lambda h: {"control": {command: {action: h}}}, hosts),
                    st.builds(
                        lambda h: {"control": {command: {action: {"hostlist": h, "extra": 1}}}},
                        hosts,
                    ),
                    wild_json,
                ),
                6,
            )
        )
    if what == "dns":
        _, network = extra.split("|", 1)
        record = often(
            st.builds(
                lambda h, a: {"host": h, "ipaddress": a},
                st.sampled_from(DNS_HOSTS),
                st.sampled_from(["10.141.0.250", "fd00::5", "10.141.0.300", "", "x"]),
            ),
            st.one_of(
                st.lists(
                    st.tuples(st.sampled_from(["host", "ipaddress", "bogus"]), wild_json),
                    max_size=3,
                ).map(dict),
                wild_json,
            ),
        )
        records = often(st.lists(record, min_size=1, max_size=3), st.one_of(record, wild_json))
        return draw(
            often(
                st.builds(lambda r: {"config": {"dns": {network: r}}}, records),
                st.one_of(st.builds(lambda r: {"dns": {network: r}}, records), wild_json),
                6,
            )
        )
    return draw(wild_json)


REPORT_STATES = [
    "installer.ok",
    "installer.start",
    "installer.error",
    "installer.FAILED",
    "x.fatal",
    "ok",
]
BAD_REPORT_STATES = ["", "two words", "-lead", "a" * 65, "\x00", 5, None]
HOSTLISTS = [
    "node001",
    "node[001-004]",
    "node[001-002],node005",
    "node005",
    "node[001-004],ghost",
    "ghost",
    "controller",
    "sw1",
    "node001,node001",
]
BAD_HOSTLISTS = ["", "   ", "node[", "node[4-1]", "node[001-004]]", "[]", ",", "node[a-c]"]


def _nested(depth: int, kind: int) -> bytes:
    if kind == 0:
        return b"[" * depth + b"]" * depth
    if kind == 1:
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == 2:
        return b'{"config":{"node":{"node001":{"comment":' + b"[" * depth + b"]" * depth + b"}}}}"
    if kind == 3:
        return (
            b'{"config":{"node":{"node001":{"interfaces":[' + b"[" * depth + b"]" * depth + b"]}}}}"
        )
    if kind == 4:
        return b'{"config":{"cluster":{"comment":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}}}"
    return b"[" * depth  # unterminated


raw_junk = st.one_of(
    st.binary(max_size=64),
    # Depths around the parser's and repr()'s recursion limits too.
    st.builds(
        _nested,
        st.one_of(
            st.sampled_from([5, 63, 64, 65, 100, 400, 1200, 5000, 100000]), st.integers(800, 1000)
        ),
        st.integers(0, 5),
    ),
    st.sampled_from(
        [
            b"",
            b" ",
            b"null",
            b"0",
            b"[]",
            b"{}",
            b'"x"',
            b"{",
            b'{"config":',
            b"\x00",
            b'{"a":"\x00"}',
            b'{"config":{"node":{"node001":{"comment":"\xff\xfe"}}}}',
            b"\xef\xbb\xbf{}",
            b'{"config":{"node":{"node001":{"comment":"\\ud800"}}}}',
            b'{"config":{"node":{"node001":{"comment":NaN}}}}',
            b'{"config":{"rack":{"r2":{"size":Infinity}}}}',
            b'{"config":{"node":{"node001":{"comment":"a"}}},"config":{}}',
            b'{"config":{"node":{"node001":{"service":1' + b"0" * 5000 + b"}}}}",
            b'{"journal":[{"function":"f","sendfor":"controller","created":' + b"9" * 4000 + b"}]}",
            b'{"journal":[{"function":"\xed\xa0\x80","sendfor":"controller"}]}',
            '{"config":{"node":{"node001":{"comment":"x"}}}}'.encode("utf-16"),
            '{"config":{"node":{"node001":{"comment":"x"}}}}'.encode("utf-32"),
            b'{\x00"\x00a\x00"\x00:\x00"\x00\x00\xd8"\x00}\x00',
        ]
    ),
)


def encode(body: Any, ascii_only: bool) -> bytes:
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def structured_post(draw: Any) -> tuple:
    what, path, extra = draw(post_target())
    body = draw(plausible_body(what, extra))
    return (
        "POST",
        path,
        encode(body, draw(st.integers(0, 3)) > 0),
        draw(st.sampled_from(TOKEN_ROLES)),
    )


@st.composite
def random_post(draw: Any) -> tuple:
    _, path, _ = draw(post_target())
    raw = draw(
        st.one_of(
            raw_junk,
            wild_json.map(lambda b: encode(b, True)),
            wild_json.map(lambda b: encode(b, False)),
        )
    )
    return ("POST", path, raw, draw(st.sampled_from(TOKEN_ROLES)))


GET_TEMPLATES = [
    "/config/{kind}",
    "/config/{kind}/{name}",
    "/config/{kind}/{name}/_delete",
    "/config/{kind}/{name}/_delete",
    "/config/{kind}/{name}/_list",
    "/config/{kind}/{name}/_member",
    "/config/{kind}/{name}/interfaces",
    "/config/{kind}/{name}/interfaces/{iface}",
    "/config/{kind}/{name}/interfaces/{iface}/_delete",
    "/config/network/{net}/{ip}",
    "/config/network/{net}/_nextfreeip",
    "/config/network/{net}/_list",
    "/config/secrets",
    "/config/secrets/{owner}/{name}",
    "/config/secrets/{owner}/{name}/{secret}",
    "/config/secrets/{owner}/{name}/{secret}/_delete",
    "/config/osimage/{name}/_pack",
    "/config/osimage/{name}/osimagetag/{tag}/_delete",
    "/config/osimagetag",
    "/config/osimagetag/{name}",
    "/config/osimagetag/{name}/_member",
    "/config/rack/inventory",
    "/config/rack/inventory/{subset}",
    "/config/rack/inventory/{name}/type/{kind}/_delete",
    "/config/cluster",
    "/journal/{name}",
    "/version",
    "/",
    "/config",
    "/token",
    "/journal",
    "/monitor/node/{name}",
    "/monitor/status/{name}",
]
SEGMENTS = [
    "config",
    "node",
    "group",
    "network",
    "osimage",
    "osimagetag",
    "bmcsetup",
    "switch",
    "otherdev",
    "rack",
    "user",
    "secrets",
    "cluster",
    "controller",
    "inventory",
    "interfaces",
    "BOOTIF",
    "_delete",
    "_list",
    "_member",
    "_clone",
    "_nextfreeip",
    "_pack",
    "tag",
    "kernel",
    "type",
    "journal",
    "version",
    "token",
    "boot",
    "monitor",
    "status",
    "control",
    "action",
    "%ff",
    "%00",
    "%2F",
    "..",
    ".",
    "",
    "%E2%82%AC",
    "10.141.0.1",
]


@st.composite
def random_get(draw: Any) -> tuple:
    if draw(st.integers(0, 3)) > 0:
        template = draw(st.sampled_from(GET_TEMPLATES))
        kind = draw(
            often(st.sampled_from(GENERIC_WEIGHTED), st.sampled_from(list(KINDS) + ["bogus", ""]))
        )
        path = template.format(
            kind=q(kind),
            name=q(draw(names_of(kind))),
            iface=q(draw(often(st.sampled_from(IFACE_NAMES), st.sampled_from(BAD_IFACE_NAMES)))),
            net=q(draw(names_of("network"))),
            ip=q(draw(ips)),
            owner=draw(st.sampled_from(["node", "group", "switch"])),
            secret=q(draw(often(st.sampled_from(SECRET_NAMES), st.sampled_from(BAD_SECRET_NAMES)))),
            tag=q(draw(st.sampled_from(["v1", "v2", "nope", ""]))),
            subset=draw(st.sampled_from(["configured", "unconfigured", "all", "bogus"])),
        )
    else:
        segments = draw(
            st.lists(
                st.one_of(
                    st.sampled_from(SEGMENTS), st.sampled_from(NAMES), st.text(max_size=6).map(q)
                ),
                max_size=7,
            )
        )
        path = "/" + "/".join(segments)
        if draw(st.integers(0, 9)) == 0:
            path += "?" + draw(st.sampled_from(["x=1", "", "%ff=%00", "a=" + "b" * 100]))
    return ("GET", path, None, draw(st.sampled_from(TOKEN_ROLES)))


DELETABLE = [(kind, name) for kind in GENERIC for name in KIND_NAMES[kind]]


@st.composite
def delete_get(draw: Any) -> tuple:
    """A GET that deletes something that likely exists."""
    which = draw(st.integers(0, 5))
    if which <= 1:
        kind, name = draw(st.sampled_from(DELETABLE))
        path = f"/config/{kind}/{name}/_delete"
    elif which == 2:
        kind = draw(st.sampled_from(["node", "group"]))
        path = (
            f"/config/{kind}/{draw(st.sampled_from(KIND_NAMES[kind]))}/interfaces/"
            f"{draw(st.sampled_from(IFACE_NAMES))}/_delete"
        )
    elif which == 3:
        owner = draw(st.sampled_from(["node/node001", "node/node005", "group/compute", "group/g2"]))
        path = f"/config/secrets/{owner}/{q(draw(st.sampled_from(SECRET_NAMES)))}/_delete"
    elif which == 4:
        path = (
            f"/config/osimage/{draw(st.sampled_from(KIND_NAMES['osimage']))}/osimagetag/"
            f"{draw(st.sampled_from(['v1', 'v2', 'latest']))}/_delete"
        )
    else:
        kind, name = draw(st.sampled_from(RACKABLE))
        path = f"/config/rack/inventory/{name}/type/{kind}/_delete"
    return ("GET", path, None, draw(st.sampled_from(TOKEN_ROLES)))


# -- the checks ----------------------------------------------------------------------------

# A richer start than bootstrap's: one object of every kind, a rack in use,
# secrets, a tag, a MAC, a DHCP network, users. Made through the API.
RICH_SETUP = [
    (
        "network",
        "net2",
        {
            "network": "10.150.0.0/16",
            "gateway": "10.150.255.254",
            "dhcp": True,
            "dhcp_range_begin": "10.150.0.200",
            "dhcp_range_end": "10.150.0.250",
        },
    ),
    (
        "osimage",
        "img2",
        {"kernelfile": "vmlinuz-6", "initrdfile": "initrd-6", "kernelversion": "6.1"},
    ),
    ("bmcsetup", "b2", {"username": "admin", "password": "bmc-secret"}),
    (
        "group",
        "g2",
        {
            "osimage": "img2",
            "bmcsetupname": "b2",
            "osimagetag": "v1",
            "interfaces": [
                {"interface": "BOOTIF", "network": "net2"},
                {"interface": "BMC", "network": "ipmi"},
            ],
        },
    ),
    ("switch", "sw1", {"network": "ipmi", "ipaddress": "10.148.0.100"}),
    ("otherdev", "dev1", {"network": "cluster"}),
    (
        "node",
        "node005",
        {
            "group": "g2",
            "switch": "sw1",
            "switchport": 5,
            "interfaces": [{"interface": "BOOTIF", "macaddress": "aa:bb:cc:dd:ee:05"}],
        },
    ),
    ("node", "node001", {"macaddr": "aa:bb:cc:dd:ee:01", "osimagetag": "v1"}),
    (
        "rack",
        "rack1",
        {
            "size": 42,
            "devices": [
                {"name": "node001", "type": "node", "position": 1},
                {"name": "sw1", "type": "switch", "position": 10, "height": 2},
            ],
        },
    ),
    ("user", "admin2", {"password": "long-enough-pw", "role": "admin"}),
    ("user", "ro1", {"password": "long-enough-pw", "role": "readonly"}),
]
RICH_EXTRA = [
    (
        "/config/secrets/node/node001",
        {
            "config": {
                "secrets": {
                    "node": {
                        "node001": [
                            {"secretname": "key", "content": "node secret", "path": "/etc/key"}
                        ]
                    }
                }
            }
        },
    ),
    (
        "/config/secrets/group/compute",
        {
            "config": {
                "secrets": {
                    "group": {
                        "compute": [{"secretname": "software license", "content": "group secret"}]
                    }
                }
            }
        },
    ),
    ("/config/osimage/img2/tag", {"config": {"osimage": {"img2": {"tag": "v1"}}}}),
    ("/journal", {"journal": [{"function": "f", "sendfor": "controller", "object": "node001"}]}),
]


_TEMPLATES: dict[bool, tuple[bytes, bytes]] = {}


def _template(rich: bool) -> tuple[bytes, bytes]:
    """(database bytes, key) of a bootstrapped store, with RICH_SETUP applied
    when ``rich``: made once through the API, then copied for each example."""
    if rich not in _TEMPLATES:
        api = API()
        folder = api.cfg.path.parent
        saved = storemod.threads
        storemod.threads = InlineThreads  # users' passwords are hashed inline
        try:
            if rich:
                steps = [
                    (f"/config/{kind}/{name}", {"config": {kind: {name: body}}})
                    for kind, name, body in RICH_SETUP
                ]
                steps[4:4] = RICH_EXTRA[2:3]  # the tag before the group that names it
                for path, body in steps + RICH_EXTRA[:2] + RICH_EXTRA[3:]:
                    code, _, content = call(api, "POST", path, json.dumps(body).encode(), "admin")
                    assert code in (200, 201, 204), f"setup POST {path} answered {code} {content!r}"
            api.store.pool.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _TEMPLATES[rich] = (
                api.cfg.database.database.read_bytes(),
                api.cfg.files.keyfile.read_bytes(),
            )
        finally:
            storemod.threads = saved
            dispose(api, folder)
    return _TEMPLATES[rich]


def make_api(rich: bool = False) -> tuple[API, Path]:
    """A fresh API on its own copy of the template database."""
    data, key = _template(rich)
    folder = Path(tempfile.mkdtemp(prefix="luna2d-fuzz-"))
    (folder / "luna.db").write_bytes(data)
    store, cfg = open_store(folder, key=key)
    api = API(store, ipmi=FakeIPMI())
    api.cfg = cfg
    return api, folder


class FakeIPMI:
    """The IPMI client's two calls, answered at once with no BMC: a BMC
    whose address ends in 1 times out, every other one succeeds (power on,
    a SEL of one line)."""

    VALUES: ClassVar[dict[str, Any]] = {
        "power status": "on",
        "sel list": ["0001 | 2024-04-19 10:00:00 | System Event"],
        "sel clear": "cleared",
    }

    def outcome(self, target: Any, command: Any) -> Any:
        if target.host.endswith("1"):
            return Fault("timeout", f"{target.host} did not answer")
        return Success(self.VALUES.get(command.name))

    def run(self, target: Any, command: Any, cipher_suite: int | None = None) -> defer.Deferred:
        return defer.succeed(self.outcome(target, command))

    def fan_out(
        self, targets: Any, command: Any, limit: int = 64, cipher_suite: int | None = None
    ) -> defer.Deferred:
        return defer.succeed({target.key: self.outcome(target, command()) for target in targets})


def dispose(api: API, folder: Path) -> None:
    api.store.pool.close()
    shutil.rmtree(folder, ignore_errors=True)


def token_for(api: API, role: str) -> str | None:
    if role == "admin":
        return api.admin_token
    if role == "readonly":
        return api.token("readonly")
    if role == "node":
        return api.token("node", node="node001")
    if role == "junk":
        return "not.a.token"
    if role in ("admin2", "ro1"):
        return api.token("admin", name=role)  # a store user: its role comes from the store
    return None


def call(
    api: API, method: str, path: str, raw: bytes | None, role: str
) -> tuple[int, bytes, bytes]:
    """(status, content-type, body) of one request through the whole stack."""
    token = token_for(api, role)
    code, ctype, content, _ = api.raw(
        method, path, raw, {"x-access-tokens": token} if token else {}
    )
    return code, ctype, content


def check_answer(method: str, path: str, code: int, ctype: bytes, content: bytes) -> None:
    where = f"{method} {path} answered {code} {ctype!r} {content[:300]!r}"
    bare = path.split("?")[0]
    allowed_5xx = (
        (code == 503 and bare.endswith("/_pack"))
        or (
            code == 503
            and bare.startswith("/config/osimage/")
            and bare.endswith("/_clone")
            and b"nocopy" in content
        )
        or (code == 500 and method == "GET" and MONITOR_GET.match(bare) is not None)
    )
    assert 200 <= code < 500 or allowed_5xx, where
    if code == 204:
        assert content == b"", where
        return
    if code < 300 and path.startswith("/boot") and ctype.startswith(b"text/plain"):
        return
    assert ctype.startswith(b"application/json"), where
    body = json.loads(content)
    if code == 500:  # the spec's answer for a node whose state is a failure, and only that
        (report,) = body["monitor"]["status"].values()
        assert not state_ok(report["state"]), where
    elif code >= 400:
        assert (
            isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]
        ), where


MONITOR_GET = re.compile(r"^/monitor/(node|status)/[^/]+$")


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def views_of(store: Store) -> dict:
    out: dict[str, Any] = {kind: store.objects_of(kind) for kind in KINDS}
    out["_order"] = {kind: list(listed) for kind, listed in out.items()}
    out["_secrets"] = store.secrets()
    out["_cluster"] = store.cluster()
    out["_tags"] = store.tags()
    out["_inventory"] = store.inventory()
    out["_raw"] = {
        obj_id: [
            obj.kind,
            obj.name,
            obj.data,
            [vars(i) for i in obj.ifaces],
            [vars(s) for s in obj.secrets],
        ]
        for obj_id, obj in store.state.by_id.items()
    }
    out["_ips"] = {str(k): list(v) for k, v in store.state.ips.items()}
    out["_macs"] = {k: list(v) for k, v in store.state.macs.items()}
    return _normal(out)


def check_reload(api: API) -> None:
    """A fresh Store on the same file and key shows what the live one shows."""
    fresh = load_store(api.cfg)
    try:
        live, loaded = views_of(api.store), views_of(fresh)
        if live != loaded:
            diff = {
                k: (live.get(k), loaded.get(k))
                for k in set(live) | set(loaded)
                if live.get(k) != loaded.get(k)
            }
            raise AssertionError(f"the live store and the reloaded one differ: {str(diff)[:2000]}")
    finally:
        fresh.pool.close()


def check_invariants(state: State) -> None:
    """Addresses, MACs and references of the live state."""
    ips: dict[int, tuple[int, str]] = {}
    macs: dict[str, tuple[int, str]] = {}
    assert sum(len(v) for v in state.by_kind.values()) == len(state.by_id), (
        "by_kind and by_id disagree"
    )
    for obj_id, obj in state.by_id.items():
        label = f"{obj.kind} {obj.name}"
        assert obj.id == obj_id and state.by_kind[obj.kind].get(obj.name) is obj, (
            f"{label}: not indexed"
        )
        kind = KINDS[obj.kind]
        for f in kind.refs:
            value = obj.data.get(f.name)
            if value is not None:
                target = state.by_id.get(value)
                assert target is not None and target.kind == f.ref, (
                    f"{label}.{f.name}: dangling reference {value}"
                )
        for required in kind.required:
            assert obj.data.get(required) is not None, f"{label}: required field {required} unset"
        if obj.kind == "network":
            net = ipaddress.ip_network(obj.data["network"])
            for key in ("gateway", "nameserver_ip", "dhcp_range_begin", "dhcp_range_end"):
                if obj.data.get(key):
                    assert ipaddress.ip_address(obj.data[key]) in net, (
                        f"{label}.{key} outside {net}"
                    )
        assert len({i.name for i in obj.ifaces}) == len(obj.ifaces), (
            f"{label}: interface names repeat"
        )
        assert len({s.name for s in obj.secrets}) == len(obj.secrets), (
            f"{label}: secret names repeat"
        )
        for item in obj.ifaces:
            where = f"{label} interface {item.name}"
            network = state.by_id.get(item.network) if item.network is not None else None
            if item.network is not None:
                assert network is not None and network.kind == "network", (
                    f"{where}: dangling network {item.network}"
                )
            if obj.kind == "group":
                assert item.ip is None and item.mac is None, (
                    f"{where}: a group interface holds an address"
                )
            if item.ip:
                assert network is not None, f"{where}: {item.ip} without a network"
                assert ipaddress.ip_address(item.ip) in ipaddress.ip_network(
                    network.data["network"]
                ), f"{where}: {item.ip} outside {network.name} ({network.data['network']})"
                key = ip_key(item.ip)
                assert key not in ips, f"{where}: {item.ip} also held by {ips[key]}"
                ips[key] = (obj.id, item.name)
            if item.mac:
                assert item.mac not in macs, f"{where}: {item.mac} also held by {macs[item.mac]}"
                macs[item.mac] = (obj.id, item.name)
    for network in state.by_kind["network"].values():
        for key in ("gateway", "nameserver_ip"):
            value = network.data.get(key)
            holder = ips.get(ip_key(value)) if value else None
            assert holder is None or state.by_id[holder[0]].kind == "controller", (
                f"network {network.name}: its {key} {value} is held by "
                f"{state.by_id[holder[0]].name}"
            )
    for rack in state.by_kind["rack"].values():
        size = rack.data.get("size") or KINDS["rack"].by_name["size"].default
        units: dict[int, str] = {}
        for device in state.by_id.values():
            if KINDS[device.kind].rack_device and device.data.get("rack") == rack.id:
                position = device.data.get("rackposition")
                height = device.data.get("rackheight") or 1
                assert position is not None, f"rack {rack.name}: {device.name} has no position"
                assert position + height - 1 <= size, (
                    f"rack {rack.name}: {device.name} does not fit ({size} units)"
                )
                for unit in range(position, position + height):
                    assert unit not in units, (
                        f"rack {rack.name}: {device.name} and {units[unit]} share unit {unit}"
                    )
                    units[unit] = device.name
    assert ips == state.ips, f"the address index differs from the interfaces: {ips} != {state.ips}"
    assert macs == state.macs, f"the MAC index differs from the interfaces: {macs} != {state.macs}"


def run_ops(ops: list[tuple], rich: bool = False) -> None:
    """Run the requests on a fresh API: each answer and the invariants are
    checked after every request, the reloaded store after the last."""
    api, folder = make_api(rich)
    try:
        done = 0
        try:
            for method, path, raw, role in ops:
                done += 1
                code, ctype, content = call(api, method, path, raw, role)
                check_answer(method, path, code, ctype, content)
                check_invariants(api.store.state)
            check_reload(api)
        except AssertionError as exc:
            shown = "\n".join(f"  {m} {p} {r!r:.600} ({who})" for m, p, r, who in ops[:done])
            raise AssertionError(
                f"{exc}\nafter {'the' if rich else 'bootstrap, no RICH_SETUP, and the'} "
                f"requests:\n{shown}"
            ) from None
    finally:
        dispose(api, folder)


def _utf8_path(path: str) -> bool:
    try:
        unquote_to_bytes(path.split("?")[0]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def scaled(examples: int) -> int:
    """LUNA2D_FUZZ_SCALE=10 runs ten times the examples (a long hunt)."""
    return max(1, int(examples * float(os.environ.get("LUNA2D_FUZZ_SCALE", "1"))))


FUZZ = settings(
    deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True
)


RICH = st.sampled_from([True, True, True, False])  # start from RICH_SETUP, or from bootstrap alone


class FuzzBase(unittest.TestCase):
    def setUp(self) -> None:
        # Password hashing runs in a thread in the daemon; here it runs inline
        # (StubTreq has no thread pool) and cheaply.
        hash_inline(self)
        self.patch(cryptomod, "_SCRYPT", {"n": 2**4, "r": 1, "p": 1})


class APIFuzzTests(FuzzBase):
    @settings(FUZZ, max_examples=scaled(250))
    @given(RICH, st.lists(random_post(), min_size=1, max_size=4))
    def test_random_bodies_at_every_post_endpoint(self, rich: bool, ops: list) -> None:
        """Random bytes and random JSON at every POST endpoint: 2xx/4xx JSON, store intact."""
        run_ops(ops, rich)

    @settings(FUZZ, max_examples=scaled(1000))
    @given(
        RICH,
        st.lists(
            often(structured_post(), st.one_of(random_get(), delete_get()), 3),
            min_size=1,
            max_size=10,
        ),
    )
    def test_plausible_bodies_and_gets(self, rich: bool, ops: list) -> None:
        """Right envelopes with real field names and wrong values, mixed with
        GETs (deletes included): 2xx/4xx JSON, store intact after each."""
        run_ops(ops, rich)

    @settings(FUZZ, max_examples=scaled(200))
    @given(RICH, st.lists(random_get(), min_size=1, max_size=6))
    def test_random_gets(self, rich: bool, ops: list) -> None:
        """Random paths and GETs: 2xx/4xx JSON, store intact."""
        run_ops(ops, rich)

    @settings(FUZZ, max_examples=scaled(150))
    @given(
        st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "TRACE", "CONNECT"]),
        st.one_of(
            st.sampled_from(GET_TEMPLATES).map(
                lambda t: (
                    t.replace("{kind}", "node")
                    .replace("{name}", "node001")
                    .replace("{owner}", "node")
                    .replace("{net}", "cluster")
                    .replace("{ip}", "10.141.0.1")
                    .replace("{secret}", "key")
                    .replace("{iface}", "BOOTIF")
                    .replace("{tag}", "t")
                    .replace("{subset}", "all")
                )
            ),
            random_get().map(lambda op: op[1]),
        ),
        st.sampled_from(TOKEN_ROLES),
    )
    def test_other_methods_answer_json_405(self, method: str, path: str, role: str) -> None:
        """Any method other than GET/POST answers 405 JSON with a message."""
        api, folder = make_api()
        try:
            code, ctype, content = call(api, method, path, b"{}", role)
            where = f"{method} {path} answered {code} {ctype!r} {content[:200]!r}"
            if code == 400 and not _utf8_path(path):
                code = 405  # an undecodable path is refused before its method is looked at
            self.assertEqual(code, 405, where)
            self.assertTrue(ctype.startswith(b"application/json"), where)
            self.assertIsInstance(json.loads(content).get("message"), str, where)
        finally:
            dispose(api, folder)

    @settings(FUZZ, max_examples=scaled(150))
    @given(
        st.sampled_from(["GET", "POST"]),
        st.text(alphabet="abcxyz019_-.%", min_size=1, max_size=10).filter(
            lambda s: (
                s
                not in (
                    "config",
                    "token",
                    "version",
                    "journal",
                    "boot",
                    "monitor",
                    "files",
                    "control",
                    "service",
                    ".",
                    "..",
                )
            )
        ),
        st.lists(st.text(max_size=5).map(q), max_size=3),
        st.sampled_from(TOKEN_ROLES),
    )
    def test_unknown_paths_answer_json_404(
        self, method: str, top: str, rest: list, role: str
    ) -> None:
        """A path under no known top-level segment answers 404 JSON."""
        path = "/" + "/".join([q(top)] + rest)
        api, folder = make_api()
        try:
            code, ctype, content = call(
                api, method, path, b"{}" if method == "POST" else None, role
            )
            where = f"{method} {path} answered {code} {ctype!r} {content[:200]!r}"
            self.assertEqual(code, 404, where)
            self.assertTrue(ctype.startswith(b"application/json"), where)
            self.assertIsInstance(json.loads(content).get("message"), str, where)
        finally:
            dispose(api, folder)

    def test_deep_nesting_sweep(self) -> None:
        """Every depth around the recursion limits, as a field value, a name and
        an interface: parsed or refused, never a 500 (repr() of a value nested
        just below the parser's limit used to overflow)."""
        api, folder = make_api()
        try:
            for depth in list(range(1, 80)) + list(range(700, 1100)):
                for path, raw in [
                    ("/config/node/node001", _nested(depth, 2)),
                    ("/config/cluster", _nested(depth, 4)),
                    (
                        "/config/group/compute",
                        b'{"config":{"group":{"compute":{"newgroupname":'
                        + b"[" * depth
                        + b"]" * depth
                        + b"}}}}",
                    ),
                ]:
                    code, ctype, content = call(api, "POST", path, raw, "admin")
                    check_answer("POST", f"{path} (depth {depth})", code, ctype, content)
            check_invariants(api.store.state)
            check_reload(api)
        finally:
            dispose(api, folder)

    def test_known_unknowns(self) -> None:
        """Fixed cases: 405 for a GET-only path POSTed, 404 for an unknown kind, 400 for "
        "list-only POSTs."""
        api, folder = make_api()
        try:
            for method, path, raw, expected in [
                ("POST", "/version", b"{}", 405),
                ("GET", "/nowhere", None, 404),
                ("GET", "/config/bogus/x", None, 404),
                ("POST", "/config/osimage", b"{}", 400),
                ("POST", "/config/secrets", b"{}", 400),
                ("DELETE", "/config/node/node001", None, 405),
            ]:
                code, ctype, content = call(api, method, path, raw, "admin")
                self.assertEqual(code, expected, f"{method} {path}: {code} {content!r}")
                check_answer(method, path, code, ctype, content)
        finally:
            dispose(api, folder)


class CheckerTests(FuzzBase):
    """The consistency checks can fail: they catch corruption planted on purpose."""

    def test_duplicate_address_is_caught(self) -> None:
        api, folder = make_api()
        try:
            check_invariants(api.store.state)
            check_reload(api)
            node2 = api.store.state.get("node", "node002")
            node2.ifaces[0].ip = api.store.state.get("node", "node001").ifaces[0].ip
            self.assertRaises(AssertionError, check_invariants, api.store.state)
            self.assertRaises(AssertionError, check_reload, api)
        finally:
            dispose(api, folder)

    def test_dangling_reference_is_caught(self) -> None:
        api, folder = make_api()
        try:
            api.store.state.get("node", "node001").data["osimage"] = 99999
            self.assertRaises(AssertionError, check_invariants, api.store.state)
        finally:
            dispose(api, folder)

    def test_address_outside_network_is_caught(self) -> None:
        api, folder = make_api()
        try:
            api.store.state.get("node", "node001").ifaces[0].ip = "192.168.1.1"
            self.assertRaises(AssertionError, check_invariants, api.store.state)
        finally:
            dispose(api, folder)

    def test_a_500_is_caught(self) -> None:
        self.assertRaises(
            AssertionError, check_answer, "GET", "/x", 500, b"application/json", b'{"message":"x"}'
        )
        failed = b'{"monitor":{"status":{"node001":{"status":"disk","state":"installer.error"}}}}'
        check_answer("GET", "/monitor/node/node001", 500, b"application/json", failed)
        self.assertRaises(
            AssertionError,
            check_answer,
            "POST",
            "/monitor/node/node001",
            500,
            b"application/json",
            failed,
        )
        self.assertRaises(
            AssertionError,
            check_answer,
            "GET",
            "/monitor/node/node001",
            500,
            b"application/json",
            b'{"monitor":{"status":{"node001":{"status":"fine","state":"installer.ok"}}}}',
        )
        self.assertRaises(AssertionError, check_answer, "GET", "/x", 404, b"text/html", b"<html>")
        self.assertRaises(
            AssertionError, check_answer, "GET", "/x", 400, b"application/json", b'{"error":"x"}'
        )


# -- every POST endpoint is a target ---------------------------------------------------------

# Where the root app hands a path on (luna2d.resources.root), and the app serving it.
BRANCHES = {
    "/config": ConfigAPI.app,
    "/boot": BootAPI.app,
    "/files": FilesAPI.app,
    "/monitor": MonitorAPI.app,
    "/service": ServiceAPI.app,
    "/control": ControlAPI.app,
}
BRANCH_RULE = "/<path:__rest__>"


def post_routes() -> set[str]:
    """Every POST route the API serves, as its full rule, read from the
    Klein apps' URL maps."""
    routes = set()
    for rule in RootAPI.app.url_map.iter_rules():
        if rule.rule.endswith(BRANCH_RULE):
            prefix = rule.rule[: -len(BRANCH_RULE)]
            assert prefix in BRANCHES, (
                f"the root hands {prefix}/... to an app BRANCHES does not name"
            )
            routes |= {
                prefix + r.rule
                for r in BRANCHES[prefix].url_map.iter_rules()
                if "POST" in (r.methods or ())
            }
        elif "POST" in (rule.methods or ()):
            routes.add(rule.rule)
    return routes


def post_route_of(path: str) -> str:
    """The route a POST of ``path`` (no %-escapes) reaches."""
    prefix = "/" + path.split("/")[1]
    app, rest = (
        (BRANCHES[prefix], path[len(prefix) :]) if prefix in BRANCHES else (RootAPI.app, path)
    )
    rule, _ = app.url_map.bind("luna").match(rest, method="POST", return_rule=True)
    return (prefix if prefix in BRANCHES else "") + rule.rule


def target_paths() -> set[str]:
    """A path of every kind of POST target post_target() draws."""
    extras = {
        "secret": SECRET_NAMES[:1],
        "secret_clone": SECRET_NAMES[:1],
        "secret_delete": SECRET_NAMES[:1],
        "monitor": MONITOR_PATHS,
        "dns_delete": DNS_HOSTS[:1],
        "control": [f"{c}/{a}" for c, a in CONTROL_PAIRS[:1]],
    }
    paths = set()
    for what, kind in set(POST_COMBOS):
        kind = kind or "node"
        for extra in extras.get(what, [""]):
            paths.add(post_path(what, kind, KIND_NAMES.get(kind, ["x"])[0], extra))
    return paths


class CoverageTests(unittest.TestCase):
    def test_every_post_route_is_a_target(self) -> None:
        """The POST targets reach every POST route the API serves, and only
        those: a new POST endpoint fails here until the fuzz knows it."""
        reached = {post_route_of(path) for path in target_paths()}
        routes = post_routes()
        self.assertEqual(sorted(routes - reached), [])
        self.assertEqual(sorted(reached - routes), [])
        self.assertIn("/control/action/<command>/_<action>", routes)
        self.assertIn("/monitor/status/<node>", routes)

    def test_fake_ipmi_answers_both_ways(self) -> None:
        """The control targets see successes and failures: the fake BMCs of
        node001 (10.148.0.1) time out, node002's answer."""
        api, folder = make_api()
        try:
            body = {"control": {"power": {"status": {"hostlist": "node[001-002]"}}}}
            code, ctype, content = call(
                api, "POST", "/control/action/power/_status", json.dumps(body).encode(), "admin"
            )
            check_answer("POST", "/control/action/power/_status", code, ctype, content)
            answer = json.loads(content)
            self.assertEqual(
                answer["control"],
                {
                    "power": {"on": {"node002": "on"}},
                    "failed": {"node001": "timeout: 10.148.0.1 did not answer"},
                    "hostlist": {"on": "node002", "failed": "node001"},
                },
            )
        finally:
            dispose(api, folder)


# -- the ini parser -------------------------------------------------------------------------

VALID_INI = {
    "API": {
        "USERNAME": "luna",
        "PASSWORD": "luna-pass",
        "SECRET_KEY": "0123456789abcdef0123",
        "EXPIRY": "1h",
        "ENDPOINT": "127.0.0.1:7050",
        "PROTOCOL": "http",
    },
    "DATABASE": {"DRIVER": "SQLite3", "DATABASE": "luna.db", "SYNCHRONOUS": "NORMAL"},
    "FILES": {"IMAGE_FILES": "files", "IMAGE_DIRECTORY": "images", "KEYFILE": "luna.key"},
    "BOOTSTRAP": {
        "ENABLED": "yes",
        "CONTROLLER": "controller",
        "CONTROLLER_IP": "10.141.255.254",
        "CLUSTER": "cluster",
    },
    "LOGGER": {"LEVEL": "info"},
    "DHCP": {"ENABLED": "no"},
}
INI_SECTIONS = list(VALID_INI) + ["TFTP", "DNS", "DEFAULT", "api", "X", ""]
ALL_INI_KEYS = sorted(
    {k for keys in VALID_INI.values() for k in keys}
    | {"VERIFY_CERTIFICATE", "HOST", "PORT", "LOGFILE", "BOGUS", "username", ""}
)
ini_values = often(
    st.sampled_from(
        [
            "luna",
            "a-long-enough-secret-key-0123",
            "1h",
            "30m",
            "0",
            "-1h",
            "99999999999999999999d",
            "0.0.0.0:7050",
            "[::1]:7050",
            "host:",
            ":7050",
            "host:99999",
            "host:\u00b2",
            "host:\u0663",
            "host:-1",
            "host:+1",
            "host: 1",
            "\u0663h",
            "\u00b2h",
            "1\u00b2",
            "\u2075m",
            "sqlite3",
            "postgres",
            "full",
            "yes",
            "no",
            "maybe",
            "\u00b2",
            "10.141.255.254",
            "10.141.255.256",
            "fd00::1",
            "debug",
            "~",
            "~nosuchuser/x",
            "~\x00",
            "a\x00b",
            "relative/path",
            "/abs/path",
            '"quoted"',
            "'",
            "%(x)s",
            "",
            "   ",
            "\u00e9",
            "Node-1",
            "https",
            "HTTP",
            "\x00",
            "x" * 5000,
        ]
    ),
    st.text(max_size=20),
    3,
)


_PATHS = ["~", "~nosuchuser/x", "~\x00", "a\x00b", "", "/abs/path", "x" * 5000, "."]
INI_KEY_VALUES = {
    "USERNAME": ["", "abc"],
    "PASSWORD": ["", "abc", "abcd"],
    "SECRET_KEY": ["", "x" * 15, "x" * 16],
    "EXPIRY": ["0", "-1h", "1x", "\u0663h", "\u00b2h", "99999999999999999999d", "1 h", "", "2W"],
    "ENDPOINT": [
        "host:",
        ":7050",
        "host:99999",
        "host:\u00b2",
        "host:\u0663",
        "[::1]:7050",
        "host:-1",
        "7050",
        "host: 1",
        "host:\u00b9\u00b2",
    ],
    "PROTOCOL": ["HTTPS", "ftp", ""],
    "DRIVER": ["sqlite", "postgres", ""],
    "SYNCHRONOUS": ["full", "bogus", ""],
    "ENABLED": ["maybe", "", "YES", "1", "\u00b9"],
    "CONTROLLER": ["Node-1", "", "a" * 64],
    "CLUSTER": ["", "Any Name"],
    "CONTROLLER_IP": ["10.141.255.256", "fd00::1", "1e3", "", "10.1", "fe80::1%eth0"],
    "LEVEL": ["DEBUG", "verbose", ""],
    "DATABASE": _PATHS,
    "IMAGE_FILES": _PATHS,
    "IMAGE_DIRECTORY": _PATHS,
    "KEYFILE": _PATHS,
}


@st.composite
def ini_texts(draw: Any) -> str:
    """Random text, or a working ini with a few keys, sections or lines broken."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))
    sections = {name: dict(keys) for name, keys in VALID_INI.items() if draw(st.integers(0, 9)) > 0}
    for _ in range(draw(st.integers(1, 4))):
        section = draw(often(st.sampled_from(list(VALID_INI)), st.sampled_from(INI_SECTIONS), 3))
        action = draw(st.integers(0, 4))
        keys = sections.setdefault(section, {})
        if action == 0 and keys:
            keys.pop(draw(st.sampled_from(sorted(keys))))
        elif action == 1:
            keys[draw(st.one_of(st.sampled_from(ALL_INI_KEYS), st.text(max_size=5)))] = draw(
                ini_values
            )
        else:
            known = sorted(VALID_INI.get(section, {})) or ALL_INI_KEYS
            key = draw(st.sampled_from(known))
            keys[key] = draw(often(st.sampled_from(INI_KEY_VALUES.get(key, [""])), ini_values, 2))
    lines = []
    sep = draw(st.sampled_from(["=", " = ", ":"]))
    for section, keys in sections.items():
        lines.append(
            draw(
                often(
                    st.just(f"[{section}]"), st.sampled_from([f" [{section}]", f"[{section}"]), 30
                )
            )
        )
        for key, value in keys.items():
            lines.append(f"{key}{sep}{value}")
        if draw(st.integers(0, 19)) == 0:
            lines.append(
                draw(
                    st.sampled_from(
                        [
                            "  continuation",
                            "# comment",
                            "; comment",
                            "junk line",
                            "=x",
                            "[API]",
                            "USERNAME=again",
                            "KEY value",
                        ]
                    )
                )
            )
    return "\n".join(lines) + "\n"


class IniFuzzTests(unittest.TestCase):
    @settings(
        max_examples=scaled(400),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(ini_texts(), st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
    def test_load_gives_config_or_config_error(self, text: str, encoding: str) -> None:
        folder = Path(tempfile.mkdtemp(prefix="luna2d-ini-"))
        try:
            path = folder / "luna.ini"
            path.write_bytes(
                text.encode(encoding, "surrogatepass")
                if encoding != "latin-1"
                else text.encode("latin-1", "replace")
            )
            try:
                loaded = configmod.load(path)
            except ConfigError as exc:
                self.assertTrue(str(exc))
            except Exception as exc:  # noqa: BLE001 - any other exception is the failure reported
                self.fail(
                    f"load raised {exc!r} (not a ConfigError) for the ini text {text!r} "
                    f"({encoding})"
                )
            else:
                self.assertIsInstance(loaded, configmod.Config)
                self.assertTrue(loaded.api.username)
                self.assertGreater(loaded.api.expiry, 0)
                self.assertTrue(0 <= loaded.api.port <= 65535)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_a_working_ini_loads(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="luna2d-ini-"))
        try:
            path = folder / "luna.ini"
            path.write_text(
                "[API]\nUSERNAME = luna\nPASSWORD = luna-pass\nSECRET_KEY = 0123456789abcdef0123\n"
                "EXPIRY = 2h\n[DATABASE]\nDATABASE = luna.db\n"
            )
            loaded = configmod.load(path)
            self.assertEqual(loaded.api.expiry, 7200)
            self.assertEqual(loaded.database.database, folder.resolve() / "luna.db")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
