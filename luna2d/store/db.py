"""The SQLite connection pool and the schema migrations.

One adbapi pool with a single connection: SQLite has one writer, and a
single connection also keeps ``lastrowid`` and WAL visibility simple. Each
``runInteraction`` is one transaction. ``SyncPool`` runs the same
interactions on the calling thread: the daemon uses it to load and seed the
store before the reactor runs, and unit tests use it so that requests
through StubTreq complete without a thread pool."""

from __future__ import annotations

import re
import sqlite3
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


def open_pool(path: Path, synchronous: str = "NORMAL") -> adbapi.ConnectionPool:
    """The daemon's one pool: one connection, WAL, foreign keys on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return adbapi.ConnectionPool(
        "sqlite3",
        str(path),
        check_same_thread=False,
        cp_min=1,
        cp_max=1,
        cp_noisy=False,
        cp_openfun=lambda conn: _prepare(conn, synchronous),
    )


class SyncPool:
    """Runs interactions synchronously on one connection (startup, unit tests)."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL") -> None:
        self.connection = sqlite3.connect(str(path), check_same_thread=False)
        _prepare(self.connection, synchronous)

    def runInteraction(self, interaction: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred:
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
    without_comments = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def migrate(pool: Any) -> defer.Deferred:
    """Bring the database to the newest schema, each step in its transaction."""
    return pool.runInteraction(_migrate)
