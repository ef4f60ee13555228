# -*- test-case-name: tests.test_objects,tests.test_kinds_table,tests.clients.test_last_gaps -*-
"""Field descriptions and the coercion of raw JSON values into them.

Every coercion either returns the canonical Python value or raises
``Invalid`` with a message naming the field. ``None`` always means "unset"
(and so "inherit", where the field inherits)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from luna2d.errors import Invalid
from luna2d.model import wire

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+@-]{0,127}$")
INTERFACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$")
# A DNS domain: dot-separated labels of letters, digits, '-' and '_' (not
# starting or ending with '-'), at most 63 characters each, 253 in all.
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$"
)
# Kernel options land on iPXE's imgargs line: nothing there may chain another
# command (||, &&, a lone ;) or expand an iPXE setting (${...}).
KERNEL_OPTIONS_RE = re.compile(r"^(?!.*(\|\||&&|\$\{|(^|\s);(\s|$)))[^\n\r]*$")
TOKEN_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
MAX_TEXT = 65536
MIN_PREFIX = 8  # the shortest prefix a network may have, in either family
MAX_LINE = 4096


@dataclass(frozen=True)
class Field:
    """One field of a kind.

    type: str, text, int, bool, ip, cidr, mac, script (a text run as a shell
          script), list, ref, choice,
          token (a short lowercase word), secret (a str stored encrypted),
          map (a JSON object of objects), records (a list of JSON objects).
    inherit: where a null value is looked up, in order: (kind, field) pairs
          naming the parent kind and the parent's field.
    ref: for type ref, the kind the name must exist in.
    internal: kept in the store but neither shown nor accepted by the
          generic config endpoints (set through dedicated endpoints or
          bookkeeping of the daemon).
    readonly: shown by the generic config endpoints but set only through
          dedicated ones; a value sent back unchanged is ignored.
    stored: False for a field that is accepted and shown but kept
          elsewhere (on an interface, on other objects): a hook registered
          for the kind reads and writes it, never ``obj.data``.
    pattern: for type str, the form the text must have (an interface
          name, a DNS domain); "" unsets such a field, as it does references.
    wire: how the TrinityX CLI carries the field, None for as it is;
          "base64" or "either" (``luna2d.model.wire``): a text sent as
          base64 is decoded before the field's checks, and answered base64
          always ("base64") or when the text could be taken for base64
          ("either"). For a list, a string value is decoded, then split.
    """

    name: str
    type: str = "str"
    aliases: tuple[str, ...] = ()
    default: Any = None
    inherit: tuple[tuple[str, str], ...] = ()
    ref: str | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    internal: bool = False
    readonly: bool = False
    stored: bool = True
    minimum: int | None = None
    maximum: int | None = None
    pattern: re.Pattern[str] | None = None
    wire: str | None = None

    def __post_init__(self) -> None:
        if self.wire is not None and self.wire not in wire.MODES:
            raise ValueError(f"field {self.name}: unknown wire mode {self.wire!r}")


# What a text field with a pattern must be, in words for error messages.
_FORMS = {
    INTERFACE_RE: "an interface name (letters, digits, '.', '_', ':', '-'; at most 32)",
    DOMAIN_RE: "a DNS domain (dot-separated labels of letters, digits, '-' and '_')",
    KERNEL_OPTIONS_RE: "kernel options iPXE passes as they are (no ||, &&, lone ; or ${...})",
}


def parse_ip(text: str, label: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address given by a client, or Invalid naming ``label``. An
    IPv6 zone (``fe80::1%eth0``, which Python parses) names a link of one
    host, not a cluster address, and is refused."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{label}: {_describe(text)} is not an IP address") from None
    if getattr(address, "scope_id", None):
        raise Invalid(f"{label}: {_describe(text)} carries a zone (%...); give the address alone")
    return address


_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def parse_bool(value: Any) -> bool | None:
    """The one reading of a boolean, for the API, the ini file and the
    journal: JSON true/false, 0/1, or the words true/false, yes/no, y/n,
    on/off, 1/0 in any case; None when ``value`` is none of these."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def normalize_mac(value: Any, label: str = "macaddress") -> str:
    """Return a MAC as lowercase colon-separated hex or raise Invalid."""
    if not isinstance(value, str):
        raise Invalid(f"{label}: expected a MAC address string, got {_describe(value)}")
    raw = value.strip().lower()
    if not MAC_RE.fullmatch(raw):
        raise Invalid(f"{label}: {_describe(value)} is not a MAC address")
    digits = re.sub(r"[^0-9a-f]", "", raw)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def encode_field(field: Field, value: str) -> str:
    """A stored text (of a field with a ``wire`` mark) as it is answered."""
    return wire.encode_text(field.wire, value) if field.wire else value


