"""The store: the one owner of luna2d's state.

Reads answer from memory. Writes are serialized by one lock: each runs a
pure function over a Tx, then one database transaction through adbapi, and
only after the commit swaps the result into memory and tells listeners
(boot indexes) that something changed. An acknowledged write is on disk."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import NAME_RE, Field, coerce
from luna2d.model.kinds import KINDS, kind_named
from luna2d.store import crypto as cryptomod
from luna2d.store import db, ipam, objects, users, views
from luna2d.store.state import State, Tx, build_state, ip_key, load_rows

JOURNAL_FIELDS = ("function", "object", "param", "payload", "masteronly", "misc", "sendfor", "sendby", "created")


def _run_statements(cursor: Any, statements: list[tuple[str, tuple]]) -> None:
    for sql, args in statements:
        cursor.execute(sql, args)


class Store:
    """Every object kind, their addresses, secrets, users and the journal."""

    def __init__(self, pool: Any, crypto: cryptomod.Crypto, clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[no-redef]
        self.clock = clock
        self.pool = pool
        self.crypto = crypto
        self.state = State()
        self._lock = defer.DeferredLock()
        self.listeners: list[Callable[[Tx], None]] = []
        self.writes = 0
        self._nextfree: dict[int, tuple] = {}  # network id -> (state, generation, network, answer)

    async def open(self) -> Store:
        """Migrate the schema and load every object into memory."""
        await db.migrate(self.pool)
        rows = await self.pool.runInteraction(load_rows)
        self.state = build_state(rows, self.crypto.decrypt)
        return self

    @property
    def empty(self) -> bool:
        return self.state.singleton("cluster") is None

    # -- writing --------------------------------------------------------------------
    def write(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn(tx, *args)`` as one serialized, durable write."""
        return self._lock.run(self._write, fn, *args)

    def _write(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        tx = Tx(self.state)
        try:
            result = fn(tx, *args)
        except Exception:  # noqa: BLE001 - handed to the caller as a failed Deferred
            return defer.fail()
        if tx.empty:
            return defer.succeed(result)
        statements = tx.statements(self.crypto.encrypt)
        d = self.pool.runInteraction(_run_statements, statements)

        def committed(_: Any) -> Any:
            tx.apply()
            self.writes += 1
            for listener in self.listeners:
                listener(tx)
            return result

        d.addCallback(committed)
        return d

    # -- generic reads ----------------------------------------------------------------
    def _obj(self, kind: str, name: str):
        kind_named(kind)
        obj = self.state.get(kind, name)
        if obj is None:
            raise NotFound(f"{kind} {name!r} does not exist")
        return obj

    def list(self, kind: str, reveal: bool = True) -> dict[str, dict]:
        kind_named(kind)
        # In id order, as a restart loads them (an update re-inserts into by_kind).
        objs = sorted(self.state.by_kind[kind].values(), key=lambda o: o.id)
        return {o.name: views.view(self.state, o, reveal) for o in objs}

    def show(self, kind: str, name: str, reveal: bool = True) -> dict:
        return views.view(self.state, self._obj(kind, name), reveal)

    def members(self, kind: str, name: str) -> list[str]:
        """Nodes (or devices) that belong to or use the object; for
        ``osimagetag``, the nodes of osimage ``name`` that boot a tag."""
        obj = self._obj("osimage" if kind == "osimagetag" else kind, name)
        state = self.state
        node_kind = KINDS["node"]
        if kind in ("osimage", "bmcsetup"):
            f = node_kind.by_name[kind]
            return sorted(
                n.name for n in state.by_kind["node"].values() if views.resolve(state, node_kind, n, f)[0] == obj.id
            )
        if kind in ("group", "switch"):
            return sorted(n.name for n in state.by_kind["node"].values() if n.data.get(kind) == obj.id)
        if kind == "osimagetag":
            image = self._obj("osimage", name)
            image_field, tag_field = node_kind.by_name["osimage"], node_kind.by_name["osimagetag"]
            return sorted(
                n.name
                for n in state.by_kind["node"].values()
                if views.resolve(state, node_kind, n, image_field)[0] == image.id
                and views.resolve(state, node_kind, n, tag_field)[0] is not None
            )
        if kind == "network":
            return sorted({o.name for o, _ in ipam.holders_on(state, obj.id) if o.kind != "group"})
        if kind == "rack":
            return [d["name"] for d in views.rack_devices(state, obj)]
        return []

    def interfaces(self, kind: str, name: str, iface: str | None = None) -> list[dict]:
        obj = self._obj(kind, name)
        items = views.interfaces(self.state, obj)
        if iface is None:
            return items
        chosen = [i for i in items if i["interface"] == iface]
        if not chosen:
            raise NotFound(f"{kind} {name!r} has no interface {iface!r}")
        return chosen

    # -- networks ------------------------------------------------------------------
    def nextfreeip(self, network: str) -> str | None:
        # The scan walks every taken address; its answer holds until the next write.
        net, state = self._obj("network", network), self.state
        cached = self._nextfree.get(net.id)
        if cached is not None and cached[0] is state and cached[1] == state.generation and cached[2] is net:
            return cached[3]
        ip = ipam.next_free(state, net)
        self._nextfree[net.id] = (state, state.generation, net, ip)
        return ip

    def ipinfo(self, network: str, ip: str) -> dict:
        net = self._obj("network", network)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise Invalid(f"{ip!r} is not an IP address") from None
        if addr not in ipam.net_of(net):
            raise NotFound(f"{addr} is not inside network {network} ({net.data['network']})")
        net_range = ipam.net_of(net)
        if addr in (net_range.network_address, net_range.broadcast_address):
            return {"status": "taken", "device": "network" if addr == net_range.network_address else "broadcast"}
        holder = self.state.ips.get(ip_key(str(addr)))
        if holder is not None:
            return {"status": "taken", "device": self.state.by_id[holder[0]].name}
        for key in ("gateway", "nameserver_ip"):
            if net.data.get(key) == str(addr):
                return {"status": "taken", "device": key}
        return {"status": "free"}

    def taken(self, network: str) -> list[dict]:
        return ipam.taken(self.state, self._obj("network", network))

    # -- osimage tags ------------------------------------------------------------------
    def tags(self, osimage: str | None = None) -> dict[str, dict]:
        images = [self._obj("osimage", osimage)] if osimage else sorted(self.state.by_kind["osimage"].values(),
                                                                         key=lambda o: o.id)
        out = {}
        for image in images:
            for tag, files in sorted((image.data.get("tags") or {}).items()):
                out[f"{image.name}:{tag}" if osimage is None and tag in out else tag] = {
                    "name": tag,
                    "osimage": image.name,
                    **files,
                }
        return out

    # -- cluster --------------------------------------------------------------------------
    def cluster(self) -> dict:
        return views.cluster_view(self.state)

    # -- secrets ----------------------------------------------------------------------------
    def secrets(self, owner_kind: str | None = None, owner: str | None = None,
                name: str | None = None, reveal: bool = True) -> dict:
        out: dict[str, dict] = {"node": {}, "group": {}}
        if owner_kind is None:
            for kind in ("node", "group"):
                for obj in self.state.by_kind[kind].values():
                    if obj.secrets:
                        out[kind][obj.name] = views.secrets_of(obj, reveal)
            return out
        obj = self._obj(owner_kind, owner or "")
        if name is not None:
            items = views.secrets_of(obj, reveal, only=name)
            if not items:
                raise NotFound(f"{owner_kind} {obj.name} has no secret {name!r}")
            out[owner_kind][obj.name] = items
            return {owner_kind: out[owner_kind]}
        out[owner_kind][obj.name] = views.secrets_of(obj, reveal)
        if owner_kind == "node":
            group = self.state.obj(obj.data.get("group"))
            if group is not None:
                out["group"][group.name] = views.secrets_of(group, reveal)
            return out
        return {"group": out["group"]}

    # -- racks -----------------------------------------------------------------------------------
    def inventory(self, subset: str | None = None) -> list[dict]:
        if subset not in (None, "configured", "unconfigured", "all"):
            raise NotFound(f"there is no inventory subset {subset!r} (configured, unconfigured)")
        out = []
        for kind in KINDS.values():
            if kind.rack_device:
                for obj in sorted(self.state.by_kind[kind.name].values(), key=lambda o: o.id):
                    entry = views.device_entry(self.state, obj)
                    placed = entry["rack"] is not None
                    if subset == "configured" and not placed or subset == "unconfigured" and placed:
                        continue
                    out.append(entry)
        return out

    # -- users ------------------------------------------------------------------------------------
    def user(self, name: str) -> Any:
        return self.state.get("user", name)

    def credentials(self, name: str) -> users.Credentials | None:
        """What a login checks for store user ``name``, and what its tokens
        are bound to; None if there is no such user."""
        user = self.state.get("user", name) if isinstance(name, str) else None
        return users.credentials(user) if user is not None else None

    def verify_password(self, password: str, stored: str) -> defer.Deferred[bool]:
        """Whether ``password`` matches the hash ``stored``: one scrypt
        derivation, in a thread (fires with a bool)."""
        return threads.deferToThread(cryptomod.check_password, password, stored)

    def hash_password(self, password: str) -> defer.Deferred[str]:
        """A new salted hash of ``password``, made in a thread."""
        return threads.deferToThread(cryptomod.hash_password, password)

    async def check_user(self, name: str, password: str) -> str | None:
        """The user's role when the password matches, else None (slow,
        threaded; an unknown name costs the same as a known one)."""
        found = self.credentials(name)
        stored = found.pwhash if found is not None else None
        ok = await self.verify_password(password, stored or cryptomod.UNUSABLE_HASH)
        if ok and found is not None and stored:
            return found.role
        return None

    async def put_user(self, name: str, raw: Any, reserved: str) -> bool:
        """Create or update user ``name``; a change of password, role or
        name moves its generation on, which revokes its tokens."""
        if not isinstance(raw, dict):
            raise Invalid(f"the user {name!r} must be a JSON object of fields")
        objects.check_name("user", name)
        if name == reserved or raw.get("newusername") == reserved:
            raise Invalid(f"name: {reserved!r} is the ini file's admin and cannot be managed here")
        body = dict(raw)
        password = body.pop("password", None)
        pwhash = None
        if password is not None:
            password = coerce(Field("password", "str"), password, "password")
            if len(password) < 8:
                raise Invalid("password: must be at least 8 characters")
            pwhash = await self.hash_password(password)

        def apply(tx: Tx) -> bool:
            existing = tx.get("user", name)
            if existing is None and pwhash is None:
                raise Invalid(f"password: required to create user {name!r}")
            before = users.credentials(existing) if existing is not None else None
            created = objects.upsert(tx, "user", name, body)
            target = tx.get("user", body.get("newusername") or name)
            assert target is not None  # upsert made or kept it under that name
            if pwhash is not None:
                tx.edit(target).data["pwhash"] = pwhash
            users.restamp(tx, target, before, pwhash is not None)
            return created

        created: bool = await self.write(apply)
        return created

    # -- journal ------------------------------------------------------------------------------------
    def journal(self, controller: str) -> defer.Deferred:
        if not NAME_RE.fullmatch(controller) or self.state.get("controller", controller) is None:
            return defer.fail(NotFound(f"controller {controller!r} does not exist"))

        def query(cursor: Any) -> list[dict]:
            rows = cursor.execute(
                "SELECT function, object, param, payload, masteronly, misc, sendfor, sendby, created "
                "FROM journal WHERE sendfor = ? ORDER BY id",
                (controller,),
            ).fetchall()
            return [dict(zip(JOURNAL_FIELDS, row)) for row in rows]

        return self.pool.runInteraction(query)

    def add_journal(self, entries: Any) -> defer.Deferred:
        if not isinstance(entries, list) or not entries:
            return defer.fail(Invalid("journal: expected a non-empty list of entries"))
        now = int(self.clock.seconds())
        try:
            rows = [_journal_row(entry, index, now) for index, entry in enumerate(entries)]
        except Invalid:
            return defer.fail()

        def insert(cursor: Any) -> int:
            cursor.executemany(
                "INSERT INTO journal (function, object, param, payload, masteronly, misc, sendfor, sendby, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return len(rows)

        return self._lock.run(self.pool.runInteraction, insert)


def _journal_row(entry: Any, index: int, now: int) -> tuple:
    label = f"journal[{index}]"
    if not isinstance(entry, dict):
        raise Invalid(f"{label}: expected a journal entry object")
    unknown = set(entry) - set(JOURNAL_FIELDS)
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown journal field")
    values = []
    for key in JOURNAL_FIELDS:
        value = entry.get(key)
        if key in ("function", "sendfor") and (not isinstance(value, str) or not value):
            raise Invalid(f"{label}.{key}: required")
        if key == "masteronly":
            if value in (None, False, 0, "0", "false"):
                value = "0"
            elif value in (True, 1, "1", "true"):
                value = "1"
            else:
                raise Invalid(f"{label}.masteronly: expected 0 or 1")
        elif key == "created":
            if value is None:
                value = str(now)
            elif isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).replace(".", "", 1).isdigit():
                raise Invalid(f"{label}.created: expected a UNIX timestamp")
            value = str(value)
        elif value is not None:
            if not isinstance(value, str):
                raise Invalid(f"{label}.{key}: expected a string or null")
            if len(value) > 16 * 1024 * 1024:
                raise Invalid(f"{label}.{key}: too long")
        values.append(value)
    return tuple(values)
