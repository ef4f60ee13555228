"""The store contract on a real SQLite file through the daemon's real adbapi
pool (luna2d.store.db.open_pool): migrations, the first-start bootstrap,
durability of every acknowledged write (a second Store opened on the same
file sees exactly what the first one shows), secrets encrypted at rest, and
failed writes leaving memory and disk untouched."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.config import Config
from luna2d.errors import Invalid, NotFound
from luna2d.model.kinds import KINDS
from luna2d.store import bootstrap, db, objects
from luna2d.store.crypto import Crypto
from luna2d.store.state import Iface
from luna2d.store.store import Store
from tests.support import ADMIN, make_config

SCHEMA_TABLES = {"object", "interface", "secret", "journal", "schema_version", "dhcp_lease"}
SCHEMA_INDEXES = {
    "interface_ip",
    "interface_mac",
    "interface_network",
    "journal_sendfor",
    "dhcp_lease_mac",
}
LATEST = max(v for v, _ in db.schema_files())


def async_test(method: Callable[..., Coroutine]) -> Callable[..., defer.Deferred]:
    """Run an ``async def`` test as a Deferred trial waits for."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kw: Any) -> defer.Deferred:
        return defer.ensureDeferred(method(self, *args, **kw))

    return wrapper


def snapshot(store: Store) -> dict:
    """Everything the API can show: every kind, secrets, the cluster, tags,
    the inventory and the next free address of each network."""
    out: dict[str, Any] = {kind: store.objects_of(kind) for kind in KINDS}
    out["_secrets"] = store.secrets()
    out["_cluster"] = store.cluster()
    out["_tags"] = store.tags()
    out["_inventory"] = sorted(store.inventory(), key=lambda d: (d["type"], d["name"]))
    out["_nextfreeip"] = {name: store.nextfreeip(name) for name in store.objects_of("network")}
    out["_members"] = {
        f"{kind}/{name}": store.members(kind, name)
        for kind in ("group", "network", "osimage", "bmcsetup", "rack", "switch")
        for name in store.objects_of(kind)
    }
    out["_ips"] = dict(store.state.ips)
    out["_macs"] = dict(store.state.macs)
    return out


def dump(path: Path) -> dict[str, list]:
    """Every row of every table, read by an independent connection."""
    connection = sqlite3.connect(str(path))
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in sorted(SCHEMA_TABLES)
        }
    finally:
        connection.close()


class RealStoreTestCase(unittest.TestCase):
    """Stores on one SQLite file in a fresh folder, each with its own adbapi pool."""

    def setUp(self) -> None:
        self.folder = Path(self.mktemp()).absolute()
        self.folder.mkdir(parents=True)
        self.key = Fernet.generate_key()
        self.clock = Clock()
        self.clock.advance(1_700_000_000)

    def config(self, bootstrap_enabled: bool = True) -> Config:
        return make_config(self.folder, bootstrap_enabled)

    @property
    def db_path(self) -> Path:
        return self.config().database.database

    def pool(self) -> Any:
        pool = db.open_pool(self.db_path)
        self.addCleanup(pool.close)
        return pool

    async def open(self, bootstrap_enabled: bool = True, key: bytes | None = None) -> Store:
        """Open a Store as the daemon does: migrate, load, seed when empty."""
        store = Store(self.pool(), Crypto(key or self.key), self.clock)
        await store.open()
        if store.empty:
            await store.write(bootstrap.seed, self.config(bootstrap_enabled))
        return store


