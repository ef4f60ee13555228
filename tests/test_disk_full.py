"""A full disk answers 507 with a message saying so, changes nothing, and
writes work again once there is space: on a real, tiny tmpfs that the test
mounts (the suite runs as root, as the network-namespace tests do), and
through SQLite's own size limit (PRAGMA max_page_count), which fails a
write with the same SQLITE_FULL a full disk gives."""

from __future__ import annotations

import base64
import errno
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from klein import Klein
from treq.testing import StubTreq
from twisted.trial import unittest

from luna2d.errors import InsufficientStorage, disk_full
from luna2d.resources.common import install_error_handlers, message
from luna2d.store import bootstrap, db, objects
from luna2d.store.crypto import Crypto
from luna2d.store.store import Store
from tests.support import API, ReactorCase, env, make_config, result_of
from tests.test_store import dump, snapshot

BIG = "x" * 60_000  # under the 64 KiB a text field may hold


def big_group() -> dict[str, Any]:
    """About 180 kB of scripts: more than the space left on a full disk."""
    return {
        "prescript": BIG,
        "partscript": BIG.replace("x", "y"),
        "postscript": BIG.replace("x", "z"),
    }


def script(store: Store, name: str) -> str:
    """The compute group's script ``name`` (shown base64-encoded)."""
    return base64.b64decode(store.show("group", "compute")[name]).decode()


class Tmpfs:
    """A tmpfs of ``size`` mounted on a fresh folder, unmounted at cleanup."""

    def __init__(self, case: unittest.TestCase, size: str = "2m") -> None:
        self.path = Path(tempfile.mkdtemp(prefix="luna2d-full-"))
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
        )
        case.addCleanup(self._remove)
        self.filler = self.path / "filler"

    def _remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
        os.rmdir(self.path)

    def fill(self) -> None:
        """Take every free block."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


class RealFullDiskTests(ReactorCase):
    async def test_full_tmpfs_answers_507_and_recovers(self) -> None:
        """The database on a 2 MiB tmpfs through the daemon's threaded pool:
        once the filesystem is full, a write fails with InsufficientStorage
        (507, "disk full") and changes neither memory nor the file; the
        queue goes on; after space is freed the same write commits, and a
        reopened store shows exactly what the first shows."""
        fs = Tmpfs(self)
        cfg = make_config(fs.path)
        key = Fernet.generate_key()
        pool = db.open_pool(cfg.database.database)
        self.addCleanup(pool.close)
        store = Store(pool, Crypto(key))
        await store.open()
        await store.write(bootstrap.seed, cfg)
        await pool.runInteraction(lambda cursor: cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        before, disk = snapshot(store), dump(cfg.database.database)
        fs.fill()
        failure = await self.assertFailure(
            store.write(objects.upsert, "group", "compute", big_group()), InsufficientStorage
        )
        self.assertEqual(failure.status, 507)
        self.assertIn("disk full", failure.message)
        self.assertEqual(snapshot(store), before)
        fs.free()
        self.assertEqual(dump(cfg.database.database), disk)
        self.assertFalse(await store.write(objects.upsert, "group", "compute", big_group()))
        self.assertEqual(script(store, "prescript"), BIG)
        pool2 = db.open_pool(cfg.database.database)
        self.addCleanup(pool2.close)
        reopened = Store(pool2, Crypto(key))
        await reopened.open()
        self.assertEqual(snapshot(reopened), snapshot(store))

    def test_enospc_from_a_handler_is_507(self) -> None:
        """A handler that writes a file on a full filesystem gets OSError
        ENOSPC; the one error mapping answers 507 with a JSON message that
        says the disk is full (not a generic 500)."""
        fs = Tmpfs(self, size="64k")
        fs.fill()

        class App:
            app = Klein()
            install_error_handlers(app)

            @app.route("/upload", methods=["POST"])
            def upload(self, request: Any) -> bytes:
                (fs.path / "upload").write_bytes(b"u" * 8192)
                return message(request, "stored", 200)

        client = StubTreq(App().app.resource())
        d = client.post("http://luna/upload", data=b"")
        client.flush()
        response = result_of(d)
        body = result_of(response.json())
        self.assertEqual(response.code, 507)
        self.assertIn("disk full", body["message"])
        self.assertEqual(len(self.flushLoggedErrors()), 0)


class PageLimitTests(unittest.TestCase):
    def test_database_size_limit_answers_507(self) -> None:
        """With the database held at its current size (PRAGMA
        max_page_count, SQLite's SQLITE_FULL as from a full disk), POST
        /config/group answers 507 with the disk-full message; nothing
        changes; with the limit lifted the same request succeeds."""
        api = API()
        self.addCleanup(api.store.pool.close)
        connection = api.store.pool.connection
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        before = snapshot(api.store)
        code, _, body, _ = api.raw(
            "POST",
            "/config/group/compute",
            json_body(env("group", "compute", big_group())),
            {"x-access-tokens": api.admin_token},
        )
        self.assertEqual(code, 507, body)
        self.assertIn(b"disk full", body)
        self.assertEqual(snapshot(api.store), before)
        connection.execute("PRAGMA max_page_count = 1073741823")
        code, _, body, _ = api.raw(
            "POST",
            "/config/group/compute",
            json_body(env("group", "compute", big_group())),
            {"x-access-tokens": api.admin_token},
        )
        self.assertEqual(code, 204, body)
        self.assertEqual(script(api.store, "partscript"), BIG.replace("x", "y"))


class RecogniseTests(unittest.TestCase):
    def test_disk_full_errors(self) -> None:
        """What counts as a full disk: SQLITE_FULL, ENOSPC and EDQUOT; not
        other database or OS errors."""
        full = sqlite3_error("database or disk is full")
        self.assertTrue(disk_full(full))
        self.assertTrue(disk_full(OSError(errno.ENOSPC, "No space left on device")))
        self.assertTrue(disk_full(OSError(errno.EDQUOT, "Disk quota exceeded")))
        self.assertFalse(disk_full(OSError(errno.EACCES, "Permission denied")))
        self.assertFalse(disk_full(sqlite3_error("database is locked")))
        self.assertFalse(disk_full(ValueError("database or disk is full")))


def sqlite3_error(text: str) -> Exception:
    import sqlite3

    return sqlite3.OperationalError(text)


def json_body(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()
