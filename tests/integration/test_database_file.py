"""The real daemon (``twistd luna2d``) and its database file: started under
umask 0, the database and its -wal and -shm are 0600 while it runs; a
database file of 0 bytes makes it refuse to start, with a message and no
traceback, instead of seeding the sample cluster over it."""

from __future__ import annotations

import os
import stat

from tests.integration.test_daemon import Daemon, DaemonCase, node_body


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class DatabaseFileTests(DaemonCase):
    async def test_files_private_under_umask_zero(self) -> None:
        """Under umask 0, after a write, luna.db, luna.db-wal and luna.db-shm
        are all mode 0600 (they hold password hashes and encrypted secrets)."""
        daemon = Daemon(self)
        await daemon.start(umask=0)
        token = await daemon.token()
        code, _ = await daemon.call(
            "POST",
            "/config/node/private01",
            node_body("private01", {"group": "compute"}),
            token=token,
        )
        self.assertEqual(code, 201)
        base = str(daemon.database)
        self.assertEqual(
            {suffix: mode(base + suffix) for suffix in ("", "-wal", "-shm")},
            {"": 0o600, "-wal": 0o600, "-shm": 0o600},
        )

    async def test_empty_database_file_refused(self) -> None:
        """With var/luna.db present but empty, twistd exits non-zero, says
        the file is empty and what to do, prints no traceback, and leaves
        the file empty (no sample cluster seeded into it)."""
        daemon = Daemon(self)
        daemon.database.parent.mkdir(parents=True)
        daemon.database.write_bytes(b"")
        capture_start = daemon.start()
        try:
            await capture_start
        except AssertionError as exc:
            text = str(exc)
        else:
            self.fail("luna2d started on an empty database file")
        reason = daemon.capture.reason if daemon.capture is not None else None
        self.assertIsNotNone(reason)
        self.assertNotEqual(getattr(reason, "exitCode", 0), 0, text)
        for words in ("[DATABASE] DATABASE", "0 bytes", "restore", "remove the file"):
            self.assertIn(words, text)
        self.assertNotIn("Traceback", text)
        self.assertEqual(daemon.database.stat().st_size, 0)