class SchemaTests(RealStoreTestCase):
    @async_test
    async def test_migrations_create_schema(self) -> None:
        """Migrating an empty file creates every table and index and records
        each schema step, numbered from 1 without gaps."""
        pool = self.pool()
        version = await db.migrate(pool)
        self.assertEqual(version, LATEST)
        self.assertEqual([v for v, _ in db.schema_files()], list(range(1, LATEST + 1)))
        connection = sqlite3.connect(str(self.db_path))
        self.addCleanup(connection.close)
        names = {
            row[0]: row[1] for row in connection.execute("SELECT name, type FROM sqlite_master")
        }
        for table in SCHEMA_TABLES:
            self.assertEqual(names.get(table), "table", table)
        for index in SCHEMA_INDEXES:
            self.assertEqual(names.get(index), "index", index)
        self.assertEqual(
            connection.execute("SELECT version FROM schema_version ORDER BY version").fetchall(),
            [(v,) for v in range(1, LATEST + 1)],
        )
        self.assertEqual(connection.execute("PRAGMA journal_mode").fetchone(), ("wal",))

    @async_test
    async def test_migrations_idempotent(self) -> None:
        """Migrating again, in the same pool or a new one, changes nothing and
        keeps the data."""
        pool = self.pool()
        self.assertEqual(await db.migrate(pool), LATEST)
        store = await self.open()
        before = dump(self.db_path)
        self.assertEqual(await db.migrate(pool), LATEST)
        self.assertEqual(await db.migrate(self.pool()), LATEST)
        self.assertEqual(await db.migrate(store.pool), LATEST)
        self.assertEqual(dump(self.db_path), before)
        self.assertEqual(sorted(before["schema_version"]), [(v,) for v in range(1, LATEST + 1)])

    @async_test
    async def test_pool_settings(self) -> None:
        """The pool's connection runs with foreign keys on and WAL."""
        pool = self.pool()

        def pragmas(cursor: Any) -> tuple:
            return (
                cursor.execute("PRAGMA foreign_keys").fetchone()[0],
                cursor.execute("PRAGMA journal_mode").fetchone()[0],
            )

        self.assertEqual(await pool.runInteraction(pragmas), (1, "wal"))
        self.assertEqual((pool.min, pool.max), (1, 1))


class BootstrapTests(RealStoreTestCase):
    @async_test
    async def test_seeds_sample_cluster(self) -> None:
        """The first start with bootstrap seeds three networks, a BMC setup,
        an OS image, the compute group and node001-node004 with addresses."""
        store = await self.open()
        networks = store.objects_of("network")
        self.assertEqual(
            {name: (n["network"], n["gateway"], n["dhcp"]) for name, n in networks.items()},
            {
                "cluster": ("10.141.0.0/16", "10.141.255.254", True),
                "ipmi": ("10.148.0.0/16", "10.148.255.254", False),
                "ib": ("10.149.0.0/16", "10.149.255.254", False),
            },
        )
        self.assertEqual(
            (networks["cluster"]["dhcp_range_begin"], networks["cluster"]["dhcp_range_end"]),
            ("10.141.0.200", "10.141.0.253"),
        )
        self.assertEqual(sorted(store.objects_of("group")), ["compute"])
        group = store.show("group", "compute")
        self.assertEqual(
            [(i["interface"], i["network"]) for i in group["interfaces"]],
            [("BOOTIF", "cluster"), ("BMC", "ipmi"), ("ib0", "ib")],
        )
        self.assertEqual(
            (group["osimage"], group["bmcsetupname"], group["bmcsetup"]),
            ("compute", "compute", True),
        )
        self.assertEqual(
            sorted(store.objects_of("node")), ["node001", "node002", "node003", "node004"]
        )
        for number in range(1, 5):
            node = store.show("node", f"node{number:03d}")
            self.assertEqual(node["group"], "compute")
            self.assertEqual(
                [(i["interface"], i["network"], i["ipaddress"]) for i in node["interfaces"]],
                [
                    ("BOOTIF", "cluster", f"10.141.0.{number}"),
                    ("BMC", "ipmi", f"10.148.0.{number}"),
                    ("ib0", "ib", f"10.149.0.{number}"),
                ],
            )
        self.assertEqual(sorted(store.objects_of("bmcsetup")), ["compute"])
        self.assertEqual(len(store.show("bmcsetup", "compute")["password"]), 16)
        self.assertEqual(sorted(store.objects_of("osimage")), ["compute"])
        self.assertEqual(
            store.show("osimage", "compute")["path"], str(self.folder / "images" / "compute")
        )
        cluster = store.cluster()
        self.assertEqual(cluster["controller"]["ipaddr"], "10.141.255.254")
        self.assertEqual(
            (
                cluster["name"],
                cluster["ntp_server"],
                cluster["provision_method"],
                cluster["domain"],
            ),
            ("cluster", "10.141.255.254", "torrent", "cluster"),
        )
        self.assertEqual(store.nextfreeip("cluster"), "10.141.0.5")
        for kind in ("switch", "otherdev", "rack", "user"):
            self.assertEqual(store.objects_of(kind), {}, kind)

    @async_test
    async def test_seed_runs_once(self) -> None:
        """A second start on the same file finds the data and seeds nothing."""
        first = await self.open()
        await first.write(objects.delete, "node", "node004")
        before = dump(self.db_path)
        second = await self.open()
        self.assertFalse(second.empty)
        self.assertEqual(second.writes, 0)
        self.assertEqual(sorted(second.objects_of("node")), ["node001", "node002", "node003"])
        self.assertEqual(dump(self.db_path), before)

    @async_test
    async def test_bootstrap_disabled(self) -> None:
        """With bootstrap disabled only the cluster and this controller exist."""
        store = await self.open(bootstrap_enabled=False)
        for kind in KINDS:
            expected = {"cluster": ["cluster"], "controller": ["controller"]}.get(kind, [])
            self.assertEqual(sorted(store.objects_of(kind)), expected, kind)
        controller = store.show("controller", "controller")
        self.assertEqual(
            (controller["network"], controller["ipaddress"], controller["status"]),
            (None, None, "primary"),
        )
        self.assertEqual(dump(self.db_path)["interface"], [])
        self.assertEqual(
            [row[1:3] for row in dump(self.db_path)["object"]],
            [("cluster", "cluster"), ("controller", "controller")],
        )


