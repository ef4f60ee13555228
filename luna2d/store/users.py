# -*- test-case-name: tests.test_tokens -*-
"""Who a store user is, for logins and tokens.

A user object carries, besides its role and password hash, two internal
fields that tokens are bound to:

- ``uid``: a random identifier given when the user is created. It stays
  through renames and is never reused, so a new user who takes an old
  name is not the old user.
- ``generation``: a counter that goes up whenever the password, the role
  or the name changes. A token names the generation it was issued under;
  once the counter has moved on, the token is refused.

Both live in the object's data, so they are kept in the database and hold
across restarts. Users created before these fields existed have neither
until their next change; their tokens are bound to an absent uid and
generation 0, which no user created since can have."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from luna2d.model.kinds import KINDS
from luna2d.store.state import Obj, Tx

_DEFAULT_ROLE: str = KINDS["user"].by_name["role"].default


@dataclass(frozen=True)
class Credentials:
    """What a login checks and what a token is bound to."""

    name: str
    uid: str | None
    generation: int
    role: str
    pwhash: str | None


def credentials(user: Obj) -> Credentials:
    """The credentials a stored user object holds."""
    data = user.data
    uid = data.get("uid")
    generation = data.get("generation")
    pwhash = data.get("pwhash")
    return Credentials(
        name=user.name,
        uid=uid if isinstance(uid, str) and uid else None,
        generation=generation if isinstance(generation, int) else 0,
        role=data.get("role") or _DEFAULT_ROLE,
        pwhash=pwhash if isinstance(pwhash, str) else None,
    )


def new_uid() -> str:
    """A fresh user identifier (64 random bits, hex)."""
    return secrets.token_hex(8)


def restamp(tx: Tx, user: Obj, before: Credentials | None, password_changed: bool) -> None:
    """After a create or update of ``user`` in ``tx``: give it a uid if it
    has none, and move its generation on when its password, role or name
    changed (``before`` is what it was before the write, None if created)."""
    mine = tx.edit(user)
    after = credentials(mine)
    if after.uid is None:
        mine.data["uid"] = new_uid()
    if before is None:
        mine.data["generation"] = 0
    elif password_changed or after.role != before.role or after.name != before.name:
        mine.data["generation"] = before.generation + 1
