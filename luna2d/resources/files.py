# -*- test-case-name: tests.boot.test_files -*-
"""``/files/<name>``: kernels, initrds and image tarballs from ``[FILES]
IMAGE_FILES``.

Files are served by ``twisted.web.static.File``: Range requests, HEAD, and a
producer that reads the file in chunks as the client takes them, so a large
image never sits in memory or holds the reactor. The kernels and initrds an
osimage names are open (iPXE fetches them without credentials); everything
else, image tarballs first of all, needs a valid token. A name is one path
segment inside the folder: anything else, hidden files, directories and
links leading outside are "not found"."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from klein import Klein
from twisted.web import static

from luna2d.errors import NotFound
from luna2d.resources import common
from luna2d.resources.auth import Auth

TARBALL = re.compile(
    r"\.(tar|tgz|tbz|tbz2|txz|tzst|tar\.(gz|bz2|xz|zst|zstd|lz4|lzma))$", re.IGNORECASE
)
# iPXE binaries are open: UEFI HTTP boot firmware fetches them from /files.
IPXE_BINARY = re.compile(r"\.(efi|kpxe|kkpxe|pxe|lkrn)$", re.IGNORECASE)


def is_tarball(name: str) -> bool:
    """Image tarballs, by their name."""
    return TARBALL.search(name) is not None


def check_name(name: str) -> str:
    """One plain path segment: no separators, no hidden or dot names."""
    if not name or name.startswith(".") or any(ch in name for ch in "/\\\x00"):
        raise NotFound(f"file {name!r} does not exist")
    return name


def locate(folder: Path | None, name: str) -> Path:
    """The regular file ``name`` directly inside ``folder``, or NotFound."""
    missing = NotFound(f"file {name!r} does not exist")
    if folder is None:
        raise NotFound("no file folder is configured ([FILES] IMAGE_FILES)")
    check_name(name)
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.dirname(path) != root or not os.path.isfile(path):
        raise missing
    return Path(path)


def locate_ipxe(folder: Path | None, name: str) -> Path:
    """An iPXE binary of the distribution's directory. Its entries may be
    links (Debian's ipxe.efi points into /boot); the name is one plain
    segment, so only entries of that directory are reachable."""
    check_name(name)
    # os.path.isfile, not Path.is_file: a name too long for the file system is "not found" too.
    if folder is None or not os.path.isfile(folder / name):
        raise NotFound(f"file {name!r} does not exist")
    return Path(os.path.realpath(folder / name))


class FilesAPI:
    """Handlers under /files."""

    app = Klein()
    common.install_error_handlers(app)

    def __init__(
        self, store: Any, auth: Auth, folder: Path | None, ipxe: Path | None = None
    ) -> None:
        self.store = store
        self.auth = auth
        self.folder = folder
        self.ipxe = ipxe

    @app.route("/<name>", methods=["GET", "HEAD"])
    def file(self, request: Any, name: str) -> Any:
        """The file, with Range support; a token unless it is a boot file
        (an osimage's kernel or initrd, or an iPXE binary)."""
        check_name(name)
        if IPXE_BINARY.search(name):
            # The image folder may hold its own build; else the distribution's.
            try:
                path = locate(self.folder, name)
            except NotFound:
                path = locate_ipxe(self.ipxe, name)
            return self._serve(path)
        if is_tarball(name) or name not in self.store.boot_file_names():
            self.auth.need(request)
        return self._serve(locate(self.folder, name))

    @staticmethod
    def _serve(path: Path) -> Any:
        served = static.File(str(path), defaultType="application/octet-stream")
        # Bytes as stored: no Content-Encoding that would make clients unpack a tarball.
        served.contentEncodings = {}
        served.contentTypes = {}
        return served
