# -*- test-case-name: tests.test_store,tests.test_write_queue,tests.test_heavy_writes -*-
"""The store: the one owner of luna2d's state.

Reads answer from memory. Writes go through one queue (``WriteQueue``):
each runs a pure function over a Tx, then one database transaction through
adbapi, and only after the commit swaps the result into memory and tells
listeners (boot indexes) that something changed. An acknowledged write is
on disk.

Errors, one discipline: a method that answers from memory returns its
answer or raises a ``LunaError``; a method that writes or reads the
database returns a Deferred (or is ``async def``) and never raises when
called: every failure, validation included, comes through the Deferred."""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.failure import Failure

from luna2d import collector
from luna2d.errors import InsufficientStorage, Invalid, NotFound, disk_full
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
from luna2d.store import boot as bootstore
from luna2d.store import crypto as cryptomod
from luna2d.store import db, dns, ipam, objects, racks, users, views
from luna2d.store.interfaces import interface_views
from luna2d.store.members import member_names
from luna2d.store.state import Obj, State, Tx, build_state, ip_key, load_rows

JOURNAL_FIELDS = (
    "function",
    "object",
    "param",
    "payload",
    "masteronly",
    "misc",
    "sendfor",
    "sendby",
    "created",
)

log = Logger()

# A write that changed at least this many objects moves what memory holds
# out of later garbage collections once it is applied (``collector.keep``).
KEEP_AFTER = 1000


def _may_touch_members(args: tuple[Any, ...]) -> bool:
    """Whether a write's first argument names a kind whose objects have
    members: changing one may touch all of them."""
    if not args or not isinstance(args[0], str):
        return False
    kind = KINDS.get(args[0])
    return kind is not None and kind.members is not None and kind.members.how != "none"


