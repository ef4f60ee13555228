# -*- test-case-name: tests.test_objects,tests.test_kinds_table,tests.clients -*-
"""The generic object machinery: create-or-update, rename, clone and
delete of any kind. Every function works on a Tx and raises LunaError
values; nothing here does I/O. What differs between kinds comes from the
kind table and from the hooks registered for a kind or its interface
mode (``store/hooks.py``)."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import Field
from luna2d.model.kinds import KINDS, Kind, referrers
from luna2d.store import hooks, interfaces, networks, racks, single, templates
from luna2d.store.body import Body, check_name, require
from luna2d.store.state import Obj, Secret, Tx

# The modules whose import registers the hooks of the interface modes and kinds.
HOOK_MODULES = (interfaces, templates, single, networks, racks)

# A clone starts without these: they belong to the machine, not its role.
NOT_CLONED = frozenset(
    {
        "status",
        "vendor",
        "assettag",
        "tpm_uuid",
        "tpm_pubkey",
        "tpm_sha256",
        "rack",
        "rackposition",
        "rackheight",
        "rackorientation",
        "racktype",
        # the boot policy's arming and install grants (docs/BOOT.md)
        "armed",
        "armed_until",
        "install_grant",
        "install_grant_until",
    }
)


def _ref(tx: Tx, f: Field, value: str | None, label: str) -> int | None:
    if value is None:
        return None
    target = tx.get(f.ref or "", value)
    if target is None:
        raise Invalid(f"{label}: {f.ref} {value!r} does not exist")
    return target.id


def upsert(tx: Tx, kind_name: str, name: str, raw: Any, allow_create: bool = True) -> bool:
    """Create ``name`` or update it with the fields in ``raw``; True when created."""
    kind = KINDS[kind_name]
    check_name(kind, name)
    body = Body(kind, name, raw)
    existing = tx.get(kind.name, name)
    if existing is None:
        if not allow_create:
            raise NotFound(f"{kind.name} {name!r} does not exist")
        if body.new_name is not None:
            # A rename of a missing object is a mistake, not a create.
            raise NotFound(f"{kind.name} {name!r} does not exist; there is nothing to rename")
        missing = [f for f in kind.required if body.values.get(f) is None]
        if missing:
            raise Invalid(f"{missing[0]}: required to create {kind.name} {name!r}")
        obj = tx.create(kind.name, name)
        created = True
    else:
        obj = tx.edit(existing)
        created = False
    apply_body(tx, obj, body, created)
    if body.new_name is not None:
        rename(tx, obj, body.new_name)
    return created


def apply_body(tx: Tx, obj: Obj, body: Body, created: bool, template: Obj | None = None) -> None:
    """Set the body's fields on ``obj`` (an edited copy), then run the
    kind's hooks (addresses, renumbering, rack content)."""
    kind = body.kind
    change = hooks.Change(dict(obj.data), created, template)
    for fname in kind.required:
        if fname in body.given and body.values.get(fname) is None:
            raise Invalid(f"{fname}: required for {kind.name} {obj.name!r}; it cannot be unset")
    for fname, value in body.values.items():
        f = kind.by_name[fname]
        if f.type == "ref":
            value = _ref(tx, f, value, fname)
            if value is not None and value == obj.id and f.ref == kind.name:
                # an object naming itself could never be deleted
                raise Invalid(f"{fname}: {kind.name} {obj.name!r} cannot refer to itself")
        if value is None:
            obj.data.pop(fname, None)
        else:
            obj.data[fname] = value
    for hook in hooks.of(kind):
        hook.apply(tx, obj, body, change)


def rename(tx: Tx, obj: Obj, new_name: str) -> None:
    """Give ``obj`` a new name; every reference follows (they hold ids)."""
    if new_name == obj.name:
        return
    if tx.get(obj.kind, new_name) is not None:
        raise Invalid(f"{obj.kind} {new_name!r} already exists")
    tx.rename(obj, new_name)


def clone(tx: Tx, kind_name: str, name: str, raw: Any) -> str:
    """Copy ``name`` to the name in the body's ``new...`` field; the body's
    fields override the copy."""
    kind = KINDS[kind_name]
    source = require(tx, kind.name, name)
    body = Body(kind, name, raw)
    if body.new_name is None:
        raise Invalid(f"{kind.rename[0]}: required to clone {kind.name} {name!r}")
    if tx.get(kind.name, body.new_name) is not None:
        raise Invalid(f"{kind.name} {body.new_name!r} already exists")
    obj = tx.create(kind.name, body.new_name)
    obj.data = {k: v for k, v in source.clone().data.items() if k not in NOT_CLONED}
    obj.secrets = [Secret(s.name, s.content, s.path) for s in source.secrets]
    for hook in hooks.of(kind):
        hook.clone(tx, source, obj, body)
    apply_body(tx, obj, body, created=True, template=source)
    return obj.name


def users_of(tx: Tx, obj: Obj) -> list[str]:
    """Who still refers to ``obj``: the reason a delete is refused."""
    out = []
    for kind, f in referrers(obj.kind):
        if f.internal:
            continue
        for other in tx.all(kind.name):
            if other.data.get(f.name) == obj.id:
                out.append(f"{kind.name} {other.name}")
    for hook in hooks.of(KINDS[obj.kind]):
        out.extend(hook.users(tx, obj))
    return out


def delete(tx: Tx, kind_name: str, name: str) -> None:
    """Delete ``name``, refused (naming the users) while others use it."""
    obj = require(tx, kind_name, name)
    users = users_of(tx, obj)
    if users:
        shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
        raise Invalid(f"{kind_name} {name!r} is still used by {shown}")
    for hook in hooks.of(KINDS[obj.kind]):
        hook.delete(tx, obj)
    tx.delete(obj)


def _interface_mode(kind_name: str) -> hooks.Hooks:
    kind: Kind = KINDS[kind_name]
    found = hooks.interface_hooks(kind)
    if found is None:
        raise NotFound(f"{kind_name} objects have no interfaces endpoint")
    return found


def put_interfaces(tx: Tx, kind_name: str, name: str, entries: Any) -> bool:
    """POST .../interfaces: add, update or rename the listed interfaces;
    True when any of them is new."""
    mode = _interface_mode(kind_name)
    obj = tx.edit(require(tx, kind_name, name))
    if not isinstance(entries, list) or not entries:
        raise Invalid("interfaces: expected a non-empty list of interface objects")
    before = {item.name for item in obj.ifaces}
    for index, entry in enumerate(entries):
        mode.put_interface(tx, obj, entry, f"interfaces[{index}]")
        renamed = entry.get(interfaces.RENAME_KEY) if isinstance(entry, dict) else None
        if entry.get("interface") in before and isinstance(renamed, str):
            before.add(renamed)  # a renamed interface is not a new one
    return any(item.name not in before for item in obj.ifaces)


def delete_interface(tx: Tx, kind_name: str, name: str, iface: str) -> None:
    """.../interfaces/<iface>/_delete."""
    mode = _interface_mode(kind_name)
    obj = require(tx, kind_name, name)
    if obj.iface(iface) is None:
        raise NotFound(f"{kind_name} {name!r} has no interface {iface!r}")
    mode.drop_interface(tx, tx.edit(obj), iface)
