"""Domain errors. Each carries the HTTP status it maps to; resources/ turns
them into one JSON shape, ``{"message": ...}``, in one place."""


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


class ConfigError(Exception):
    """The ini file is unusable; the message names the section and key."""
