# -*- test-case-name: tests.test_kinds_table,tests.test_api_config -*-
"""The members of an object (``GET .../_list`` and ``.../_member``), as
the kind table declares them (``luna2d.model.kinds.Members``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from luna2d.model.kinds import KINDS, Members
from luna2d.store import ipam, racks, views
from luna2d.store.state import Obj


def _refers(reader: Any, obj: Obj, relation: Members) -> list[str]:
    kind = KINDS[relation.kind or ""]
    f = kind.by_name[relation.field or ""]
    also = kind.by_name[relation.also] if relation.also else None
    return sorted(
        o.name
        for o in reader.all(kind.name)
        if views.resolve(reader, kind, o, f)[0] == obj.id
        and (also is None or views.resolve(reader, kind, o, also)[0] is not None)
    )


def _addresses(reader: Any, obj: Obj, relation: Members) -> list[str]:
    return sorted(
        {o.name for o, _ in ipam.holders_on(reader, obj.id) if KINDS[o.kind].holds_addresses}
    )


def _placed(reader: Any, obj: Obj, relation: Members) -> list[str]:
    return [d["name"] for d in racks.rack_devices(reader, obj)]


def _none(reader: Any, obj: Obj, relation: Members) -> list[str]:
    return []


RELATION_KINDS: dict[str, Callable[[Any, Obj, Members], list[str]]] = {
    "refers": _refers,
    "addresses": _addresses,
    "placed": _placed,
    "none": _none,
}


def member_names(reader: Any, obj: Obj, relation: Members) -> list[str]:
    """The names of ``obj``'s members under ``relation``."""
    try:
        how = RELATION_KINDS[relation.how]
    except KeyError:
        raise ValueError(f"unknown member relation {relation.how!r}") from None
    return how(reader, obj, relation)
