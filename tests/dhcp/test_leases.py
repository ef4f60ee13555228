"""The lease table on a real SQLite file: schema step 2 creates it, changes
are written in order in one transaction (replace by address, removal), and
the rows are there again after the store is reopened."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from luna2d.protocols.dhcp.policy import Lease, LeaseChange
from luna2d.store import db, leases
from luna2d.store.leases import LeaseRecord
from tests.support import open_store, result_of


class LeaseStoreTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-leases-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)
        self.store, self.cfg = open_store(self.folder)
        self.addCleanup(lambda: self.store.pool.close())

    def test_schema_version(self) -> None:
        """The schema is at least at version 2 with the dhcp_lease table."""

        def query(cursor):  # type: ignore[no-untyped-def]
            version = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            table = cursor.execute(
                "SELECT name FROM sqlite_master WHERE name = 'dhcp_lease'"
            ).fetchone()
            return version, table

        version, table = result_of(self.store.pool.runInteraction(query))
        self.assertGreaterEqual(version, 2)
        self.assertEqual(table, ("dhcp_lease",))

    def test_apply_and_load(self) -> None:
        """Changes are applied in order: a later change of an address replaces
        the earlier one, a removal deletes; load answers LeaseRecords."""
        a = Lease("10.141.0.200", "02:00:00:00:00:01", 1000.5, "bound", "rescue")
        b = Lease("10.141.0.201", "02:00:00:00:00:02", 2000.0)
        c = Lease("10.141.0.200", "02:00:00:00:00:03", 3000.0, "declined")
        written = result_of(
            leases.apply(self.store.pool, [LeaseChange(a.address, a), LeaseChange(b.address, b)])
        )
        self.assertEqual(written, 2)
        result_of(
            leases.apply(self.store.pool, [LeaseChange(c.address, c), LeaseChange(b.address, None)])
        )
        rows = result_of(leases.load(self.store.pool))
        self.assertEqual(
            rows, [LeaseRecord("10.141.0.200", "02:00:00:00:00:03", "declined", 3000.0, None)]
        )

    def test_survive_reopen(self) -> None:
        """Leases written are loaded again by a store opened afresh on the file."""
        lease = Lease("10.141.0.202", "02:00:00:00:00:04", 4000.0, "bound", "host4")
        result_of(leases.apply(self.store.pool, [LeaseChange(lease.address, lease)]))
        self.store.pool.close()
        again, _ = open_store(self.folder, key=self.cfg.files.keyfile.read_bytes())
        self.store = again
        rows = result_of(leases.load(again.pool))
        self.assertEqual(
            rows, [LeaseRecord("10.141.0.202", "02:00:00:00:00:04", "bound", 4000.0, "host4")]
        )

    def test_bad_state_refused(self) -> None:
        """The table refuses a state other than bound or declined (the whole
        batch rolls back)."""
        good = Lease("10.141.0.203", "02:00:00:00:00:05", 1.0)
        bad = Lease("10.141.0.204", "02:00:00:00:00:06", 1.0, "weird")
        d = leases.apply(
            self.store.pool, [LeaseChange(good.address, good), LeaseChange(bad.address, bad)]
        )
        failures: list = []
        d.addErrback(failures.append)
        self.assertEqual(len(failures), 1)
        self.assertEqual(result_of(leases.load(self.store.pool)), [])

    def test_real_pool(self) -> defer.Deferred:
        """Through the daemon's adbapi pool (a thread), too."""
        pool = db.open_pool(self.cfg.database.database)
        self.addCleanup(pool.close)
        lease = Lease("10.141.0.205", "02:00:00:00:00:07", 5.0)
        d = leases.apply(pool, [LeaseChange(lease.address, lease)])
        d.addCallback(lambda _: leases.load(pool))
        d.addCallback(lambda rows: self.assertEqual([r.address for r in rows], ["10.141.0.205"]))
        return d
