# -*- test-case-name: tests.test_store,tests.test_renumber,tests.test_heavy_writes -*-
"""The in-memory image of the database and the write transaction over it.

Reads are served from ``State`` (hot paths read memory, not SQL). A write
runs as a ``Tx``: it edits copies of the objects it touches, keeps overlay
indexes of addresses and MACs so later steps of the same write see earlier
ones, then turns its changes into SQL run in one database transaction.
Only when that commits are the copies swapped into the State."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from luna2d.model.kinds import KINDS


def is_quad(text: str) -> bool:
    """Whether ``text`` is an IPv4 address in canonical dotted-quad form
    (``inet_pton`` refuses leading zeros, short forms and spaces, as
    ``ipaddress`` does)."""
    try:
        socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError, ValueError):
        return False
    return True


def ip_key(ip: str) -> int:
    """A dict key for an address; IPv6 keys never meet IPv4 ones."""
    try:
        # The quick way for the form the store keeps: renumbering a network
        # computes thousands of keys at once.
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError):
        pass
    addr = ipaddress.ip_address(ip)
    return int(addr) if addr.version == 4 else (1 << 128) | int(addr)


def copy_data(value: Any) -> Any:
    """A deep copy of an object's JSON data (dicts, lists and scalars),
    several times quicker than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value


# The interface name that marks a node's BMC, matched in any case.
BMC_INTERFACE = "BMC"


@dataclass
class Iface:
    name: str
    network: int | None = None  # object id of the network
    ip: str | None = None
    mac: str | None = None
    options: str | None = None


@dataclass
class Secret:
    name: str
    content: bytes  # exactly what lands on the node (a munge key is binary)
    path: str | None = None


@dataclass
class Obj:
    id: int
    kind: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    ifaces: list[Iface] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)

    def iface(self, name: str) -> Iface | None:
        for item in self.ifaces:
            if item.name == name:
                return item
        return None

    def bmc_iface(self) -> Iface | None:
        """The interface that is the BMC: the one named ``BMC`` in any case
        (power control and the install script's BMC setup both read it)."""
        for item in self.ifaces:
            if item.name.lower() == BMC_INTERFACE.lower():
                return item
        return None

    def secret(self, name: str) -> Secret | None:
        for item in self.secrets:
            if item.name == name:
                return item
        return None

    def clone(self) -> Obj:
        return Obj(
            self.id,
            self.kind,
            self.name,
            copy_data(self.data),
            [Iface(i.name, i.network, i.ip, i.mac, i.options) for i in self.ifaces],
            [Secret(s.name, s.content, s.path) for s in self.secrets],
        )


Holder = tuple[int, str]  # (object id, interface name)


class State:
    """Every object, by kind and name and by id, with address indexes."""

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, Obj]] = {k: {} for k in KINDS}
        self.by_id: dict[int, Obj] = {}
        self.ips: dict[int, Holder] = {}
        self.macs: dict[str, Holder] = {}
        self.next_id = 1
        self.generation = 0

    def add(self, obj: Obj) -> None:
        self.by_kind[obj.kind][obj.name] = obj
        self.by_id[obj.id] = obj
        for item in obj.ifaces:
            if item.ip:
                self.ips[ip_key(item.ip)] = (obj.id, item.name)
            if item.mac:
                self.macs[item.mac] = (obj.id, item.name)
        self.next_id = max(self.next_id, obj.id + 1)

    def singleton(self, kind: str) -> Obj | None:
        objects = self.by_kind[kind]
        return next(iter(objects.values())) if objects else None

    # The reader interface shared with Tx.
    def obj(self, obj_id: int | None) -> Obj | None:
        return self.by_id.get(obj_id) if obj_id is not None else None

    def get(self, kind: str, name: str) -> Obj | None:
        return self.by_kind[kind].get(name)

    def all(self, kind: str) -> Iterator[Obj]:
        return iter(list(self.by_kind[kind].values()))


class Overlay:
    """A view of a dict with pending sets and removals on top."""

    def __init__(self, base: dict[Any, Any]) -> None:
        self.base = base
        self.added: dict[Any, Any] = {}
        self.removed: set[Any] = set()

    def get(self, key: Any) -> Any:
        if key in self.added:
            return self.added[key]
        if key in self.removed:
            return None
        return self.base.get(key)

    def __contains__(self, key: Any) -> bool:
        return self.get(key) is not None

    def set(self, key: Any, value: Any) -> None:
        self.removed.discard(key)
        self.added[key] = value

    def pop(self, key: Any) -> None:
        self.added.pop(key, None)
        self.removed.add(key)

    def apply(self) -> None:
        for key in self.removed:
            self.base.pop(key, None)
        self.base.update(self.added)


