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
from luna2d.model.fields import NAME_RE, Field, coerce, parse_bool
from luna2d.model.kinds import (
    CLUSTER,
    KINDS,
    NETWORK,
    OSIMAGE,
    RELATIONS,
    SECRET_OWNERS,
    kind_named,
)
from luna2d.store import crypto as cryptomod
from luna2d.store import db, ipam, objects, racks, views
from luna2d.store.interfaces import interface_views
from luna2d.store.members import member_names
from luna2d.store.state import Obj, State, Tx, build_state, ip_key, load_rows

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
        return self.state.singleton(CLUSTER.name) is None

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
    def _obj(self, kind: str, name: str) -> Obj:
        kind_named(kind)
        obj = self.state.get(kind, name)
        if obj is None:
            raise NotFound(f"{kind} {name!r} does not exist")
        return obj

    def objects_of(self, kind: str, reveal: bool = True) -> dict[str, dict[str, Any]]:
        """Every object of ``kind`` as the API shows it, by name."""
        kind_named(kind)
        # In id order, as a restart loads them (an update re-inserts into by_kind).
        objs = sorted(self.state.by_kind[kind].values(), key=lambda o: o.id)
        return {o.name: views.view(self.state, o, reveal) for o in objs}

    def show(self, kind: str, name: str, reveal: bool = True) -> dict[str, Any]:
        return views.view(self.state, self._obj(kind, name), reveal)

    def members(self, kind: str, name: str) -> list[str]:
        """The members of an object, as its kind's entry in the kind table
        declares them (``Kind.members``, or ``RELATIONS`` for names that are
        not kinds, such as ``osimagetag``). A kind without members is an
        error (404), not an empty list."""
        if kind in RELATIONS:
            owner, relation = RELATIONS[kind]
        else:
            owner, declared = kind, kind_named(kind).members
            if declared is None:
                raise NotFound(f"{kind} objects have no members")
            relation = declared
        return member_names(self.state, self._obj(owner, name), relation)

    def interfaces(self, kind: str, name: str, iface: str | None = None) -> list[dict[str, Any]]:
        obj = self._obj(kind, name)
        items = interface_views(self.state, obj)
        if iface is None:
            return items
        chosen = [i for i in items if i["interface"] == iface]
        if not chosen:
            raise NotFound(f"{kind} {name!r} has no interface {iface!r}")
        return chosen

    # -- networks ------------------------------------------------------------------
    def nextfreeip(self, network: str) -> str | None:
        """The network's lowest free host address (no reservation is made)."""
        # The scan walks every taken address; its answer holds until the next write.
        net, state = self._obj(NETWORK.name, network), self.state
        cached = self._nextfree.get(net.id)
        if (cached is not None and cached[0] is state and cached[1] == state.generation
                and cached[2] is net):
            answer: str | None = cached[3]
            return answer
        ip = ipam.next_free(state, net)
        self._nextfree[net.id] = (state, state.generation, net, ip)
        return ip

    def ipinfo(self, network: str, ip: str) -> dict[str, str]:
        """Whether ``ip`` of ``network`` is free, or who takes it."""
        net = self._obj(NETWORK.name, network)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise Invalid(f"{ip!r} is not an IP address") from None
        net_range = ipam.net_of(net)
        if addr not in net_range:
            raise NotFound(f"{addr} is not inside network {network} ({net.data['network']})")
        if addr in (net_range.network_address, net_range.broadcast_address):
            which = "network" if addr == net_range.network_address else "broadcast"
            return {"status": "taken", "device": which}
        holder = self.state.ips.get(ip_key(str(addr)))
        if holder is not None:
            return {"status": "taken", "device": self.state.by_id[holder[0]].name}
        for key in ("gateway", "nameserver_ip"):
            if net.data.get(key) == str(addr):
                return {"status": "taken", "device": key}
        return {"status": "free"}

    def taken(self, network: str) -> list[dict[str, str]]:
        """Every address of ``network`` a device holds, with the device."""
        return ipam.taken(self.state, self._obj(NETWORK.name, network))

    # -- osimage tags ------------------------------------------------------------------
    def tags(self, osimage: str | None = None) -> dict[str, dict[str, Any]]:
        """The tags of one image, or of all (``image:tag`` where names clash)."""
        if osimage:
            images = [self._obj(OSIMAGE.name, osimage)]
        else:
            images = sorted(self.state.by_kind[OSIMAGE.name].values(), key=lambda o: o.id)
        out: dict[str, dict[str, Any]] = {}
        for image in images:
            for tag, files in sorted((image.data.get("tags") or {}).items()):
                out[f"{image.name}:{tag}" if osimage is None and tag in out else tag] = {
                    "name": tag,
                    "osimage": image.name,
                    **files,
                }
        return out

    # -- cluster --------------------------------------------------------------------------
    def cluster(self) -> dict[str, Any]:
        return views.cluster_view(self.state)

    # -- secrets ----------------------------------------------------------------------------
    def secrets(self, owner_kind: str | None = None, owner: str | None = None,
                name: str | None = None, reveal: bool = True) -> dict[str, Any]:
        """Secrets by owner kind and owner: all of them, one owner's (with
        those of the object it takes secrets from, a node's group), or one."""
        out: dict[str, dict[str, Any]] = {kind: {} for kind in SECRET_OWNERS}
        if owner_kind is None:
            for kind in SECRET_OWNERS:
                for obj in self.state.by_kind[kind].values():
                    if obj.secrets:
                        out[kind][obj.name] = views.secrets_of(obj, reveal)
            return out
        obj = self._obj(owner_kind, owner or "")
        if name is not None:
            items = views.secrets_of(obj, reveal, only=name)
            if not items:
                raise NotFound(f"{owner_kind} {obj.name} has no secret {name!r}")
            return {owner_kind: {obj.name: items}}
        answer: dict[str, Any] = {owner_kind: {obj.name: views.secrets_of(obj, reveal)}}
        source = KINDS[owner_kind].secrets_from
        if source is not None:
            ref = KINDS[owner_kind].by_name[source]
            answer[ref.ref or source] = {}
            up = self.state.obj(obj.data.get(source))
            if up is not None:
                answer[up.kind][up.name] = views.secrets_of(up, reveal)
        return answer

    # -- racks -----------------------------------------------------------------------------------
    def inventory(self, subset: str | None = None) -> list[dict[str, Any]]:
        if subset not in (None, "configured", "unconfigured", "all"):
            raise NotFound(f"there is no inventory subset {subset!r} (configured, unconfigured)")
        out = []
        for kind in KINDS.values():
            if kind.rack_device:
                for obj in sorted(self.state.by_kind[kind.name].values(), key=lambda o: o.id):
                    entry = racks.device_entry(self.state, obj)
                    placed = entry["rack"] is not None
                    if subset == "configured" and not placed or subset == "unconfigured" and placed:
                        continue
                    out.append(entry)
        return out

    # -- users ------------------------------------------------------------------------------------
    def user(self, name: str):
        return self.state.get("user", name)

    async def check_user(self, name: str, password: str) -> str | None:
        """The user's role when the password matches, else None (slow, threaded)."""
        user = self.state.get("user", name) if isinstance(name, str) else None
        stored = user.data.get("pwhash") if user is not None else None
        ok = await threads.deferToThread(
            cryptomod.check_password, password, stored or "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44
        )
        if ok and user is not None and stored:
            return user.data.get("role") or "readonly"
        return None

    async def put_user(self, name: str, raw: Any, reserved: str) -> bool:
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
            pwhash = await threads.deferToThread(cryptomod.hash_password, password)

        def apply(tx: Tx) -> bool:
            existing = tx.get("user", name)
            if existing is None and pwhash is None:
                raise Invalid(f"password: required to create user {name!r}")
            created = objects.upsert(tx, "user", name, body)
            if pwhash is not None:
                target = tx.get("user", body.get("newusername") or name)
                tx.edit(target).data["pwhash"] = pwhash
            return created

        return await self.write(apply)

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
            flag = False if value is None else parse_bool(value)
            if flag is None:
                raise Invalid(f"{label}.masteronly: expected 0 or 1")
            value = "1" if flag else "0"
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