class DurabilityTests(RealStoreTestCase):
    async def many_writes(self, store: Store) -> None:
        """A write of every sort, on every kind."""
        w = store.write
        await w(
            objects.upsert,
            "network",
            "data",
            {
                "network": "10.200.0.0/24",
                "gateway": "10.200.0.254",
                "comment": "data net",
                "ntp_server": "10.200.0.1",
            },
        )
        await w(
            objects.upsert,
            "group",
            "compute",
            {
                "interfaces": [{"interface": "eth9", "network": "data"}],
                "prescript": "echo pre",
                "provision_method": "http",
            },
        )
        await w(objects.upsert, "group", "compute", {"newgroupname": "cpu"})
        await w(
            objects.upsert,
            "node",
            "node001",
            {
                "macaddr": "02:00:00:00:00:01",
                "status": "installed",
                "vendor": "Dell",
                "interfaces": [
                    {
                        "interface": "eth5",
                        "ipaddress": "10.148.7.7",
                        "macaddress": "02:00:00:00:00:55",
                        "options": "mtu 9000",
                    }
                ],
            },
        )
        await w(
            objects.upsert,
            "node",
            "node002",
            {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.0.210", "force": True}]},
        )
        await w(objects.clone, "node", "node001", {"newhostname": "node010", "comment": "clone"})
        await w(
            objects.upsert,
            "node",
            "node003",
            {"newhostname": "login01", "provision_fallback": "ftp"},
        )
        await w(objects.delete, "node", "node004")
        await w(
            objects.upsert,
            "network",
            "ib",
            {"network": "10.150.0.0/16", "newnetname": "infiniband"},
        )
        await w(
            objects.upsert, "bmcsetup", "compute", {"password": "new-bmc-password", "userid": 5}
        )
        await w(
            objects.upsert,
            "osimage",
            "compute",
            {
                "kernelfile": "vmlinuz-1",
                "initrdfile": "initrd-1",
                "grab_exclude": ["/proc/*", "/tmp/*"],
            },
        )
        await w(objects.put_tag, "compute", {"tag": "v1"})
        await w(
            objects.upsert,
            "switch",
            "sw1",
            {"network": "ipmi", "rw": "rw-community", "vendor": "Arista"},
        )
        await w(objects.clone, "switch", "sw1", {"newswitchname": "sw2"})
        await w(objects.upsert, "otherdev", "pdu1", {"ipaddress": "10.141.100.1"})
        await w(
            objects.upsert,
            "rack",
            "r1",
            {
                "size": 20,
                "room": "A",
                "devices": [
                    {"name": "node001", "position": 1},
                    {"name": "sw1", "type": "switch", "position": 3, "height": 2},
                    {"name": "pdu1", "type": "otherdev", "position": 20, "orientation": "back"},
                ],
            },
        )
        await w(objects.upsert, "rack", "r2", {})
        await w(objects.upsert, "rack", "r2", {"newrackname": "r3"})
        await w(
            objects.put_secrets,
            "node",
            "node001",
            [{"secretname": "ssh key", "content": "PRIVATE", "path": "/root/.ssh/id"}],
        )
        await w(
            objects.put_secrets,
            "group",
            "cpu",
            [
                {"secretname": "munge", "content": "MUNGE"},
                {"secretname": "extra", "content": "EXTRA"},
            ],
        )
        await w(
            objects.clone_secret,
            "group",
            "cpu",
            "munge",
            [{"secretname": "munge", "newsecretname": "munge2"}],
        )
        await w(objects.delete_secret, "group", "cpu", "extra")
        await w(objects.update_cluster, {"technical_contacts": "ops@example.org", "debug": True})
        await store.put_user("alice", {"password": "alice-password", "role": "admin"}, ADMIN)
        await store.put_user("bob", {"password": "bob-password"}, ADMIN)
        await store.add_journal(
            [{"function": "update", "object": "node001", "sendfor": "controller"}]
        )

    @async_test
    async def test_every_write_is_durable(self) -> None:
        """After writes of every sort, a new Store on the same file shows
        exactly what the original shows, kind by kind."""
        first = await self.open()
        await self.many_writes(first)
        expected = snapshot(first)
        # sanity: the writes did happen
        self.assertEqual(sorted(expected["node"]), ["login01", "node001", "node002", "node010"])
        self.assertEqual(sorted(expected["rack"]), ["r1", "r3"])
        self.assertEqual(
            [(d["name"], d["rack"], d["position"]) for d in expected["_inventory"] if d["rack"]],
            [("node001", "r1", 1), ("pdu1", "r1", 20), ("sw1", "r1", 3)],
        )
        self.assertEqual(
            expected["_secrets"]["group"]["cpu"],
            [
                {"name": "munge", "secretname": "munge", "content": "MUNGE", "path": None},
                {"name": "munge2", "secretname": "munge2", "content": "MUNGE", "path": None},
            ],
        )
        second = await self.open()
        self.assertEqual(second.writes, 0)
        got = snapshot(second)
        for key in expected:
            self.assertEqual(got[key], expected[key], key)
        self.assertEqual(await second.journal("controller"), await first.journal("controller"))
        self.assertEqual(len(await second.journal("controller")), 1)
        self.assertEqual(await second.check_user("alice", "alice-password"), "admin")
        self.assertEqual(await second.check_user("bob", "bob-password"), "readonly")
        self.assertIsNone(await second.check_user("bob", "alice-password"))

    @async_test
    async def test_durable_after_each_write(self) -> None:
        """Each acknowledged write is on disk at once: a store reopened after
        any single write matches the original."""
        first = await self.open()
        steps = [
            (
                objects.upsert,
                "node",
                "node005",
                {"group": "compute", "macaddr": "02:00:00:00:00:05"},
            ),
            (objects.upsert, "group", "compute", {"newgroupname": "gpu"}),
            (objects.upsert, "network", "ipmi", {"network": "10.160.0.0/16"}),
            (objects.delete, "node", "node001"),
            (objects.put_secrets, "node", "node002", [{"secretname": "s", "content": "c"}]),
        ]
        for step in steps:
            await first.write(*step)
            reopened = await self.open()
            self.assertEqual(snapshot(reopened), snapshot(first), step[:3])
        self.assertEqual(
            snapshot(reopened)["node"]["node002"]["interfaces"][1]["ipaddress"], "10.160.0.2"
        )

    @async_test
    async def test_writes_serialize(self) -> None:
        """Writes issued together run one after the other: each sees the
        addresses the previous one took."""
        store = await self.open()
        writes = store.writes
        results = await defer.gatherResults(
            [
                store.write(objects.upsert, "node", f"node1{n:02d}", {"group": "compute"})
                for n in range(5)
            ]
        )
        self.assertEqual(results, [True] * 5)
        ips = [store.show("node", f"node1{n:02d}")["interfaces"][0]["ipaddress"] for n in range(5)]
        self.assertEqual(ips, [f"10.141.0.{n}" for n in range(5, 10)])
        self.assertEqual(store.writes, writes + 5)
        reopened = await self.open()
        self.assertEqual(snapshot(reopened), snapshot(store))

    @async_test
    async def test_listeners_after_commit(self) -> None:
        """Listeners hear of each committed write, after memory is updated,
        and not of failed or empty writes."""
        store = await self.open()
        heard: list = []
        store.listeners.append(lambda tx: heard.append(store.show("node", "node001")["comment"]))
        await store.write(objects.upsert, "node", "node001", {"comment": "one"})
        await self.assertFailure(
            store.write(objects.upsert, "node", "node001", {"comment": 1.5, "bogus": 1}), Invalid
        )
        await store.write(lambda tx: None)
        await store.write(objects.upsert, "node", "node001", {"comment": "two"})
        self.assertEqual(heard, ["one", "two"])


class SecretsAtRestTests(RealStoreTestCase):
    SECRETS = (
        "NODE-SECRET-3f9a1c",
        "GROUP-SECRET-8b2e44",
        "BMC-PASSWORD-77c1d0",
        "RW-COMMUNITY-5e0a9b",
        "USER-PASSWORD-c4d2e1",
    )
    PLAIN = "PLAIN-COMMENT-MARKER-0d1e"

    async def fill(self, store: Store) -> None:
        node, group, bmc, rw, user = self.SECRETS
        await store.write(
            objects.put_secrets, "node", "node001", [{"secretname": "k", "content": node}]
        )
        await store.write(
            objects.put_secrets, "group", "compute", [{"secretname": "g", "content": group}]
        )
        await store.write(
            objects.upsert, "bmcsetup", "compute", {"password": bmc, "comment": self.PLAIN}
        )
        await store.write(objects.upsert, "switch", "sw1", {"rw": rw})
        await store.put_user("alice", {"password": user}, ADMIN)

    def raw_bytes(self) -> bytes:
        """The database file and its WAL, as stored on disk."""
        data = b""
        for suffix in ("", "-wal"):
            path = Path(str(self.db_path) + suffix)
            if path.exists():
                data += path.read_bytes()
        return data

    @async_test
    async def test_not_in_plaintext_on_disk(self) -> None:
        """Secret contents, BMC passwords, switch write communities and user
        passwords appear nowhere in the SQLite file or its WAL (while a plain
        comment does), before and after a checkpoint."""
        store = await self.open()
        await self.fill(store)
        for phase in ("wal", "checkpointed"):
            if phase == "checkpointed":
                connection = sqlite3.connect(str(self.db_path))
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.close()
            data = self.raw_bytes()
            self.assertIn(self.PLAIN.encode(), data, phase)
            for secret in self.SECRETS:
                self.assertNotIn(secret.encode(), data, (phase, secret))
                self.assertNotIn(secret.encode("utf-16-le"), data, (phase, secret))

    @async_test
    async def test_rows_hold_ciphertext(self) -> None:
        """The rows hold Fernet tokens under the KEYFILE's key that decrypt
        to the values; the user row holds an scrypt hash."""
        store = await self.open()
        await self.fill(store)
        node, group, bmc, rw, _ = self.SECRETS
        rows = dump(self.db_path)
        box = Crypto(self.key)
        contents = sorted(box.decrypt(row[5]) for row in rows["secret"])
        self.assertEqual(contents, sorted([node, group]))
        data = {(row[1], row[2]): json.loads(row[3]) for row in rows["object"]}
        self.assertEqual(set(data[("bmcsetup", "compute")]["password"]), {"$enc"})
        self.assertEqual(box.decrypt(data[("bmcsetup", "compute")]["password"]["$enc"]), bmc)
        self.assertEqual(box.decrypt(data[("switch", "sw1")]["rw"]["$enc"]), rw)
        self.assertEqual(data[("bmcsetup", "compute")]["comment"], self.PLAIN)
        self.assertTrue(data[("user", "alice")]["pwhash"].startswith("scrypt$"))
        # and the store itself shows them in clear
        self.assertEqual(store.show("bmcsetup", "compute")["password"], bmc)
        self.assertEqual(store.show("switch", "sw1")["rw"], rw)

    @async_test
    async def test_wrong_key_cannot_open(self) -> None:
        """A store opened with another key refuses to load rather than show garbage."""
        store = await self.open()
        await self.fill(store)
        other = Store(self.pool(), Crypto(Fernet.generate_key()), self.clock)
        with self.assertRaises(ValueError) as caught:
            await other.open()
        self.assertIn("KEYFILE", str(caught.exception))


class FailedWriteTests(RealStoreTestCase):
    async def assertUnchanged(self, store: Store, write: Any, error: type = Invalid) -> Exception:
        """``write`` fails with ``error`` and changes neither memory nor disk."""
        memory = snapshot(store)
        disk = dump(self.db_path)
        writes = store.writes
        next_id = store.state.next_id
        exc = await self.assertFailure(write(), error)
        self.assertEqual(snapshot(store), memory)
        self.assertEqual(dump(self.db_path), disk)
        self.assertEqual(store.writes, writes)
        self.assertEqual(store.state.next_id, next_id)
        return exc

    @async_test
    async def test_validation_errors_change_nothing(self) -> None:
        """Writes refused part-way (after earlier steps of the same write
        succeeded) leave memory and the file exactly as they were."""
        store = await self.open()
        await store.write(
            objects.put_secrets, "node", "node001", [{"secretname": "s", "content": "c"}]
        )
        w = store.write
        exc = await self.assertUnchanged(
            store,
            lambda: w(
                objects.upsert,
                "node",
                "node002",
                {
                    "comment": "x",
                    "interfaces": [
                        {"interface": "eth7", "network": "ipmi"},
                        {"interface": "BOOTIF", "ipaddress": "10.9.0.1"},
                    ],
                },
            ),
        )
        self.assertEqual(
            exc.message,
            "interfaces[1].ipaddress: 10.9.0.1 is not inside network cluster (10.141.0.0/16)",
        )
        await self.assertUnchanged(
            store,
            lambda: w(
                objects.upsert,
                "node",
                "node005",
                {
                    "group": "compute",
                    "macaddr": "02:00:00:00:00:01",
                    "interfaces": [{"interface": "BMC", "ipaddress": "10.148.0.1"}],
                },
            ),
        )
        await self.assertUnchanged(
            store,
            lambda: w(
                objects.upsert,
                "network",
                "ib",
                {
                    "network": "10.149.0.0/30",
                    "gateway": "10.149.0.1",
                    "nameserver_ip": "10.149.0.1",
                },
            ),
        )
        await self.assertUnchanged(store, lambda: w(objects.delete, "group", "compute"))
        await self.assertUnchanged(
            store,
            lambda: w(
                objects.put_secrets,
                "node",
                "node001",
                [{"secretname": "s", "content": "changed"}, {"secretname": "t"}],
            ),
        )

        def delete_then_fail(tx: Any) -> None:
            objects.delete(tx, "node", "node001")
            objects.upsert(tx, "group", "compute", {"newgroupname": "gpu"})
            objects.upsert(tx, "network", "data", {"network": "10.200.0.0/24"})
            raise Invalid("changed my mind")

        exc = await self.assertUnchanged(store, lambda: w(delete_then_fail))
        self.assertEqual(exc.message, "changed my mind")
        self.assertEqual(
            [i["ipaddress"] for i in store.show("node", "node001")["interfaces"]],
            ["10.141.0.1", "10.148.0.1", "10.149.0.1"],
        )
        await self.assertUnchanged(
            store, lambda: w(objects.upsert, "node", "node999", {"comment": "x"}, False), NotFound
        )
        # The lock was released every time: a good write still goes through.
        await w(objects.upsert, "node", "node001", {"comment": "still works"})
        self.assertEqual((await self.open()).show("node", "node001")["comment"], "still works")

    @async_test
    async def test_database_error_changes_nothing(self) -> None:
        """A write the database refuses (here a duplicate address that skips
        the checks) fails, rolls back, and leaves memory as it was."""
        store = await self.open()

        def duplicate(tx: Any) -> None:
            objects.upsert(tx, "node", "node003", {"comment": "first part"})
            node = tx.edit(tx.get("node", "node002"))
            boot = node.iface("BOOTIF")
            tx.put_iface(node, Iface("BOOTIF", boot.network, "10.141.0.1", None, None))

        await self.assertUnchanged(store, lambda: store.write(duplicate), sqlite3.IntegrityError)
        self.assertEqual(store.show("node", "node003")["comment"], None)
        await store.write(objects.upsert, "node", "node003", {"comment": "after"})
        self.assertEqual((await self.open()).show("node", "node003")["comment"], "after")
