# -*- test-case-name: tests.clients.test_dns -*-
"""The extra DNS records of a network: host names the cluster's DNS should
answer in that network's zone that are not the address of any object
luna2d knows (a storage appliance, a license server, an alias).

They are kept on the network object, in its internal ``dns_records`` field
(host -> address), so they are written through the store's one write path,
follow a rename of the network and go with its deletion. A host name is a
DNS name (labels of letters, digits, '-' and '_'), kept in lower case (DNS
names are case-insensitive); the address is any IPv4 or IPv6 address: an
extra record may point outside the network's own range."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import DOMAIN_RE, parse_ip
from luna2d.model.kinds import NETWORK
from luna2d.store.body import require
from luna2d.store.state import Tx

FIELD = "dns_records"
RECORD_KEYS = {"host", "ipaddress"}
MAX_RECORDS = 10000


def host_name(value: Any, label: str) -> str:
    """``value`` as a stored host name, or Invalid naming ``label``."""
    if not isinstance(value, str) or not DOMAIN_RE.fullmatch(value.strip()):
        raise Invalid(
            f"{label}: {value!r} is not a host name "
            "(dot-separated labels of letters, digits, '-' and '_')"
        )
    return value.strip().rstrip(".").lower()


def records_of(data: dict[str, Any]) -> list[dict[str, str]]:
    """The records stored in a network's data, as the API shows them."""
    stored = data.get(FIELD) or {}
    return [{"host": host, "ipaddress": stored[host]} for host in sorted(stored)]


def parse_records(raw: Any, network: str) -> dict[str, str]:
    """host -> address of a POSTed list of ``{"host", "ipaddress"}``."""
    label = f"config.dns.{network}"
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise Invalid(
            f"{label}: expected a list of records such as "
            '[{"host": "storage01", "ipaddress": "10.141.0.250"}]'
        )
    out: dict[str, str] = {}
    for n, entry in enumerate(raw):
        where = f"{label}[{n}]"
        if not isinstance(entry, dict):
            raise Invalid(f"{where}: expected an object with host and ipaddress")
        unknown = set(entry) - RECORD_KEYS
        if unknown:
            raise Invalid(f"{where}.{min(unknown)}: unknown field")
        if "host" not in entry or "ipaddress" not in entry:
            raise Invalid(f"{where}: host and ipaddress are required")
        host = host_name(entry["host"], f"{where}.host")
        if not isinstance(entry["ipaddress"], str):
            raise Invalid(f"{where}.ipaddress: expected an IP address string")
        out[host] = str(parse_ip(entry["ipaddress"].strip(), f"{where}.ipaddress"))
    return out


def put_records(tx: Tx, network: str, records: dict[str, str]) -> None:
    """Add or change the records of ``network``."""
    obj = require(tx, NETWORK.name, network)
    mine = tx.edit(obj)
    stored = dict(mine.data.get(FIELD) or {})
    stored.update(records)
    if len(stored) > MAX_RECORDS:
        raise Invalid(f"network {network!r} may hold at most {MAX_RECORDS} extra DNS records")
    mine.data[FIELD] = stored


def delete_record(tx: Tx, network: str, host: str) -> None:
    """Remove one record, NotFound when the network has no such host."""
    obj = require(tx, NETWORK.name, network)
    name = host_name(host, "host")
    stored = dict(obj.data.get(FIELD) or {})
    if name not in stored:
        raise NotFound(f"network {network!r} has no extra DNS record {name!r}")
    del stored[name]
    mine = tx.edit(obj)
    if stored:
        mine.data[FIELD] = stored
    else:
        mine.data.pop(FIELD, None)