def _run_statements(cursor: Any, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    for sql, args in statements:
        cursor.execute(sql, args)


@dataclass
class Plan:
    """What one write does once its turn comes: ``interaction`` (run in the
    database's one transaction; None when there is nothing to store), then,
    on the reactor after the commit, ``committed(interaction's result)``,
    whose return value is the write's answer. With nothing to store the
    answer is ``result``."""

    result: Any = None
    interaction: Callable[[Any], Any] | None = None
    committed: Callable[[Any], Any] | None = None


@dataclass
class _Queued:
    plan: Callable[[], Plan]
    done: defer.Deferred[Any]
    heavy: bool = False


# Runs a write's planning step elsewhere (a thread) and answers its Plan.
Offload = Callable[[Callable[[], Plan]], "defer.Deferred[Plan]"]


class WriteQueue:
    """Runs writes one at a time, in the order they were asked for.

    A write is planned on the reactor when its turn comes (so it sees every
    write before it), committed through ``pool``, and answered after the
    commit. The queue is drained by a loop, never by recursion: a write
    that fails or has nothing to store is answered and the loop takes the
    next, so any number of them in a row cost no stack. Answers are given
    from the same loop, and a write asked for by an answer's callbacks is
    only queued, so callback chains cannot nest either. Only the commit is
    waited for; while it runs, new writes queue.

    A write whose Deferred is cancelled while queued is dropped; one
    cancelled while committing still commits and is applied to memory (the
    caller just is not told), so memory never falls behind the disk.

    The loop starts no new write once it has held the reactor for
    ``budget`` seconds of ``clock`` time: it lets the reactor run and goes
    on in a new turn (``callLater(0)``), so a burst of 10,000 writes is not
    one long stall.

    A write submitted as ``heavy`` (one that may touch thousands of objects,
    such as a network renumbered) is planned through ``offload``, in a
    thread, instead of on the reactor: the queue is busy meanwhile exactly
    as during a commit, so no other write starts and nothing changes the
    State the plan reads (the reactor only reads it), and its answer comes
    in its turn like any other.

    Group commit fits here later: plan every queued write in turn over one
    chain of Txs, run their interactions in one transaction, and answer
    each after that commit."""

    def __init__(
        self,
        pool: Callable[[], Any],
        clock: Any,
        budget: float = 0.01,
        offload: Offload | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._budget = budget
        self._offload = offload
        self._resume: Any = None  # the delayed call that goes on after a yield
        self._queue: deque[_Queued] = deque()
        self._answers: deque[tuple[defer.Deferred[Any], Any]] = deque()
        self._committing = False
        self._draining = False
        self._disk_full = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, committing or waiting to be answered."""
        return not (self._queue or self._committing or self._answers)

    def submit(self, plan: Callable[[], Plan], heavy: bool = False) -> defer.Deferred[Any]:
        """Queue a write; its Deferred fires with the answer after the commit.
        A ``heavy`` one is planned through the queue's ``offload``."""
        done: defer.Deferred[Any] = defer.Deferred()
        self._queue.append(_Queued(plan, done, heavy))
        self._drain()
        return done

    def _drain(self) -> None:
        if self._draining:
            return
        if self._resume is not None:
            if self._resume.active():
                self._resume.cancel()
            self._resume = None
        self._draining = True
        started = self._clock.seconds()
        try:
            while True:
                if self._answers:
                    done, outcome = self._answers.popleft()
                    if not done.called:  # not cancelled meanwhile
                        if isinstance(outcome, Failure):
                            done.errback(outcome)
                        else:
                            done.callback(outcome)
                    continue
                if self._committing or not self._queue:
                    return
                # Only between writes: one that was started is answered in
                # the same turn (a write on a synchronous pool completes
                # within the call that asked for it).
                if self._clock.seconds() - started >= self._budget:
                    self._resume = self._clock.callLater(0, self._resumed)
                    return
                item = self._queue.popleft()
                if not item.done.called:  # cancelled while it was queued
                    self._start(item)
        finally:
            self._draining = False

    def _resumed(self) -> None:
        self._resume = None
        self._drain()

    def _start(self, item: _Queued) -> None:
        if item.heavy and self._offload is not None:
            # Busy until it is planned, as while committing: nothing else starts.
            self._committing = True
            planned = defer.maybeDeferred(self._offload, item.plan)
            planned.addBoth(self._planned, item)
            return
        try:
            plan = item.plan()
        except Exception:  # noqa: BLE001 - the write fails alone, through its Deferred
            self._answers.append((item.done, Failure()))  # type: ignore[no-untyped-call]
            return
        self._commit(item, plan)

    def _planned(self, outcome: Plan | Failure, item: _Queued) -> None:
        """A heavy write's plan is back (on the reactor): commit it, or
        answer its failure."""
        self._committing = False
        if isinstance(outcome, Failure):
            self._answers.append((item.done, outcome))
        else:
            self._commit(item, outcome)
        self._drain()

    def _commit(self, item: _Queued, plan: Plan) -> None:
        if plan.interaction is None:
            self._answers.append((item.done, plan.result))
            return
        self._committing = True
        commit = defer.maybeDeferred(self._pool().runInteraction, plan.interaction)
        commit.addBoth(self._committed, item, plan)

    def _committed(self, outcome: Any, item: _Queued, plan: Plan) -> None:
        self._committing = False
        if isinstance(outcome, Failure):
            self._answers.append((item.done, self._storage(outcome)))
        else:
            self._disk_full = False
            try:
                answer = plan.committed(outcome) if plan.committed is not None else plan.result
            except Exception:  # noqa: BLE001 - committed, but this write's memory update failed
                log.failure("a committed write could not be applied in memory")
                answer = Failure()  # type: ignore[no-untyped-call]
            self._answers.append((item.done, answer))
        self._drain()

    def _storage(self, failure: Failure) -> Failure:
        """A full disk as the error a user can act on (507); other failures as they are."""
        if failure.value is None or not disk_full(failure.value):
            return failure
        if not self._disk_full:
            self._disk_full = True
            log.error(
                "the database's disk is full: writes fail until there is space ({error})",
                error=failure.getErrorMessage(),
            )
        return Failure(
            InsufficientStorage(  # type: ignore[no-untyped-call]
                "disk full: the database could not store this write and nothing was changed; "
                "free space on the database's filesystem and retry"
            )
        )


def frozen(state: State) -> State:
    """A snapshot of ``state`` for reading over several reactor turns.
    A committed write never edits an object in place: it swaps new Obj
    values into the State's dicts (``Tx.apply``). Copies of those dicts
    (not of the objects) therefore keep the image as it was; copying them
    for 10,000 nodes takes a few milliseconds."""
    image = State()
    image.by_kind = {kind: dict(objs) for kind, objs in state.by_kind.items()}
    image.by_id = dict(state.by_id)
    image.ips = dict(state.ips)
    image.macs = dict(state.macs)
    image.next_id = state.next_id
    image.generation = state.generation
    return image


class Store:
    """Every object kind, their addresses, secrets, users and the journal."""

    def __init__(self, pool: Any, crypto: cryptomod.Crypto, clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.pool = pool
        self.crypto = crypto
        self.state = State()
        self.queue = WriteQueue(lambda: self.pool, clock, offload=self._offload)
        self.listeners: list[Callable[[Tx], None]] = []
        self.writes = 0
        self._nextfree: dict[
            int, tuple[Any, ...]
        ] = {}  # network id -> (state, generation, network, answer)

    async def open(self) -> Store:
        """Migrate the schema and load every object into memory."""
        await db.migrate(self.pool)
        rows = await self.pool.runInteraction(load_rows)
        self.state = build_state(rows, self.crypto.decrypt, self.crypto.decrypt_bytes)
        return self

    @property
    def empty(self) -> bool:
        return self.state.singleton(CLUSTER.name) is None

    # -- writing --------------------------------------------------------------------
    def write(
        self, fn: Callable[..., Any], *args: Any, heavy: bool | None = None
    ) -> defer.Deferred[Any]:
        """Run ``fn(tx, *args)`` as one serialized, durable write: its answer
        is ``fn``'s result, given after the commit; whatever ``fn`` raises
        comes through the Deferred and changes nothing.

        A ``heavy`` write runs ``fn`` in a thread (``WriteQueue``); by
        default, a write whose first argument names a kind with members
        (a network, a group, a rack, ...) is heavy, since changing such an
        object may touch every member (a network renumbered moves all its
        addresses)."""
        if heavy is None:
            heavy = _may_touch_members(args)
        return self.queue.submit(lambda: self._plan(fn, args), heavy)

    def _offload(self, plan: Callable[[], Plan]) -> defer.Deferred[Plan]:
        """Plan a heavy write in a thread, the collector paused meanwhile.

        A pool that runs its transactions inline (``SyncPool``: start-up,
        tests) plans inline too, so that such a store answers within the
        call, as before."""
        if isinstance(self.pool, db.SyncPool):
            return defer.maybeDeferred(plan)
        collector.pause()
        planned: defer.Deferred[Plan] = threads.deferToThread(plan)

        def resumed(outcome: Any) -> Any:
            collector.resume()
            return outcome

        return planned.addBoth(resumed)

    def _plan(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Plan:
        tx = Tx(self.state)
        result = fn(tx, *args)
        if tx.empty:
            return Plan(result)
        statements = tx.statements(self.crypto.encrypt)

        def committed(_: Any) -> Any:
            tx.apply()
            self.writes += 1
            self._tell_listeners(tx)
            if len(tx.changed) + len(tx.deleted) >= KEEP_AFTER:
                collector.keep()
            return result

        return Plan(result, lambda cursor: _run_statements(cursor, statements), committed)

    def _tell_listeners(self, tx: Tx) -> None:
        """Each listener in turn; one that fails is logged and the rest still
        hear (the write is committed either way)."""
        for listener in list(self.listeners):
            try:
                listener(tx)
            except Exception:  # noqa: BLE001 - a listener's bug must not undo an acknowledged write
                log.failure(
                    "store listener {listener!r} failed after a committed write", listener=listener
                )

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

    def views_of(self, kind: str, reveal: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        """What ``objects_of`` answers, one (name, view) at a time, for a
        caller that renders a long list in slices between which writes may
        commit. The objects and everything their views read (referenced
        names, parents, rack devices) are those of the moment of the call:
        the generator reads a snapshot of the image (``frozen``), not the
        live one, so the list is one consistent state however long it
        takes, as ``objects_of`` is."""
        kind_named(kind)
        image = frozen(self.state)
        objs = sorted(image.by_kind[kind].values(), key=lambda o: o.id)
        return ((o.name, views.view(image, o, reveal)) for o in objs)

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
        if (
            cached is not None
            and cached[0] is state
            and cached[1] == state.generation
            and cached[2] is net
        ):
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
    def dns_records(self, network: str) -> list[dict[str, str]]:
        """The extra DNS records of ``network`` (``store/dns.py``)."""
        return dns.records_of(self._obj(NETWORK.name, network).data)

    def put_dns_records(self, network: str, raw: Any) -> defer.Deferred[Any]:
        """Add or change extra DNS records of ``network``."""
        try:
            records = dns.parse_records(raw, network)
        except Invalid:
            return defer.fail()
        return self.write(dns.put_records, network, records)

    def delete_dns_record(self, network: str, host: str) -> defer.Deferred[Any]:
        return self.write(dns.delete_record, network, host)

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
    def secrets(
        self,
        owner_kind: str | None = None,
        owner: str | None = None,
        name: str | None = None,
        reveal: bool = True,
    ) -> dict[str, Any]:
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
    def user(self, name: str) -> Any:
        return self.state.get("user", name)

    def credentials(self, name: str) -> users.Credentials | None:
        """What a login checks for store user ``name``, and what its tokens
        are bound to; None if there is no such user."""
        user = self.state.get("user", name) if isinstance(name, str) else None
        return users.credentials(user) if user is not None else None

    def verify_password(self, password: str, stored: str | None) -> defer.Deferred[bool]:
        """Whether ``password`` matches the hash ``stored``: one scrypt
        derivation, in a thread (fires with a bool). With no hash (an
        unknown user) the same work is done against a hash nothing matches."""
        return threads.deferToThread(
            cryptomod.check_password, password, stored or cryptomod.UNUSABLE_HASH
        )

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

    # -- journal ----------------------------------------------------------------------------------
    def journal(self, controller: str) -> defer.Deferred[list[dict[str, Any]]]:
        if not NAME_RE.fullmatch(controller) or self.state.get("controller", controller) is None:
            return defer.fail(NotFound(f"controller {controller!r} does not exist"))

        def query(cursor: Any) -> list[dict[str, Any]]:
            rows = cursor.execute(
                "SELECT function, object, param, payload, masteronly, misc, sendfor, sendby, "
                "created FROM journal WHERE sendfor = ? ORDER BY id",
                (controller,),
            ).fetchall()
            return [dict(zip(JOURNAL_FIELDS, row, strict=True)) for row in rows]

        found: defer.Deferred[list[dict[str, Any]]] = self.pool.runInteraction(query)
        return found

    def add_journal(self, entries: Any) -> defer.Deferred[int]:
        if not isinstance(entries, list) or not entries:
            return defer.fail(Invalid("journal: expected a non-empty list of entries"))
        now = int(self.clock.seconds())
        try:
            rows = [_journal_row(entry, index, now) for index, entry in enumerate(entries)]
        except Invalid:
            return defer.fail()

        def insert(cursor: Any) -> int:
            cursor.executemany(
                "INSERT INTO journal (function, object, param, payload, masteronly, misc, "
                "sendfor, sendby, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return len(rows)

        return self.queue.submit(lambda: Plan(None, insert, lambda count: count))

    # -- network boot (luna2d.store.boot) ------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock.seconds())

    def node_at(self, ip: str | None) -> tuple[str, bool, bool] | None:
        """(name, bootmenu, netboot) of the node holding address ``ip``."""
        return bootstore.node_at(self.state, ip)

    def node_with_mac(self, mac: str) -> tuple[str, bool, bool] | None:
        """(name, bootmenu, netboot) of the node carrying ``mac``."""
        return bootstore.node_with_mac(self.state, mac)

    def node_exists(self, name: str) -> None:
        """Nothing for a node that exists; NotFound naming it otherwise."""
        bootstore.node_named(self.state, name)

    def group_exists(self, name: str) -> None:
        """Nothing for a group that exists; NotFound naming it otherwise."""
        if not NAME_RE.fullmatch(name) or self.state.get("group", name) is None:
            raise NotFound(f"group {name!r} does not exist")

    def cluster_name(self) -> str:
        return bootstore.cluster_name(self.state)

    def controller_address(self) -> tuple[str, int] | None:
        """The controller object's address and port, when it has one."""
        return bootstore.controller_address(self.state)

    def boot_script(
        self, node: str, mac: str | None, base: str, host: str
    ) -> tuple[str, dict[str, Any]]:
        """Template and context of node ``node``'s iPXE script."""
        return bootstore.boot_script(self.state, node, mac, base, host)

    def discovery_menu(self) -> tuple[Sequence[dict[str, str]], Sequence[dict[str, str]]]:
        """Nodes and groups the discovery menu lists (none unless allowed)."""
        return bootstore.discovery_menu(self.state)

    def install_source_ok(self, node: str, ip: str | None) -> bool:
        """Whether ``ip`` is node ``node``'s provisioning address."""
        return bootstore.install_source_ok(self.state, node, ip)

    def install_context(self, node: str, base: str, token: str, heredoc_end: Any) -> dict[str, Any]:
        """What the install script of ``node`` renders."""
        return bootstore.install_context(self.state, node, base, token, heredoc_end)

    def take_install(self, node: str) -> defer.Deferred[Any]:
        """Spend ``node``'s grant for one install script with secrets."""
        return self.write(bootstore.take_install, node, self._now())

    def assign_mac(self, node: str, mac: str) -> defer.Deferred[Any]:
        """The manual boot: ``mac`` for node ``node``, as the policy allows."""
        return self.write(bootstore.assign_mac, node, mac, self._now())

    def assign_group_mac(self, group: str, mac: str) -> defer.Deferred[Any]:
        """The manual boot of a group: which node boots with ``mac``."""
        return self.write(bootstore.assign_group_mac, group, mac, self._now())

    def arming(self, node: str) -> dict[str, Any]:
        """Node ``node``'s arming and install grant, as admins see them."""
        return bootstore.arming(self.state, node, self._now())

    def arm(self, node: str, raw: Any) -> defer.Deferred[Any]:
        """Arm ``node`` (body: mode once or continuous, expiry in seconds)."""
        try:
            self.node_exists(node)
            mode, lifetime = bootstore.parse_arming(raw, node)
        except (Invalid, NotFound):
            return defer.fail()
        return self.write(bootstore.arm, node, mode, lifetime, self._now())

    def disarm(self, node: str) -> defer.Deferred[Any]:
        return self.write(bootstore.disarm, node)

    def grant_install(self, nodes: Sequence[str], reason: str) -> defer.Deferred[Any]:
        """Nodes whose boot luna2d started: one install with secrets each."""
        return self.write(bootstore.grant_install, nodes, reason, self._now())

    def node_status(self, node: str) -> str | None:
        return bootstore.node_status(self.state, node)

    def report_status(self, node: str, value: str) -> defer.Deferred[Any]:
        return self.write(bootstore.report_status, node, value)

    def node_report(self, node: str, raw: Any, source: str | None) -> defer.Deferred[Any]:
        """What a node token reports about its own node."""
        return self.write(bootstore.node_report, node, raw, source)

    def boot_file_names(self) -> set[str]:
        """Kernel and initrd names of every osimage and tag (open files)."""
        return bootstore.boot_file_names(self.state)

    def missing_nodes(self, names: Sequence[str]) -> Sequence[str]:
        return bootstore.missing_nodes(self.state, names)

    def bmc_access(self, node: str) -> tuple[str, str, str] | str:
        """(BMC address, user, password) of ``node``, or why there is none."""
        return bootstore.bmc_access(self.state, node)

    def ping(self) -> defer.Deferred[Any]:
        """A query the database answers when it is healthy."""

        def query(cursor: Any) -> Any:
            return cursor.execute("SELECT COUNT(*) FROM object").fetchone()

        return defer.maybeDeferred(self.pool.runInteraction, query)


def _journal_row(entry: Any, index: int, now: int) -> tuple[str | None, ...]:
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
            elif (
                isinstance(value, bool)
                or not isinstance(value, (int, float, str))
                or not str(value).replace(".", "", 1).isdigit()
            ):
                raise Invalid(f"{label}.created: expected a UNIX timestamp")
            value = str(value)
        elif value is not None:
            if not isinstance(value, str):
                raise Invalid(f"{label}.{key}: expected a string or null")
            if len(value) > 16 * 1024 * 1024:
                raise Invalid(f"{label}.{key}: too long")
        values.append(value)
    return tuple(values)
