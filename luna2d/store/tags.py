# -*- test-case-name: tests.test_objects -*-
"""OS image tags: a named copy of an image's kernel, initrd and image
file names, which nodes and groups boot through ``osimagetag``."""

from __future__ import annotations

from typing import Any

from luna2d.errors import Invalid, NotFound
from luna2d.model.fields import NAME_RE
from luna2d.model.kinds import OSIMAGE, referrers
from luna2d.store.body import require
from luna2d.store.state import Tx

TAGGED_FILES = ("kernelfile", "initrdfile", "imagefile")


def put_tag(tx: Tx, osimage: str, raw: Any) -> bool:
    """Tag the image's current files; True when the tag is new."""
    image = require(tx, OSIMAGE.name, osimage)
    if not isinstance(raw, dict) or set(raw) - {"tag", "name"}:
        raise Invalid("tag: expected an object with the field tag")
    tag = raw.get("tag")
    if not isinstance(tag, str) or not NAME_RE.fullmatch(tag):
        raise Invalid(f"tag: {tag!r} is not a valid tag name")
    mine = tx.edit(image)
    tags = dict(mine.data.get("tags") or {})
    created = tag not in tags
    tags[tag] = {key: mine.data.get(key) for key in TAGGED_FILES}
    mine.data["tags"] = tags
    return created


def delete_tag(tx: Tx, osimage: str, tag: str) -> None:
    """Drop a tag, refused while an object boots it."""
    image = require(tx, OSIMAGE.name, osimage)
    tags = dict(image.data.get("tags") or {})
    if tag not in tags:
        raise NotFound(f"osimage {osimage!r} has no tag {tag!r}")
    for kind, f in referrers(OSIMAGE.name):
        if kind.field("osimagetag") is None:
            continue
        for obj in tx.all(kind.name):
            if obj.data.get("osimagetag") == tag and obj.data.get(f.name) in (image.id, None):
                raise Invalid(f"tag {tag!r} is still used by {kind.name} {obj.name}")
    del tags[tag]
    mine = tx.edit(image)
    mine.data["tags"] = tags
