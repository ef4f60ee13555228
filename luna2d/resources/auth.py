# -*- test-case-name: tests.test_api_auth,tests.test_tokens,tests.test_logins -*-
"""Logins, tokens and who may do what.

Tokens are HS256 JWTs signed with the ini SECRET_KEY, read from the
``x-access-tokens`` header or ``Authorization: Bearer``. Roles: ``admin``
(everything), ``readonly`` (every GET, no POST), and ``node`` tokens that the
install script carries, scoped to one node (CONTRACT.md).

A user's token names the user (``sub``), its identity (``uid``) and its
credential generation (``gen``); it is accepted only while the user of that
name still has that identity and generation (luna2d/store/users.py). The
ini admin's identity is ``ini`` and its generation a keyed digest of the
ini's USERNAME and PASSWORD, so changing the ini password revokes its tokens.

A login costs one scrypt check whoever it names: the ini admin's password is
hashed once (in a thread, before the first login is checked), an unknown
name is checked against a hash nothing matches. Failed logins are throttled
per source address and per user name before any hashing (429 with
Retry-After; a name stays open where it lately logged in), and the checks
themselves wait their turn in a small per-source fair queue (503 when it is
full) (luna2d/resources/logins.py)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import jwt
from twisted.internet import defer

from luna2d.config import APIConfig
from luna2d.errors import Forbidden, Invalid, Throttled, Unauthorized, Unavailable
from luna2d.resources.logins import (
    MAX_KEY,
    SOURCE_LIMITS,
    USER_LIMITS,
    Busy,
    FairGate,
    Limits,
    Remembered,
    Throttle,
    source_key,
)
from luna2d.store.users import Credentials

NODE_FIELDS = {
    "vendor",
    "assettag",
    "status",
    "interfaces",
    "name",
    "tpm_uuid",
    "tpm_pubkey",
    "tpm_sha256",
}
NODE_IFACE_FIELDS = {"interface", "ipaddress", "force"}
INI_UID = "ini"  # the ini admin's identity; store uids are 16 hex digits
BAD_LOGIN = "invalid username or password"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # admin, readonly or node
    node: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Auth:
    """Checks logins, issues tokens and checks them.

    ``slots`` password checks run at once, at most ``queued`` more wait."""

    def __init__(
        self,
        api: APIConfig,
        store: Any,
        clock: Any,
        slots: int = 2,
        queued: int = 64,
        source_limits: Limits = SOURCE_LIMITS,
        user_limits: Limits = USER_LIMITS,
    ) -> None:
        self.api = api
        self.store = store
        self.clock = clock
        self._key = api.secret_key.encode("utf-8")
        # token -> claims whose signature checked out
        self._verified: dict[str, dict[str, Any]] = {}
        digest = hmac.new(
            self._key,
            b"luna2d ini admin\0"
            + api.username.encode("utf-8")
            + b"\0"
            + api.password.encode("utf-8"),
            hashlib.sha256,
        ).digest()
        generation = int.from_bytes(digest[:6], "big")
        self._ini = Credentials(api.username, INI_UID, generation, "admin", None)
        self._ini_waiting: list[defer.Deferred[str]] | None = None
        self.sources = Throttle(source_limits, lambda key: f"from {key}")
        self.users = Throttle(user_limits, lambda key: f"for user {key!r}")
        self.gate = FairGate(slots, queued)
        # "source name" pairs that logged in lately: exempt from the name's block.
        self.known = Remembered()

    # -- tokens -------------------------------------------------------------------
    def issue(
        self, name: str, role: str, node: str | None = None, lifetime: int | None = None
    ) -> str:
        """A signed token for ``name``; an admin or readonly token is bound to
        the user's identity and generation as they are now."""
        found = self._identity(name) if role != "node" else None
        return self._sign(name, role, found, node, lifetime)

    def _sign(
        self,
        name: str,
        role: str,
        found: Credentials | None,
        node: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        now = int(self.clock.seconds())
        claims: dict[str, Any] = {
            "sub": name,
            "role": role,
            "iat": now,
            "exp": now + (lifetime or self.api.expiry),
        }
        if node is not None:
            claims["node"] = node
        if found is not None:
            claims["uid"] = found.uid
            claims["gen"] = found.generation
        return jwt.encode(claims, self._key, algorithm="HS256")

    def _identity(self, name: str) -> Credentials | None:
        if hmac.compare_digest(name.encode("utf-8"), self.api.username.encode("utf-8")):
            return self._ini
        found: Credentials | None = self.store.credentials(name)
        return found

    # -- logins -------------------------------------------------------------------
    async def login(self, body: Any, request: Any = None) -> str:
        """A token for the body's username and password, or 401; 429 (with
        Retry-After) while the source or the name is throttled, 503 when
        the queue of password checks is full."""
        username, password = _login_fields(body)
        source = source_key(request.getClientAddress()) if request is not None else "local"
        now = self.clock.seconds()
        known = f"{source} {username[:MAX_KEY]}"
        refusal = self.sources.refusal(source, now)
        if refusal is None and not self.known.seen(known, now):
            refusal = self.users.refusal(username, now)
        if refusal is not None:
            _retry_after(request, refusal.retry_after)
            raise Throttled(refusal.message)
        self.sources.start(source, now)
        self.users.start(username, now)
        failed: bool | None = None
        try:
            found = await self._credentials(username)
            stored = found.pwhash if found is not None else None
            try:
                ok = await self.gate.submit(
                    source, lambda: self.store.verify_password(password, stored)
                )
            except Busy:
                _retry_after(request, 1)
                raise Unavailable("too many logins are being checked; try again in 1 s") from None
            failed = not (ok is True and found is not None and found.pwhash)
        finally:
            later = self.clock.seconds()
            self.sources.end(source, later, failed)
            self.users.end(username, later, failed, reset=True)
        if failed or found is None:
            raise Unauthorized(BAD_LOGIN)
        self.known.add(known, later)
        # Bound to the generation the password was checked against: if the
        # credentials changed meanwhile, the new token is already revoked.
        return self._sign(found.name, found.role, found)

    async def _credentials(self, username: str) -> Credentials | None:
        """The credentials a login for ``username`` is checked against.
        Every login first waits for the ini admin's hash (made once), so
        the first one costs the same whoever it names."""
        ini_hash = await self._ini_hash()
        if hmac.compare_digest(username.encode("utf-8"), self.api.username.encode("utf-8")):
            return Credentials(self._ini.name, INI_UID, self._ini.generation, "admin", ini_hash)
        found: Credentials | None = self.store.credentials(username)
        return found

    def _ini_hash(self) -> defer.Deferred[str]:
        if self._ini.pwhash is not None:
            return defer.succeed(self._ini.pwhash)
        mine: defer.Deferred[str] = defer.Deferred()
        if self._ini_waiting is None:
            self._ini_waiting = [mine]
            self.store.hash_password(self.api.password).addBoth(self._ini_hashed)
        else:
            self._ini_waiting.append(mine)
        return mine

    def _ini_hashed(self, result: Any) -> None:
        waiting, self._ini_waiting = self._ini_waiting or [], None
        if isinstance(result, str):
            self._ini = Credentials(self._ini.name, INI_UID, self._ini.generation, "admin", result)
        for d in waiting:
            if isinstance(result, str):
                d.callback(result)
            else:
                d.errback(result)

    # -- checking tokens --------------------------------------------------------------
    def principal(self, request: Any) -> Principal | None:
        """Who the request's token names; None without a token. A token that
        is present but invalid, expired or revoked is an error, not anonymity."""
        raw = request.getHeader(b"x-access-tokens")
        if raw is None:
            header = request.getHeader(b"authorization")
            if header is not None and header[:7].lower() == b"bearer ":
                raw = header[7:]
        if raw is None:
            return None
        token = raw.strip().strip(b'"').decode("latin-1")
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._key,
                    algorithms=["HS256"],
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
                )
            except jwt.PyJWTError:
                raise Unauthorized("the token is invalid") from None
            if len(self._verified) >= 1024:
                self._verified.clear()
            self._verified[token] = claims
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp < self.clock.seconds():
            raise Unauthorized("the token has expired")
        name, role = claims.get("sub"), claims.get("role")
        if not isinstance(name, str) or role not in ("admin", "readonly", "node"):
            raise Unauthorized("the token is invalid")
        if role == "node":
            node = claims.get("node")
            if not isinstance(node, str):
                raise Unauthorized("the token is invalid")
            return Principal(name, role, node)
        uid, gen = claims.get("uid"), claims.get("gen")
        revoked = Unauthorized(
            f"the token of {name!r} was revoked (its password, role or name changed); log in again"
        )
        if not isinstance(gen, int) or isinstance(gen, bool):
            raise revoked
        if uid == INI_UID:
            if name != self.api.username or gen != self._ini.generation:
                raise revoked
            return Principal(name, role)
        found = self.store.credentials(name)
        if found is None:
            raise Unauthorized(f"user {name!r} no longer exists")
        if found.uid != uid or found.generation != gen:
            raise revoked
        return Principal(name, found.role)

    def need(self, request: Any) -> Principal:
        """A valid token of any role."""
        who = self.principal(request)
        if who is None:
            raise Unauthorized("a valid token is required (x-access-tokens header)")
        return who

    def reader(self, request: Any) -> Principal:
        """An admin or readonly token (node tokens may not browse)."""
        who = self.need(request)
        if who.role == "node":
            raise Forbidden("a node token may not read this")
        return who

    def admin(self, request: Any) -> Principal:
        """An admin token."""
        who = self.need(request)
        if who.role != "admin":
            raise Forbidden(f"{who.role} tokens may not change anything")
        return who


def _login_fields(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object with username and password")
    unknown = set(body) - {"username", "password"}
    if unknown:
        raise Invalid(f"{min(unknown)}: unknown field")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username:
        raise Invalid("username: required")
    if not isinstance(password, str) or not password:
        raise Invalid("password: required")
    return username, password


def _retry_after(request: Any, seconds: int) -> None:
    if request is not None:
        request.setHeader(b"retry-after", str(seconds).encode("ascii"))


def check_node_update(who: Principal, node: str, body: Any) -> None:
    """What a node token may change of its own node (CONTRACT.md)."""
    if who.node != node:
        raise Forbidden(f"this token belongs to node {who.node}, not {node}")
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if key not in NODE_FIELDS:
            raise Forbidden(f"{key}: a node token may not change this field")
        if key == "interfaces" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and set(entry) - NODE_IFACE_FIELDS:
                    raise Forbidden("interfaces: a node token may only report its address")
