# -*- test-case-name: tests.test_disk_full -*-
"""Domain errors. Each carries the HTTP status it maps to; resources/ turns
them into one JSON shape, ``{"message": ...}``, in one place."""

from __future__ import annotations

import errno
import sqlite3


class LunaError(Exception):
    """Base of every error a user can act on."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(LunaError):
    """The request is malformed or asks for something impossible (400)."""

    status = 400


class Unauthorized(LunaError):
    """No valid credentials or token (401)."""

    status = 401


class Forbidden(LunaError):
    """Valid credentials that may not do this (403)."""

    status = 403


class NotFound(LunaError):
    """The named object or path does not exist (404)."""

    status = 404


class Throttled(LunaError):
    """Too many attempts; the answer says when to try again (429)."""

    status = 429


class Unavailable(LunaError):
    """The backend cannot serve this now (503)."""

    status = 503


class InsufficientStorage(LunaError):
    """The disk is full: nothing was stored (507 Insufficient Storage)."""

    status = 507


DISK_FULL_MESSAGE = "database or disk is full"


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says that a disk (or quota, or the database's size
    limit) is full: SQLite's SQLITE_FULL, or ENOSPC / EDQUOT from the OS."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_FULL or DISK_FULL_MESSAGE in str(exc)
    return False


class ConfigError(Exception):
    """The ini file is unusable; the message names the section and key."""
