# -*- test-case-name: tests.test_kinds_table,tests.test_objects -*-
"""Kind-specific behaviour, hung on the kind table.

The generic machinery (``store/generic.py``) never tests a kind's name: it
asks ``of(kind)`` for the hooks that apply to a kind, which are those
registered for the kind's interface mode (``interfaces.py``: node
interfaces, group templates, single addresses) and those registered for the
kind itself (``networks.py``, ``racks.py``). A kind without either gets
the generic behaviour alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from luna2d.model.kinds import Kind
from luna2d.store.state import Obj, Tx

if TYPE_CHECKING:
    from luna2d.store.body import Body


@dataclass(frozen=True)
class Change:
    """What a write is doing to one object: its data before the body was
    applied, whether it is new, and the object a clone copies."""

    before: dict[str, Any]
    created: bool
    template: Obj | None = None


class Hooks:
    """Behaviour for an interface mode or a kind; every hook is optional
    and does nothing here."""

    def apply(self, tx: Tx, obj: Obj, body: Body, change: Change) -> None:
        """After the body's stored fields are set on ``obj``."""

    def clone(self, tx: Tx, source: Obj, obj: Obj, body: Body) -> None:
        """Before a clone's body applies: copy what the clone takes over."""

    def show(self, reader: Any, obj: Obj, out: dict[str, Any]) -> None:
        """Add what the kind shows beyond its stored fields to ``out``."""

    def users(self, reader: Any, obj: Obj) -> list[str]:
        """Who still uses ``obj`` besides references (a delete is refused)."""
        return []

    def delete(self, tx: Tx, obj: Obj) -> None:
        """Just before ``obj`` is deleted."""

    def put_interface(self, tx: Tx, obj: Obj, raw: Any, label: str) -> None:
        """POST .../interfaces: add or change one interface."""
        raise NotImplementedError

    def drop_interface(self, tx: Tx, obj: Obj, name: str) -> None:
        """.../interfaces/<name>/_delete: drop one interface."""
        raise NotImplementedError

    @property
    def has_interface_endpoint(self) -> bool:
        return type(self).put_interface is not Hooks.put_interface


_REGISTRY: dict[str, Hooks] = {}


def for_mode(mode: str, hooks: Hooks) -> Hooks:
    """Register ``hooks`` for every kind of interface mode ``mode``."""
    _REGISTRY[f"mode:{mode}"] = hooks
    return hooks


def for_kind(name: str, hooks: Hooks) -> Hooks:
    """Register ``hooks`` for the kind ``name``."""
    _REGISTRY[f"kind:{name}"] = hooks
    return hooks


def of(kind: Kind) -> list[Hooks]:
    """The hooks that apply to ``kind``: its interface mode's, then its own."""
    out = []
    if kind.interfaces is not None:
        out.append(_REGISTRY[f"mode:{kind.interfaces}"])
    own = _REGISTRY.get(f"kind:{kind.name}")
    if own is not None:
        out.append(own)
    return out


def interface_hooks(kind: Kind) -> Hooks | None:
    """The hooks behind ``/config/<kind>/<name>/interfaces``, if the kind
    has that endpoint."""
    if kind.interfaces is None:
        return None
    hooks = _REGISTRY[f"mode:{kind.interfaces}"]
    return hooks if hooks.has_interface_endpoint else None
