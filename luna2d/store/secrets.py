# -*- test-case-name: tests.test_objects,tests.test_secret_paths,tests.clients.test_base64 -*-
"""Secrets of the kinds that own them (``Kind.has_secrets``): create,
update, rename, clone and delete, with their install paths checked.

A secret's content is bytes, written to the node byte for byte. On the
wire it is base64 (as the TrinityX CLI sends it: any bytes) or plain text
that cannot be taken for base64 (``luna2d.model.wire``)."""

from __future__ import annotations

import re
from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model import wire
from luna2d.model.fields import MAX_TEXT, SECRET_NAME_RE, Field, coerce
from luna2d.store.body import require
from luna2d.store.state import Secret, Tx

SECRET_KEYS = frozenset({"secretname", "name", "content", "path", "newsecretname"})
# The largest secret content, in bytes (a license file, a key, a keytab).
MAX_CONTENT = MAX_TEXT
_PATH = Field("path", "str")
_ODD = re.compile(r"[\x00-\x1f\x7f\\]")


def secret_path(value: str, label: str) -> str:
    """Where the install script writes a secret, below the node's system
    root: an absolute path to a file, normalised (``//`` and ``.`` parts
    dropped). ``..`` parts, relative paths, a directory (``/`` at the end),
    control characters and backslashes are refused: the path must not
    leave the system root, nor mean something else to the shell."""
    if not value.startswith("/"):
        raise Invalid(f"{label}: {value!r} must be an absolute path")
    if _ODD.search(value):
        raise Invalid(f"{label}: {value!r} holds control characters or backslashes")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Invalid(f"{label}: {value!r} must not hold '..' parts")
    if not parts or value.endswith(("/", "/.")):
        raise Invalid(f"{label}: {value!r} must name a file, not a directory")
    return "/" + "/".join(parts)


def secret_content(value: Any, label: str) -> bytes | None:
    """A secret's content as sent: base64 of any bytes, or plain text that
    cannot be taken for base64 (without NUL characters); None when absent
    (null, or false: the luna CLI's "no --content given")."""
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise Invalid(f"{label}: expected a string, got {shown}")
    raw = wire.base64_bytes(value)
    if raw is None:
        if "\x00" in value:
            raise Invalid(f"{label}: plain text must not contain NUL characters; send base64")
        raw = value.encode("utf-8")
    if len(raw) > MAX_CONTENT:
        raise Invalid(f"{label}: longer than {MAX_CONTENT} bytes")
    return raw


def _secret_item(raw: Any, label: str) -> tuple[str, bytes | None, str | None, str | None]:
    if not isinstance(raw, dict):
        raise Invalid(f"{label}: expected a secret object")
    unknown = set(raw) - SECRET_KEYS
    if unknown:
        raise Invalid(f"{label}.{min(unknown)}: unknown secret field")
    name = raw.get("secretname", raw.get("name"))
    if not isinstance(name, str) or not SECRET_NAME_RE.fullmatch(name):
        raise Invalid(f"{label}.secretname: {name!r} is not a valid secret name")
    content = secret_content(raw.get("content"), f"{label}.content")
    path = coerce(_PATH, raw.get("path"), f"{label}.path")
    if path is not None:
        path = secret_path(path, f"{label}.path")
    new = raw.get("newsecretname")
    if new is not None and (not isinstance(new, str) or not SECRET_NAME_RE.fullmatch(new)):
        raise Invalid(f"{label}.newsecretname: {new!r} is not a valid secret name")
    return name, content, path, new


def put_secrets(tx: Tx, owner_kind: str, owner: str, items: Any, only: str | None = None) -> str:
    """Create or update secrets of an owner; answers 'created', 'updated'
    or 'unchanged'."""
    obj = require(tx, owner_kind, owner)
    if not isinstance(items, list) or not items:
        raise Invalid(f"secrets: expected a non-empty list of secrets for {owner_kind} {owner}")
    mine = tx.edit(obj)
    outcome = "unchanged"
    for index, raw in enumerate(items):
        name, content, path, new = _secret_item(raw, f"{owner}[{index}]")
        if only is not None and name != only:
            raise Invalid(
                f"{owner}[{index}].secretname: {name!r} differs from {only!r} in the path"
            )
        current = mine.secret(name)
        if current is None:
            if content is None:
                raise Invalid(f"{owner}[{index}].content: required to create secret {name!r}")
            mine.secrets.append(Secret(name, content, path))
            current = mine.secrets[-1]
            outcome = "created"
        else:
            changed = False
            if content is not None and content != current.content:
                current.content = content
                changed = True
            if "path" in raw and path != current.path:
                current.path = path
                changed = True
            if changed and outcome != "created":
                outcome = "updated"
        if new is not None and new != name:
            if mine.secret(new) is not None:
                raise Invalid(f"{owner}[{index}].newsecretname: secret {new!r} already exists")
            current.name = new
            if outcome != "created":
                outcome = "updated"
    return outcome


def clone_secret(tx: Tx, owner_kind: str, owner: str, name: str, items: Any) -> None:
    """Copy secret ``name`` to the item's ``newsecretname``."""
    obj = require(tx, owner_kind, owner)
    source = obj.secret(name)
    if source is None:
        raise NotFound(f"{owner_kind} {owner} has no secret {name!r}")
    if not isinstance(items, list) or len(items) != 1:
        raise Invalid("secrets: expected one secret carrying newsecretname")
    _, content, path, new = _secret_item(items[0], f"{owner}[0]")
    if new is None:
        raise Invalid("newsecretname: required to clone a secret")
    mine = tx.edit(obj)
    if mine.secret(new) is not None:
        raise Invalid(f"newsecretname: secret {new!r} already exists")
    mine.secrets.append(
        Secret(
            new,
            content if content is not None else source.content,
            # null (the luna CLI's "no --path given") keeps the source's path
            path if items[0].get("path") is not None else source.path,
        )
    )


def delete_secret(tx: Tx, owner_kind: str, owner: str, name: str) -> None:
    """Drop secret ``name`` of an owner."""
    obj = require(tx, owner_kind, owner)
    if obj.secret(name) is None:
        raise NotFound(f"{owner_kind} {owner} has no secret {name!r}")
    mine = tx.edit(obj)
    mine.secrets = [s for s in mine.secrets if s.name != name]
