"""Tokens and who may do what.

Tokens are HS256 JWTs signed with the ini SECRET_KEY, read from the
``x-access-tokens`` header or ``Authorization: Bearer``. Roles: ``admin``
(everything), ``readonly`` (every GET, no POST), and ``node`` tokens that the
install script carries, scoped to one node (CONTRACT.md)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import jwt

from luna2d.config import APIConfig
from luna2d.errors import Forbidden, Invalid, Unauthorized

NODE_FIELDS = {"vendor", "assettag", "status", "interfaces", "name", "tpm_uuid", "tpm_pubkey", "tpm_sha256"}
NODE_IFACE_FIELDS = {"interface", "ipaddress", "force"}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # admin, readonly or node
    node: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Auth:
    """Issues and checks tokens."""

    def __init__(self, api: APIConfig, store: Any, clock: Any) -> None:
        self.api = api
        self.store = store
        self.clock = clock
        self._key = api.secret_key.encode("utf-8")
        self._verified: dict[str, dict] = {}  # token -> claims whose signature checked out

    def issue(self, name: str, role: str, node: str | None = None, lifetime: int | None = None) -> str:
        now = int(self.clock.seconds())
        claims: dict[str, Any] = {"sub": name, "role": role, "iat": now, "exp": now + (lifetime or self.api.expiry)}
        if node is not None:
            claims["node"] = node
        return jwt.encode(claims, self._key, algorithm="HS256")

    async def login(self, body: Any) -> str:
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
        if hmac.compare_digest(username.encode(), self.api.username.encode()):
            if hmac.compare_digest(password.encode(), self.api.password.encode()):
                return self.issue(username, "admin")
            raise Unauthorized("invalid username or password")
        role = await self.store.check_user(username, password)
        if role is None:
            raise Unauthorized("invalid username or password")
        return self.issue(username, role)

    def principal(self, request: Any) -> Principal | None:
        """Who the request's token names; None without a token. A token that
        is present but invalid or expired is an error, not anonymity."""
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
                claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
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
        if name != self.api.username:
            user = self.store.user(name)
            if user is None:
                raise Unauthorized(f"user {name!r} no longer exists")
            role = user.data.get("role") or "readonly"
        return Principal(name, role)

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