class Tx:
    """One write: edited copies, created and deleted objects, overlays.

    A heavy write runs in a thread (``WriteQueue``): it reads the live
    State, which nothing changes meanwhile (the queue applies one write at
    a time, after its commit, and the reactor only reads), and it writes
    only its own copies and overlays. Nothing here caches across writes."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.changed: dict[int, Obj] = {}
        self.created: set[int] = set()
        # Copies made by edit_ifaces: their data and secrets are still the
        # live object's, until edit() makes them fully private.
        self.shallow: set[int] = set()
        self.deleted: dict[int, Obj] = {}
        self.names: dict[tuple[str, str], int | None] = {}
        self.ips = Overlay(state.ips)
        self.macs = Overlay(state.macs)
        self.next_id = state.next_id

    # -- reading through the pending changes -------------------------------
    def obj(self, obj_id: int | None) -> Obj | None:
        if obj_id is None or obj_id in self.deleted:
            return None
        return self.changed.get(obj_id) or self.state.by_id.get(obj_id)

    def get(self, kind: str, name: str) -> Obj | None:
        key = (kind, name)
        if key in self.names:
            return self.obj(self.names[key])
        live = self.state.by_kind[kind].get(name)
        if live is None or live.id in self.deleted:
            return None
        return self.changed.get(live.id, live)

    def all(self, kind: str) -> Iterator[Obj]:
        seen = set()
        for obj in self.state.by_kind[kind].values():
            seen.add(obj.id)
            current = self.obj(obj.id)
            if current is not None:
                yield current
        for obj_id in self.created:
            made = self.changed.get(obj_id)
            if made is not None and made.kind == kind and obj_id not in seen:
                yield made

    def singleton(self, kind: str) -> Obj | None:
        return next(self.all(kind), None)

    # -- changing -------------------------------------------------------------
    def edit(self, obj: Obj) -> Obj:
        """A private, editable copy of ``obj`` that this write will store."""
        if obj.id in self.changed:
            mine = self.changed[obj.id]
            if obj.id in self.shallow:
                self.shallow.discard(obj.id)
                mine.data = copy_data(mine.data)
                mine.secrets = [Secret(s.name, s.content, s.path) for s in mine.secrets]
            return mine
        mine = obj.clone()
        self.changed[obj.id] = mine
        return mine

    def edit_ifaces(self, obj: Obj) -> Obj:
        """A copy of ``obj`` whose interfaces this write may change; its data
        and secrets stay shared with the live object (read-only) until
        ``edit`` is asked for it. Renumbering a network copies thousands of
        nodes this way at a fraction of the cost of ``edit``."""
        if obj.id in self.changed:
            return self.changed[obj.id]
        mine = Obj(obj.id, obj.kind, obj.name, obj.data, list(obj.ifaces), obj.secrets)
        self.changed[obj.id] = mine
        self.shallow.add(obj.id)
        return mine

    def create(self, kind: str, name: str) -> Obj:
        obj = Obj(self.next_id, kind, name)
        self.next_id += 1
        self.changed[obj.id] = obj
        self.created.add(obj.id)
        self.names[(kind, name)] = obj.id
        return obj

    def rename(self, obj: Obj, new_name: str) -> None:
        mine = self.edit(obj)
        self.names[(mine.kind, mine.name)] = None
        mine.name = new_name
        self.names[(mine.kind, new_name)] = mine.id

    def delete(self, obj: Obj) -> None:
        current = self.obj(obj.id)
        if current is None:
            return
        # Release its addresses in the overlays; never touch the live object.
        for item in current.ifaces:
            if item.ip:
                self.ips.pop(ip_key(item.ip))
            if item.mac:
                self.macs.pop(item.mac)
        self.names[(current.kind, current.name)] = None
        self.changed.pop(obj.id, None)
        if obj.id in self.created:
            self.created.discard(obj.id)
        else:
            self.deleted[obj.id] = current

    def put_iface(self, obj: Obj, new: Iface) -> None:
        """Add or replace the interface ``new.name`` of an edited object,
        keeping the address and MAC overlays in step."""
        old = obj.iface(new.name)
        if old is not None:
            if old.ip:
                self.ips.pop(ip_key(old.ip))
            if old.mac:
                self.macs.pop(old.mac)
            obj.ifaces[obj.ifaces.index(old)] = new
        else:
            obj.ifaces.append(new)
        if new.ip:
            self.ips.set(ip_key(new.ip), (obj.id, new.name))
        if new.mac:
            self.macs.set(new.mac, (obj.id, new.name))

    def move_addresses(self, moves: list[tuple[Obj, int, str, int, int]]) -> None:
        """Give interfaces new addresses at once: (edited object, index of
        the interface, new address, its ``ip_key``, the old address's
        ``ip_key``). Every old address is released before any new one is
        claimed, so that addresses may change hands."""
        for _, _, _, _, old in moves:
            self.ips.pop(old)
        for obj, index, ip, key, _ in moves:
            item = obj.ifaces[index]
            obj.ifaces[index] = Iface(item.name, item.network, ip, item.mac, item.options)
            self.ips.set(key, (obj.id, item.name))

    def drop_iface(self, obj: Obj, name: str) -> None:
        old = obj.iface(name)
        if old is None:
            return
        if old.ip:
            self.ips.pop(ip_key(old.ip))
        if old.mac:
            self.macs.pop(old.mac)
        obj.ifaces.remove(old)

    @property
    def empty(self) -> bool:
        return not self.changed and not self.deleted

    # -- committing -------------------------------------------------------------
    def statements(
        self, encrypt: Callable[[str | bytes], str]
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """The SQL for this write, in an order the constraints accept.

        Made lazily, as the statements are run: the store runs them in the
        database thread, so that a write of thousands of objects (a network
        renumbered) costs the reactor nothing here. The write's copies are
        not touched after the write function returns, and the live State
        changes only after the commit, so reading them there is safe."""
        for obj_id in self.deleted:
            yield "DELETE FROM object WHERE id = ?", (obj_id,)
        for obj_id in self.changed:
            if obj_id not in self.created:
                yield "DELETE FROM interface WHERE object_id = ?", (obj_id,)
                if obj_id not in self.shallow:
                    yield "DELETE FROM secret WHERE owner_id = ?", (obj_id,)
        # Free names first, so that swaps and renames onto freed names pass.
        for obj_id, obj in self.changed.items():
            live = self.state.by_id.get(obj_id)
            if obj_id not in self.created and live is not None and live.name != obj.name:
                yield "UPDATE object SET name = ? WHERE id = ?", (f"\x00{obj_id}", obj_id)
        for obj_id, obj in self.changed.items():
            live = self.state.by_id.get(obj_id)
            if (
                obj_id not in self.created
                and live is not None
                and live.name == obj.name
                and live.data is obj.data
            ):
                continue  # only its interfaces changed: its row stays as it is
            kind = KINDS[obj.kind]
            data = {}
            for key, value in obj.data.items():
                f = kind.field(key)
                if f is not None and f.secret and value is not None:
                    value = {"$enc": encrypt(value)}
                data[key] = value
            yield (
                (
                    "INSERT INTO object (id, kind, name, data) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data"
                ),
                (obj_id, obj.kind, obj.name, json.dumps(data, separators=(",", ":"))),
            )
        for obj_id, obj in self.changed.items():
            for position, item in enumerate(obj.ifaces):
                yield (
                    (
                        "INSERT INTO interface (object_id, name, position, network_id, "
                        "ipaddress, macaddress, options) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (obj_id, item.name, position, item.network, item.ip, item.mac, item.options),
                )
            if obj_id in self.shallow:
                continue  # its secrets are untouched
            for position, secret in enumerate(obj.secrets):
                yield (
                    (
                        "INSERT INTO secret (owner_id, name, position, path, content) "
                        "VALUES (?, ?, ?, ?, ?)"
                    ),
                    (obj_id, secret.name, position, secret.path, encrypt(secret.content)),
                )

    def apply(self) -> None:
        """Swap this write's objects into the live State (after commit)."""
        state = self.state
        for obj_id, obj in self.deleted.items():
            live = state.by_id.pop(obj_id, None)
            if live is not None:
                state.by_kind[live.kind].pop(live.name, None)
        for obj_id, obj in self.changed.items():
            live = state.by_id.get(obj_id)
            if live is not None and state.by_kind[live.kind].get(live.name) is live:
                del state.by_kind[live.kind][live.name]
        for obj_id, obj in self.changed.items():
            state.by_id[obj_id] = obj
            state.by_kind[obj.kind][obj.name] = obj
        self.ips.apply()
        self.macs.apply()
        state.next_id = max(state.next_id, self.next_id)
        state.generation += 1


