# -*- test-case-name: tests.test_objects,tests.test_kinds_table,tests.clients.test_config_shapes -*-
"""The ``network`` interface mode: named interface templates with a network
only (groups). A change is carried to the objects that take their
interfaces from the template (a group's nodes)."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid
from luna2d.model.kinds import KINDS
from luna2d.store import hooks
from luna2d.store.body import Body
from luna2d.store.interfaces import (
    drop_settings,
    entry_of,
    iface_name,
    interface_views,
    network_named,
    options_of,
    put_multi_iface,
    put_settings,
    rename_iface,
    renamed_entry,
    settings_of,
    template_parent,
)
from luna2d.store.state import Iface, Obj, Tx


def _takers(tx: Tx, template: Obj) -> list[Obj]:
    """The objects that take their interfaces from ``template``."""
    out: list[Obj] = []
    for kind in KINDS.values():
        field = template_parent(kind) if kind.interfaces == "multi" else None
        if field is not None:
            out.extend(o for o in tx.all(kind.name) if o.data.get(field) == template.id)
    return out


def put_template_iface(tx: Tx, group: Obj, raw: Any, label: str) -> None:
    """Add or change a group interface and carry the change to its members:
    a rename, a new network and changed settings reach the members that had
    not set their own."""
    entry = entry_of(raw, label)
    old_name = iface_name(entry, label)
    if "ipaddress" in entry or "macaddress" in entry:
        raise Invalid(f"{label}: group interfaces carry a network only, not addresses")
    entry = renamed_entry(tx, group, entry, label)
    name = iface_name(entry, label)
    if name != old_name:
        for member in _takers(tx, group):
            if member.iface(old_name) is not None:
                rename_iface(
                    tx, tx.edit(member), old_name, name, f"{label} for {member.kind} {member.name}"
                )
    old = group.iface(name)
    network: Obj | None
    if entry.get("network") not in (None, ""):
        network = network_named(tx, entry["network"], f"{label}.network")
    elif old is not None:
        network = tx.obj(old.network) if old.network else None
    else:
        raise Invalid(f"{label}.network: required for the new interface {name}")
    tx.put_iface(
        group,
        Iface(name, network.id if network else None, None, None, options_of(entry, old, label)),
    )
    before = settings_of(group, name)
    put_settings(group, name, entry, label)
    after = settings_of(group, name)
    old_network = old.network if old else None
    for member in _takers(tx, group):
        mine = member.iface(name)
        if mine is None:
            member = tx.edit(member)
            put_multi_iface(
                tx,
                member,
                {"interface": name, **after},
                f"{label} for {member.kind} {member.name}",
            )
            continue
        theirs = settings_of(member, name)
        follow = {
            key: after.get(key)
            for key in set(before) | set(after)
            if before.get(key) != after.get(key) and theirs.get(key) == before.get(key)
        }
        if follow:
            member = tx.edit(member)
            put_settings(member, name, follow, f"{label} for {member.kind} {member.name}")
        if (
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
        # The clone's data, settings included, is a copy of the source's.
        for item in source.ifaces:
            tx.put_iface(obj, Iface(item.name, item.network, None, None, item.options))

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        out["interfaces"] = interface_views(reader, obj)

    def put_interface(self, tx: Tx, obj: Obj, raw: Any, label: str) -> None:
        put_template_iface(tx, obj, raw, label)

    def drop_interface(self, tx: Tx, obj: Obj, name: str) -> None:
        tx.drop_iface(obj, name)
        drop_settings(obj, name)
        for member in _takers(tx, obj):
            if member.iface(name) is not None:
                mine = tx.edit(member)
                tx.drop_iface(mine, name)
                drop_settings(mine, name)


hooks.for_mode("network", TemplateInterfaces())
