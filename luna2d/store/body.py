# -*- test-case-name: tests.test_objects -*-
"""A request body for one object, split into its parts by the kind table;
object names and the lookups every write starts with."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import NAME_RE, coerce
from luna2d.model.kinds import KINDS, Kind
from luna2d.store.state import Obj, Tx

# Keys a client may send back unchanged from a GET; they are not stored.
OUTPUT_ONLY = frozenset({"members", "tags", "devices", "_override"})


def check_name(kind: Kind | str, name: Any, label: str = "name") -> str:
    """``name`` when it is a valid name for an object of ``kind``."""
    if isinstance(kind, str):
        kind = KINDS[kind]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid(
            f"{label}: {name!r} is not a valid {kind.name} name "
            "(lowercase letters, digits, '.', '_' and '-', at most 63 characters)"
        )
    if name in kind.reserved:
        raise Invalid(f"{label}: {name!r} is reserved")
    return name


def require(tx: Tx, kind: str, name: str) -> Obj:
    """The object ``name`` of ``kind``, or NotFound."""
    obj = tx.get(kind, name)
    if obj is None:
        raise NotFound(f"{kind} {name!r} does not exist")
    return obj


class Body:
    """A request body for one object, split into its parts.

    values: stored fields, coerced, by canonical name; given: the stored
    fields the body names; virtual: fields that are not stored in the
    object's data (``Field.stored`` False), raw, for the kind's hooks;
    interfaces: the list of interface objects (named interface modes);
    network, ipaddress: (given, raw value) of a single-address kind."""

    def __init__(self, kind: Kind, name: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise Invalid(f"the {kind.name} {name!r} must be a JSON object of fields")
        self.kind = kind
        self.new_name: str | None = None
        self.values: dict[str, Any] = {}
        self.given: set[str] = set()
        self.virtual: dict[str, Any] = {}
        self.interfaces: list[Any] | None = None
        self.network: tuple[bool, Any] = (False, None)
        self.ipaddress: tuple[bool, Any] = (False, None)
        for key, value in raw.items():
            if not isinstance(key, str):
                raise Invalid("field names must be strings")
            self._take(name, key, value)

    def _take(self, name: str, key: str, value: Any) -> None:
        kind = self.kind
        if key in kind.rename:
            if value not in (None, "", name):
                self.new_name = check_name(kind, value, key)
            return
        if key == "name":
            if value not in (None, name):
                raise Invalid(
                    f"name: {value!r} differs from {name!r} in the path; "
                    f"use {kind.rename[0] if kind.rename else 'a new object'} to rename"
                )
            return
        f = kind.field(key)
        if f is not None and not f.stored:
            if f.name not in self.virtual or key == f.name:  # the canonical spelling wins
                self.virtual[f.name] = value
            return
        if key in OUTPUT_ONLY or (key.startswith("_") and key.endswith("_source")):
            return
        if f is not None and f.readonly:
            return
        if key == "interfaces" and kind.named_interfaces:
            if not isinstance(value, list):
                raise Invalid("interfaces: expected a list of interface objects")
            self.interfaces = value
            return
        if kind.interfaces == "single" and key in ("network", "ipaddress"):
            setattr(self, key, (True, value))
            return
        if f is None or f.internal:
            raise Invalid(f"{key}: unknown field for {kind.name}")
        if f.name in self.given and key != f.name:
            return  # both spellings given: the canonical one wins
        self.values[f.name] = coerce(f, value, key)
        self.given.add(f.name)
