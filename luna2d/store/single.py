# -*- test-case-name: tests.test_objects,tests.test_kinds_table -*-
"""The ``single`` interface mode: one address, shown as top-level
``network`` and ``ipaddress`` (switches, other devices, controllers)."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid
from luna2d.model.fields import parse_ip
from luna2d.model.kinds import KINDS
from luna2d.store import hooks, ipam
from luna2d.store.body import Body
from luna2d.store.interfaces import allocate, network_named
from luna2d.store.state import Iface, Obj, Tx


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
        ip = allocate(tx, network, "ipaddress")
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


hooks.for_mode("single", SingleInterface())
