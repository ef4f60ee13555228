# -*- test-case-name: tests.test_db_file,tests.test_disk_full,tests.test_store -*-
"""The SQLite connection pool and the schema migrations.

One adbapi pool with a single connection: SQLite has one writer, and a
single connection also keeps ``lastrowid`` and WAL visibility simple. Each
``runInteraction`` is one transaction. ``SyncPool`` runs the same
interactions on the calling thread: the daemon uses it to load and seed the
store before the reactor runs, and unit tests use it so that requests
through StubTreq complete without a thread pool.

The database holds password hashes and encrypted secrets: the file and its
-wal and -shm are kept mode 0600 (SQLite gives the side files the main
file's mode). A database file that exists but is empty is refused
(``UnusableDatabase``) rather than taken for a new cluster."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet import defer

SCHEMA_PACKAGE = "luna2d.store.schema"
_SCHEMA_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def _prepare(connection: sqlite3.Connection, synchronous: str = "NORMAL") -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("PRAGMA busy_timeout=5000")


FILE_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


class UnusableDatabase(sqlite3.DatabaseError):
    """The database file exists but must not be used as it is (the daemon
    refuses to start). A ``sqlite3.DatabaseError``, so that whoever opens
    the database reports it as it reports any database that cannot be
    opened."""


def check_file(path: Path | str) -> bool:
    """Whether the database file exists; ``UnusableDatabase`` when it exists
    but is empty (0 bytes): a truncated file or a failed restore, not a new
    cluster, so nothing is seeded over it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise UnusableDatabase(
            f"{path} is empty (0 bytes): it was truncated or not restored. luna2d will not start a "
            "new cluster over it: restore the database from a backup, or remove the file to start "
            "a new cluster"
        )
    return True


def restrict(path: Path | str) -> None:
    """Mode 0600 on the database file and on whichever of its -wal, -shm and
    -journal exist (regular files only)."""
    for name in (str(path), *(f"{path}{suffix}" for suffix in SIDE_FILES)):
        try:
            info = os.stat(name)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != FILE_MODE:
            os.chmod(name, FILE_MODE)


def _open_private(connection: sqlite3.Connection, path: Path | str, synchronous: str) -> None:
    # Before WAL mode opens the side files: SQLite gives them this file's mode.
    restrict(path)
    _prepare(connection, synchronous)
    restrict(path)


def open_pool(path: Path, synchronous: str = "NORMAL") -> adbapi.ConnectionPool:
    """The daemon's one pool: one connection, WAL, foreign keys on, the
    files mode 0600; ``UnusableDatabase`` for an empty database file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    check_file(path)
    return adbapi.ConnectionPool(  # type: ignore[no-untyped-call]
        "sqlite3",
        str(path),
        check_same_thread=False,
        cp_min=1,
        cp_max=1,
        cp_noisy=False,
        cp_openfun=lambda conn: _open_private(conn, path, synchronous),
    )


class SyncPool:
    """Runs interactions synchronously on one connection (startup, unit tests)."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL") -> None:
        check_file(path)
        # Created private from the first byte (the umask is the process's:
        # this runs on the calling thread, before the reactor has others).
        previous = os.umask(0o077)
        try:
            self.connection = sqlite3.connect(str(path), check_same_thread=False)
        finally:
            os.umask(previous)
        try:
            _open_private(self.connection, path, synchronous)
        except BaseException:
            self.connection.close()
            raise

    def runInteraction(
        self, interaction: Callable[..., Any], *args: Any, **kw: Any
    ) -> defer.Deferred[Any]:
        cursor = self.connection.cursor()
        try:
            result = interaction(cursor, *args, **kw)
            self.connection.commit()
        except BaseException:  # noqa: BLE001 - any failure rolls back and fails the Deferred
            self.connection.rollback()
            return defer.fail()
        finally:
            cursor.close()
        return defer.succeed(result)

    def close(self) -> None:
        self.connection.close()


def schema_files() -> list[tuple[int, str]]:
    """The shipped schema steps, as (version, sql), in order."""
    steps = []
    for entry in resources.files(SCHEMA_PACKAGE).iterdir():
        match = _SCHEMA_FILE.match(entry.name)
        if match:
            steps.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(steps)


def _migrate(cursor: Any) -> int:
    cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, sql in schema_files():
        if version <= current:
            continue
        # Explicitly: sqlite3 runs CREATE outside any transaction unless one
        # is open, and a step cut short must leave nothing behind.
        cursor.execute("BEGIN")
        for statement in _statements(sql):
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        cursor.execute("COMMIT")
        current = version
    return current


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.strip().startswith("--")
    )
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def migrate(pool: Any) -> defer.Deferred[int]:
    """Bring the database to the newest schema, each step in its transaction."""
    migrated: defer.Deferred[int] = pool.runInteraction(_migrate)
    return migrated
