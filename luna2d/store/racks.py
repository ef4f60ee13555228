# -*- test-case-name: tests.test_objects -*-
"""Racks and the inventory: where devices (kinds marked ``rack_device``)
sit. A rack's ``devices`` field is kept on the devices themselves."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import Field, coerce
from luna2d.model.kinds import KINDS, RACK, RACK_TYPES, kinds_where
from luna2d.store import hooks
from luna2d.store.body import Body, require
from luna2d.store.state import Obj, Tx

DEVICE_KEYS = frozenset({"name", "type", "vendor", "orientation", "height", "position", "rack"})
# Device entry keys and the device fields they set.
DEVICE_FIELDS = (("vendor", "vendor"), ("orientation", "rackorientation"), ("height", "rackheight"))
_POSITION = Field("position", "int", minimum=1, maximum=100)


def devices_in(reader: Any, rack: Obj) -> list[Obj]:
    """Every device placed in ``rack``."""
    return [
        o
        for k in kinds_where(lambda k: k.rack_device)
        for o in reader.all(k.name)
        if o.data.get("rack") == rack.id
    ]


def _device(tx: Tx, raw: Any, label: str) -> Obj:
    if not isinstance(raw, dict):
        raise Invalid(f"{label}: expected a device object")
    unknown = set(raw) - DEVICE_KEYS
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown device field")
    dtype = raw.get("type", "node")
    if not isinstance(dtype, str) or dtype not in RACK_TYPES:
        raise Invalid(f"{label}.type: must be one of {', '.join(RACK_TYPES)}")
    name = raw.get("name")
    found = tx.get(dtype, name) if isinstance(name, str) else None
    if found is None:
        raise Invalid(f"{label}.name: {dtype} {name!r} does not exist")
    device = tx.edit(found)
    kind = KINDS[device.kind]
    for key, fname in DEVICE_FIELDS:
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
    """Place the listed devices in a rack (moving them from wherever they
    were); devices already in it and not listed stay, as lrack and the
    incumbent expect (``lrack place`` sends only the devices it places).
    Taking a device out is ``/config/rack/inventory/<d>/type/<t>/_delete``."""
    if not isinstance(devices, list):
        raise Invalid("devices: expected a list of device objects")
    for index, raw in enumerate(devices):
        device = _device(tx, raw, f"devices[{index}]")
        position = coerce(_POSITION, raw.get("position"), f"devices[{index}].position")
        if position is None:
            raise Invalid(f"devices[{index}].position: required to place {device.name} in a rack")
        device.data["rack"] = rack.id
        device.data["rackposition"] = position
    check_rack(tx, rack)


def check_rack(tx: Tx, rack: Obj) -> None:
    """Every device fits the rack's size and no two share a unit."""
    size = rack.data.get("size") or RACK.by_name["size"].default
    used: dict[int, str] = {}
    for device in devices_in(tx, rack):
        position = device.data.get("rackposition") or 1
        height = device.data.get("rackheight") or 1
        if position + height - 1 > size:
            raise Invalid(
                f"devices: {device.name} at {position} (height {height}) "
                f"does not fit rack of size {size}"
            )
        for unit in range(position, position + height):
            if unit in used:
                raise Invalid(
                    f"devices: {device.name} and {used[unit]} both take unit {unit} "
                    f"of rack {rack.name}"
                )
            used[unit] = device.name


def update_inventory(tx: Tx, items: Any) -> None:
    """POST /config/rack/inventory: change devices' vendor, orientation, height."""
    if not isinstance(items, list):
        raise Invalid("inventory: expected a list of device objects")
    for index, raw in enumerate(items):
        device = _device(tx, raw, f"inventory[{index}]")
        rack = tx.obj(device.data.get("rack"))
        if rack is not None:
            check_rack(tx, rack)


def clear_inventory(tx: Tx, name: str, dtype: str) -> None:
    """Take a device out of its rack."""
    if dtype not in RACK_TYPES:
        raise NotFound(f"there is no device type {dtype!r}")
    device = require(tx, dtype, name)
    _unplace(tx.edit(device))


def device_entry(reader: Any, obj: Obj) -> dict[str, Any]:
    """A device as the rack and inventory views show it."""
    rack = reader.obj(obj.data.get("rack"))
    return {
        "name": obj.name,
        "type": obj.kind,
        "vendor": obj.data.get("vendor"),
        "orientation": obj.data.get("rackorientation") or "front",
        "height": obj.data.get("rackheight") or 1,
        "position": obj.data.get("rackposition"),
        "rack": rack.name if rack else None,
    }


def rack_devices(reader: Any, rack: Obj) -> list[dict[str, Any]]:
    """A rack's ``devices`` as the API shows them, by position."""
    out = []
    for obj in devices_in(reader, rack):
        entry = device_entry(reader, obj)
        entry.pop("rack")
        out.append(entry)
    out.sort(key=lambda d: (d["position"] or 0, d["name"]))
    return out


class RackHooks(hooks.Hooks):
    """The rack kind: its devices are its content."""

    def apply(self, tx: Tx, obj: Obj, body: Body, change: hooks.Change) -> None:
        if "devices" in body.virtual:
            place_devices(tx, obj, body.virtual["devices"])
        elif not change.created:
            check_rack(tx, obj)  # a smaller size must still hold its devices

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        out["devices"] = rack_devices(reader, obj)

    def delete(self, tx: Tx, obj: Obj) -> None:
        for device in devices_in(tx, obj):
            _unplace(tx.edit(device))


hooks.for_kind(RACK.name, RackHooks())
