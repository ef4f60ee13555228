# -*- test-case-name: tests.test_objects,tests.test_api_config,tests.clients.test_config_shapes -*-
"""Objects as the API shows them: inheritance resolved, references named,
scripts base64-encoded, secrets shown only when asked to. What a kind shows
beyond its stored fields (interfaces, a rack's devices) comes from the
hooks registered for it.

The shapes follow what the TrinityX clients read (docs/API.md, "Answers
the clients read"): a script nobody set is "" (the CLI strips it), a list
of strings is one comma-separated string (the CLI's table breaks on a JSON
list of strings; lists are accepted on input too)."""

from __future__ import annotations

from typing import Any

from luna2d.model import wire
from luna2d.model.fields import Field, encode_field
from luna2d.model.kinds import CLUSTER, KINDS, Kind, kinds_where
from luna2d.store import hooks
from luna2d.store.state import Obj

MASK = "********"


def parent(reader: Any, obj: Obj, kind: str) -> Obj | None:
    """The object ``obj`` inherits from at level ``kind``: the one its field
    ``kind`` names (itself resolved through inheritance: a node's osimage
    may come from its group), or the one object of a singleton kind."""
    found: Obj | None
    if KINDS[kind].singleton:
        found = reader.singleton(kind)
    else:
        own = KINDS[obj.kind]
        ref = own.by_name.get(kind)
        if ref is not None and ref.type == "ref" and ref.inherit:
            found = reader.obj(resolve(reader, own, obj, ref)[0])
        else:
            found = reader.obj(obj.data.get(kind))
    return found


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
    """A stored value as the API shows it (a map by its sorted keys, comma-separated)."""
    if f.type == "map":
        return ",".join(sorted(value or {}))
    if value is None:
        return "" if f.type == "script" else None
    if f.type == "ref":
        target = reader.obj(value)
        return target.name if target is not None else None
    if f.secret and not reveal:
        return MASK
    if f.wire is not None and isinstance(value, str):
        return encode_field(f, value)
    if f.type == "list":
        joined = ",".join(value)
        return encode_field(f, joined) if f.wire is not None else joined
    return value


def provision_iface(reader: Any, obj: Obj) -> str:
    """The name of ``obj``'s provisioning (boot) interface."""
    kind = KINDS[obj.kind]
    value, _ = resolve(reader, kind, obj, kind.by_name["provision_interface"])
    return value or "BOOTIF"


def kernel_options(reader: Any, obj: Obj) -> str:
    """The kernel options ``obj`` (a node) boots with: its own, else its
    group's, else its osimage's; they replace each other, as in the
    incumbent daemon, rather than add up."""
    kind = KINDS[obj.kind]
    value, _ = resolve(reader, kind, obj, kind.by_name["kerneloptions"])
    return str(value or "")


def view(reader: Any, obj: Obj, reveal: bool = True) -> dict[str, Any]:
    """The full API view of one object."""
    kind = KINDS[obj.kind]
    out: dict[str, Any] = {"name": obj.name}
    sources: dict[str, str] = {}
    override = False
    for f in kind.fields:
        if f.internal:
            continue
        if not f.stored:
            out[f.name] = None  # in its place; the kind's hooks fill it in
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
    for hook in hooks.of(kind):
        hook.show(reader, obj, out)
    for fname, other in kind.shown_as:
        out[other] = out[fname]
    if any(f.inherit for f in kind.fields):
        out.update(sources)
        out["_override"] = override
    return out


def secrets_of(obj: Obj, reveal: bool, only: str | None = None) -> list[dict[str, Any]]:
    # The spec keys a secret ``secretname``; the CLI reads ``name``: both.
    return [
        {
            "name": s.name,
            "secretname": s.name,
            "content": wire.encode_bytes(s.content) if reveal else MASK,
            "path": s.path,
        }
        for s in obj.secrets
        if only is None or s.name == only
    ]


def cluster_view(reader: Any) -> dict[str, Any]:
    """The cluster with each controller (an infra kind) under its name."""
    cluster = reader.singleton(CLUSTER.name)
    out: dict[str, Any] = {"name": cluster.name if cluster else "cluster"}
    for kind in kinds_where(lambda k: k.infra):
        for controller in reader.all(kind.name):
            item = controller.ifaces[0] if controller.ifaces else None
            out[controller.name] = {
                "status": controller.data.get("status") or "primary",
                "ipaddr": item.ip if item else None,
                "serverport": controller.data.get("serverport") or 7050,
                "luna_config": controller.data.get("luna_config"),
            }
    for f in CLUSTER.fields:
        value = cluster.data.get(f.name) if cluster else None
        if value is None:
            value = f.default
        out[f.name] = encode_field(f, value) if isinstance(value, str) else value
    return out