Rows = tuple[list[Any], list[Any], list[Any]]


def load_rows(cursor: Any) -> Rows:
    """Read every object, interface and secret row (runs in the DB thread)."""
    objects = cursor.execute("SELECT id, kind, name, data FROM object ORDER BY id").fetchall()
    ifaces = cursor.execute(
        "SELECT object_id, name, network_id, ipaddress, macaddress, options FROM interface "
        "ORDER BY object_id, position"
    ).fetchall()
    secrets = cursor.execute(
        "SELECT owner_id, name, path, content FROM secret ORDER BY owner_id, position"
    ).fetchall()
    return objects, ifaces, secrets


def build_state(
    rows: Rows, decrypt: Callable[[str], str], decrypt_bytes: Callable[[str], bytes]
) -> State:
    """Turn the rows from ``load_rows`` into a State, decrypting secret
    fields with ``decrypt`` and secret contents (bytes) with ``decrypt_bytes``."""
    objects, ifaces, secrets = rows
    state = State()
    loaded: dict[int, Obj] = {}
    for obj_id, kind, name, data_text in objects:
        if kind not in KINDS:
            continue
        data = json.loads(data_text)
        for key, value in list(data.items()):
            if isinstance(value, dict) and set(value) == {"$enc"}:
                data[key] = decrypt(value["$enc"])
        loaded[obj_id] = Obj(obj_id, kind, name, data)
    for obj_id, name, network_id, ip, mac, options in ifaces:
        if obj_id in loaded:
            loaded[obj_id].ifaces.append(Iface(name, network_id, ip, mac, options))
    for owner_id, name, path, content in secrets:
        if owner_id in loaded:
            loaded[owner_id].secrets.append(Secret(name, decrypt_bytes(content), path))
    for obj in loaded.values():
        state.add(obj)
    return state