def _text(field: Field, value: Any, label: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Invalid(f"{label}: expected a string, got {_describe(value)}")
    text = str(value)
    limit = MAX_LINE if field.type == "str" else MAX_TEXT
    if len(text) > limit:
        raise Invalid(f"{label}: longer than {limit} characters")
    if "\x00" in text:
        raise Invalid(f"{label}: must not contain NUL characters")
    if field.pattern is not None and text == "":
        return None
    if field.pattern is not None and not field.pattern.fullmatch(text):
        form = _FORMS.get(field.pattern, f"of the form {field.pattern.pattern}")
        raise Invalid(f"{label}: {_describe(value)} is not {form}")
    return text


def _int(field: Field, value: Any, label: str) -> Any:
    if isinstance(value, bool):
        raise Invalid(f"{label}: expected an integer, got {_describe(value)}")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise Invalid(f"{label}: expected an integer, got {_describe(value)}")
    if field.minimum is not None and value < field.minimum:
        raise Invalid(f"{label}: must be at least {field.minimum}")
    if field.maximum is not None and value > field.maximum:
        raise Invalid(f"{label}: must be at most {field.maximum}")
    return value


def _bool(field: Field, value: Any, label: str) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None  # "" unsets: inherit, or the default (the TrinityX CLI sends it)
    flag = parse_bool(value)
    if flag is None:
        raise Invalid(f"{label}: expected true or false, got {_describe(value)}")
    return flag


def _ip(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, str):
        raise Invalid(f"{label}: expected an IP address string, got {_describe(value)}")
    if value.strip() == "":
        return None
    return str(parse_ip(value.strip(), label))


MAX_IPS = 32  # addresses in one list of name servers or forwarders


def _iplist(field: Field, value: Any, label: str) -> Any:
    """IP addresses separated by commas or spaces (or a JSON list of them),
    kept as one comma-separated text, the form the luna CLI sends and shows."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise Invalid(f"{label}: expected IP addresses separated by commas, got {_describe(value)}")
    parts = value.replace(",", " ").split()
    if not parts:
        return None
    if len(parts) > MAX_IPS:
        raise Invalid(f"{label}: more than {MAX_IPS} addresses")
    return ",".join(str(parse_ip(part, label)) for part in parts)


def _cidr(field: Field, value: Any, label: str) -> Any:
    example = "a network such as 10.141.0.0/16"
    if not isinstance(value, str):
        raise Invalid(f"{label}: expected {example}, got {_describe(value)}")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise Invalid(f"{label}: {_describe(value)} is not {example}") from None
    if net.num_addresses < 4:
        raise Invalid(f"{label}: {net} is too small to hold hosts (at most /30 or /126)")
    if net.prefixlen < MIN_PREFIX:
        # ::/0 or 0.0.0.0/0 would hold every other network's addresses.
        raise Invalid(f"{label}: {net} is too large for a cluster network (at least /{MIN_PREFIX})")
    return str(net)


def _mac(field: Field, value: Any, label: str) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return normalize_mac(value, label)


def _list(field: Field, value: Any, label: str) -> Any:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{label}: expected a list of strings, got {_describe(value)}")
    if len(value) > 1024 or any(len(v) > MAX_LINE for v in value):
        raise Invalid(f"{label}: list too long")
    return list(value)


def _ref(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, str):
        raise Invalid(f"{label}: expected the name of a {field.ref}, got {_describe(value)}")
    if value == "":
        return None
    if not NAME_RE.fullmatch(value):
        raise Invalid(f"{label}: {_describe(value)} is not a valid {field.ref} name")
    return value


def _choice(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, str) or value not in field.choices:
        choices = ", ".join(field.choices)
        raise Invalid(f"{label}: must be one of {choices}, got {_describe(value)}")
    return value


def _map(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise Invalid(f"{label}: expected a JSON object, got {_describe(value)}")
    return dict(value)


def _records(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(f"{label}: expected a list of objects, got {_describe(value)}")
    return list(value)


def _token(field: Field, value: Any, label: str) -> Any:
    if not isinstance(value, str) or not TOKEN_RE.fullmatch(value):
        raise Invalid(f"{label}: expected a short lowercase word, got {_describe(value)}")
    return value


# Each field type and how a raw JSON value becomes its canonical value.
COERCERS: dict[str, Callable[[Field, Any, str], Any]] = {
    "str": _text,
    "secret": _text,
    "text": _text,
    "script": _text,
    "int": _int,
    "bool": _bool,
    "ip": _ip,
    "iplist": _iplist,
    "cidr": _cidr,
    "mac": _mac,
    "list": _list,
    "ref": _ref,
    "choice": _choice,
    "map": _map,
    "records": _records,
    "token": _token,
}


def coerce(field: Field, value: Any, label: str | None = None) -> Any:
    """Turn a raw JSON value into the field's canonical value."""
    if value is None:
        return None
    if field.wire is not None and isinstance(value, str):
        value = wire.decode_text(value)
    return COERCERS[field.type](field, value, label or field.name)
