"""The database file (luna2d.store.db): mode 0600 for it and its -wal and
-shm whatever the umask, existing files made private when opened, and an
empty (0-byte) file refused rather than seeded as a new cluster."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from cryptography.fernet import Fernet
from twisted.internet import defer
from twisted.trial import unittest

from luna2d.store import bootstrap, db, objects
from luna2d.store.crypto import Crypto
from luna2d.store.store import Store
from tests.support import ReactorCase, make_config, result_of


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def modes(path: Path) -> dict[str, int]:
    """The mode of the database file and of each side file that exists."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        name = f"{path}{suffix}"
        if os.path.exists(name):
            out[suffix or "db"] = mode(name)
    return out


class UmaskZero:
    """Runs the test under umask 0, so that any file not made private on
    purpose would come out world-readable (0644, or 0666 for WAL files)."""

    def setUp(self) -> None:
        previous = os.umask(0)
        self.addCleanup(os.umask, previous)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]


class SyncModeTests(UmaskZero, unittest.TestCase):
    def test_new_database_and_side_files_are_private(self) -> None:
        """A database created under umask 0 and written to has mode 0600,
        as have its -wal and -shm while they exist."""
        folder = Path(self.mktemp()).absolute()
        folder.mkdir()
        cfg = make_config(folder)
        cfg.files.keyfile.write_bytes(Fernet.generate_key())
        pool = db.SyncPool(cfg.database.database)
        self.addCleanup(pool.close)
        store = Store(pool, Crypto(cfg.files.keyfile.read_bytes()))
        result_of(defer.ensureDeferred(store.open()))
        result_of(store.write(bootstrap.seed, cfg))
        result_of(store.write(objects.upsert, "node", "node001", {"comment": "written"}))
        self.assertEqual(modes(cfg.database.database), {"db": 0o600, "-wal": 0o600, "-shm": 0o600})

    def test_existing_files_made_private_at_open(self) -> None:
        """A database and WAL left world-readable (0644, 0666) by an older
        luna2d are 0600 once the database is opened again."""
        path = Path(self.mktemp()).absolute()
        raw = sqlite3.connect(str(path))
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("CREATE TABLE t (a)")
        raw.execute("INSERT INTO t VALUES (1)")
        raw.commit()
        # Keep the WAL and SHM alive (closing the last connection removes them).
        os.chmod(path, 0o644)
        for suffix in ("-wal", "-shm"):
            os.chmod(f"{path}{suffix}", 0o666)
        self.assertEqual(modes(path), {"db": 0o644, "-wal": 0o666, "-shm": 0o666})
        pool = db.SyncPool(path)
        self.addCleanup(pool.close)
        raw.close()
        self.assertEqual(modes(path), {"db": 0o600, "-wal": 0o600, "-shm": 0o600})


class PoolModeTests(UmaskZero, ReactorCase):
    async def test_threaded_pool_files_are_private(self) -> None:
        """The daemon's threaded adbapi pool, on a new file under umask 0:
        after writes the database, -wal and -shm are 0600."""
        folder = Path(self.mktemp()).absolute()
        folder.mkdir()
        cfg = make_config(folder)
        pool = db.open_pool(cfg.database.database)
        self.addCleanup(pool.close)
        store = Store(pool, Crypto(Fernet.generate_key()))
        await store.open()
        await store.write(bootstrap.seed, cfg)
        await store.write(objects.upsert, "node", "node001", {"comment": "written"})
        self.assertEqual(modes(cfg.database.database), {"db": 0o600, "-wal": 0o600, "-shm": 0o600})


class EmptyFileTests(unittest.TestCase):
    def test_zero_byte_file_refused(self) -> None:
        """A database file of 0 bytes (truncated, a failed restore) is refused
        by check_file, SyncPool and open_pool with UnusableDatabase (a
        sqlite3.DatabaseError, which the daemon reports as an unusable
        database and exits) naming the file and what to do; the file is
        left as it was, nothing is seeded into it."""
        path = Path(self.mktemp()).absolute()
        path.write_bytes(b"")
        for opener in (db.check_file, db.SyncPool, db.open_pool):
            with self.assertRaises(db.UnusableDatabase) as caught:
                opener(path)
            self.assertIsInstance(caught.exception, sqlite3.DatabaseError)
            text = str(caught.exception)
            for words in (str(path), "0 bytes", "restore", "remove the file"):
                self.assertIn(words, text)
        self.assertEqual(path.stat().st_size, 0)

    def test_missing_and_real_files_accepted(self) -> None:
        """A missing file is a new database (check_file says it does not
        exist); a real database is accepted (it does)."""
        path = Path(self.mktemp()).absolute()
        self.assertFalse(db.check_file(path))
        pool = db.SyncPool(path)
        self.addCleanup(pool.close)
        self.assertTrue(db.check_file(path))
        self.assertGreater(path.stat().st_size, 0)
