"""/files/<name> through the whole HTTP stack (StubTreq, with the real reactor
turning the file producers): the kernels and initrds an osimage names are
open, image tarballs and every other file need a token, Range requests answer
the asked bytes, tarballs go out as stored bytes, and no name reaches outside
[FILES] IMAGE_FILES. The same over real sockets with curl is in
tests.boot.test_daemon_boot."""

from __future__ import annotations

import json
import os
import shutil

from twisted.trial import unittest

from luna2d.resources.files import is_tarball
from tests.boot.support import INITRD, KERNEL, TARBALL, BootAPI, fetch
from tests.support import API, ReactorCase

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, every byte value


class FilesTests(ReactorCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = BootAPI(self)
        self.api.bootable()
        for name in (KERNEL, INITRD, TARBALL, "compute.torrent", ".hidden"):
            (self.api.files / name).write_bytes(PAYLOAD)
        self.outside = self.api.files.parent / "outside.tar"
        self.outside.write_bytes(b"outside")

    async def test_boot_files_open(self) -> None:
        """The kernel and initrd of an osimage come without a token, whole,
        as octet streams."""
        for name in (KERNEL, INITRD):
            code, headers, body = await fetch(self.api, "GET", f"/files/{name}")
            self.assertEqual(code, 200)
            self.assertEqual(body, PAYLOAD)
            self.assertEqual(headers[b"Content-Type"], [b"application/octet-stream"])

    async def test_ipxe_binaries_open(self) -> None:
        """iPXE binaries (what UEFI HTTP boot firmware is told to fetch) come
        without a token: the image folder's own build first, else the one in
        the iPXE directory, reached through its links as Debian ships them;
        other names there stay unreachable."""
        from treq.testing import StubTreq

        from luna2d.resources.root import build
        from tests.support import ADMIN

        ipxe = self.api.files.parent / "ipxe"
        ipxe.mkdir()
        (self.api.files.parent / "real.efi").write_bytes(b"efi-binary")
        os.symlink(self.api.files.parent / "real.efi", ipxe / "ipxe.efi")
        (ipxe / "undionly.kpxe").write_bytes(b"kpxe-from-ipxe-dir")
        (ipxe / "notes.txt").write_bytes(b"not served")
        (self.api.files / "undionly.kpxe").write_bytes(b"kpxe-from-image-folder")
        self.api.resource = build(
            self.api.store, self.api.auth, ADMIN, self.api.files, self.api.services, ipxe=ipxe
        )
        self.api.treq = StubTreq(self.api.resource)
        code, _, body = await fetch(self.api, "GET", "/files/ipxe.efi")
        self.assertEqual((code, body), (200, b"efi-binary"))
        code, _, body = await fetch(self.api, "GET", "/files/undionly.kpxe")
        self.assertEqual((code, body), (200, b"kpxe-from-image-folder"))
        self.assertEqual((await fetch(self.api, "GET", "/files/snponly.efi"))[0], 404)
        self.assertEqual((await fetch(self.api, "GET", "/files/notes.txt"))[0], 401)

    async def test_tarball_needs_token(self) -> None:
        """A tarball without a token (or with a forged one) is 401 as JSON;
        with any valid token, node tokens included, it is served whole, as
        stored (the raw headers, with no Content-Encoding, are checked over a
        real socket in tests.boot.test_daemon_boot)."""
        for token in (None, "forged"):
            code, _, body = await fetch(self.api, "GET", f"/files/{TARBALL}", token=token)
            self.assertEqual(code, 401)
            self.assertIn("token", json.loads(body)["message"])
        for token in (self.api.admin_token, self.api.token("node", node="node001")):
            code, _, body = await fetch(self.api, "GET", f"/files/{TARBALL}", token=token)
            self.assertEqual((code, body), (200, PAYLOAD))

    async def test_other_files_need_token(self) -> None:
        """A file no osimage names as kernel or initrd (a torrent) needs a token."""
        self.assertEqual((await fetch(self.api, "GET", "/files/compute.torrent"))[0], 401)
        code, _, body = await fetch(
            self.api, "GET", "/files/compute.torrent", token=self.api.admin_token
        )
        self.assertEqual((code, body), (200, PAYLOAD))

    async def test_range(self) -> None:
        """A Range request answers 206 with exactly the asked bytes and a
        Content-Range; an open range runs to the end; a range past the end is 416."""
        code, headers, body = await fetch(
            self.api, "GET", f"/files/{KERNEL}", {"Range": "bytes=100-199"}
        )
        self.assertEqual((code, body), (206, PAYLOAD[100:200]))
        self.assertEqual(headers[b"Content-Range"], [f"bytes 100-199/{len(PAYLOAD)}".encode()])
        code, _, body = await fetch(self.api, "GET", f"/files/{KERNEL}", {"Range": "bytes=16000-"})
        self.assertEqual((code, body), (206, PAYLOAD[16000:]))
        code, _, _ = await fetch(self.api, "GET", f"/files/{KERNEL}", {"Range": "bytes=99999-"})
        self.assertEqual(code, 416)

    async def test_escapes_404(self) -> None:
        """Names that try to leave the folder and hidden names are 404 with
        or without a token; so are, for a token holder, a link leading out,
        a subfolder and a missing file; an open boot file name that is a link
        out is 404 without a token."""
        os.symlink(self.outside, self.api.files / "link.tar")
        os.symlink(self.outside, self.api.files / "link-initrd")
        self.api.update("osimage", "compute", {"initrdfile": "link-initrd"})
        (self.api.files / "sub").mkdir()
        (self.api.files / "sub" / "x").write_bytes(b"x")
        anyone = [
            "/files/../outside.tar",
            "/files/..%2Foutside.tar",
            "/files/%2e%2e%2foutside.tar",
            "/files/%2e%2e",
            "/files/.hidden",
            "/files/sub%2Fx",
            "/files/sub/x",
            "/files/",
            "/files",
            "/files/link-initrd",
        ]
        for path in anyone:
            for token in (None, self.api.admin_token):
                code, _, body = await fetch(self.api, "GET", path, token=token)
                self.assertEqual(code, 404, (path, token, body))
                self.assertIn("message", json.loads(body))
        for path in ("/files/link.tar", "/files/sub", "/files/missing"):
            code, _, body = await fetch(self.api, "GET", path, token=self.api.admin_token)
            self.assertEqual(code, 404, (path, body))
            self.assertNotIn(b"outside", body)

    async def test_open_name_must_exist(self) -> None:
        """A kernel an osimage names but the folder lacks is 404, not 500."""
        (self.api.files / KERNEL).unlink()
        self.assertEqual((await fetch(self.api, "GET", f"/files/{KERNEL}"))[0], 404)

    async def test_head(self) -> None:
        """HEAD answers the file's length without its body."""
        code, headers, body = await fetch(self.api, "HEAD", f"/files/{INITRD}")
        self.assertEqual((code, body), (200, b""))
        self.assertEqual(headers[b"Content-Length"], [str(len(PAYLOAD)).encode()])


class NamesTests(unittest.TestCase):
    def test_tarball_names(self) -> None:
        """What counts as an image tarball, by name."""
        for name in (
            "a.tar",
            "a.tar.gz",
            "a.tgz",
            "a.tar.zst",
            "a.tar.bz2",
            "a.tar.xz",
            "A.TAR.GZ",
            "a.tbz2",
        ):
            self.assertTrue(is_tarball(name), name)
        for name in ("vmlinuz", "initrd.img", "a.torrent", "tar", "a.gz", "a.tar.gz.torrent"):
            self.assertFalse(is_tarball(name), name)

    def test_unconfigured(self) -> None:
        """Without a files folder (the bare API), /files answers 404 JSON."""
        api = API()
        self.addCleanup(shutil.rmtree, str(api.cfg.database.database.parent), True)
        self.addCleanup(api.store.pool.close)
        code, body = api.get("/files/anything")
        self.assertEqual(code, 404)
        self.assertIn("IMAGE_FILES", body["message"])
