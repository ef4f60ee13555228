"""Objects as the API shows them: inheritance resolved, references named,
scripts base64-encoded, secrets shown only when asked to."""

from __future__ import annotations

from typing import Any

from luna2d.model.fields import Field, encode_script
from luna2d.model.kinds import KINDS, Kind
from luna2d.store.state import Obj

MASK = "********"


def parent(reader: Any, obj: Obj, kind: str) -> Obj | None:
    """The object ``obj`` inherits from at level ``kind``."""
    if kind == "cluster":
        return reader.singleton("cluster")
    return reader.obj(obj.data.get(kind))


def resolve(reader: Any, kind: Kind, obj: Obj, f: Field) -> tuple[Any, str]:
    """A field's effective value and where it came from."""
    value = obj.data.get(f.name)
    if value is not None:
        return value, kind.name
    for parent_kind, parent_field in f.inherit:
        up = parent(reader, obj, parent_kind)
        if up is not None:
            inherited = up.data.get(parent_field)
            if inherited is not None:
                return inherited, parent_kind
    return f.default, "default"


def present(reader: Any, f: Field, value: Any, reveal: bool) -> Any:
    """A stored value as the API shows it."""
    if value is None:
        return None
    if f.type == "ref":
        target = reader.obj(value)
        return target.name if target is not None else None
    if f.type == "script":
        return encode_script(value)
    if f.secret and not reveal:
        return MASK
    if f.type == "list":
        return list(value)
    return value


def provision_iface(reader: Any, obj: Obj) -> str:
    value, _ = resolve(reader, KINDS["node"], obj, KINDS["node"].by_name["provision_interface"])
    return value or "BOOTIF"


def interfaces(reader: Any, obj: Obj) -> list[dict]:
    mode = KINDS[obj.kind].interfaces
    out = []
    for item in obj.ifaces:
        network = reader.obj(item.network)
        entry: dict[str, Any] = {"interface": item.name, "network": network.name if network else None}
        if mode == "multi":
            entry["ipaddress"] = item.ip
            entry["macaddress"] = item.mac
        entry["options"] = item.options
        out.append(entry)
    return out


def view(reader: Any, obj: Obj, reveal: bool = True) -> dict[str, Any]:
    """The full API view of one object."""
    kind = KINDS[obj.kind]
    out: dict[str, Any] = {"name": obj.name}
    sources: dict[str, str] = {}
    override = False
    if kind.interfaces == "single":
        item = obj.ifaces[0] if obj.ifaces else None
        network = reader.obj(item.network) if item else None
        out["network"] = network.name if network else None
        out["ipaddress"] = item.ip if item else None
    for f in kind.fields:
        if f.internal:
            continue
        if f.inherit:
            value, source = resolve(reader, kind, obj, f)
            sources[f"_{f.name}_source"] = source
            if source == kind.name:
                override = True
        else:
            value = obj.data.get(f.name, f.default)
            if value is None:
                value = f.default
        out[f.name] = present(reader, f, value, reveal)
        if f.name == "group" and kind.interfaces == "multi":
            out["interfaces"] = interfaces(reader, obj)
            boot = obj.iface(provision_iface(reader, obj))
            out["macaddr"] = boot.mac if boot else None
    if kind.interfaces == "network":
        out["interfaces"] = interfaces(reader, obj)
    if kind.name == "rack":
        out["devices"] = rack_devices(reader, obj)
    if kind.name == "osimage":
        out["tags"] = sorted((obj.data.get("tags") or {}).keys())
    if kind.fields and any(f.inherit for f in kind.fields):
        out.update(sources)
        out["_override"] = override
    return out


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


def rack_devices(reader: Any, rack: Obj) -> list[dict]:
    out = []
    for kind in KINDS.values():
        if not kind.rack_device:
            continue
        for obj in reader.all(kind.name):
            if obj.data.get("rack") == rack.id:
                entry = device_entry(reader, obj)
                entry.pop("rack")
                out.append(entry)
    out.sort(key=lambda d: (d["position"] or 0, d["name"]))
    return out


def secrets_of(obj: Obj, reveal: bool, only: str | None = None) -> list[dict]:
    return [
        {"secretname": s.name, "content": s.content if reveal else MASK, "path": s.path}
        for s in obj.secrets
        if only is None or s.name == only
    ]


def cluster_view(reader: Any) -> dict[str, Any]:
    cluster = reader.singleton("cluster")
    kind = KINDS["cluster"]
    out: dict[str, Any] = {"name": cluster.name if cluster else "cluster"}
    for controller in reader.all("controller"):
        item = controller.ifaces[0] if controller.ifaces else None
        out[controller.name] = {
            "status": controller.data.get("status") or "primary",
            "ipaddr": item.ip if item else None,
            "serverport": controller.data.get("serverport") or 7050,
            "luna_config": controller.data.get("luna_config"),
        }
    for f in kind.fields:
        value = cluster.data.get(f.name) if cluster else None
        out[f.name] = value if value is not None else f.default
    return out
