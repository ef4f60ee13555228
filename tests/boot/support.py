"""Helpers for the HTTP boot tests: the whole API in process (StubTreq) with a
files folder and a service registry, and a sample cluster whose osimage can
boot."""

from __future__ import annotations

import shutil
from typing import Any

from treq.testing import StubTreq
from twisted.internet import task

from luna2d.resources.root import build
from luna2d.resources.service import Services
from tests.support import ADMIN, API, env, the_reactor

KERNEL = "compute-vmlinuz-4.18.0-372.26.1.el8_6.x86_64"
INITRD = "compute-initramfs-4.18.0-372.26.1.el8_6.x86_64"
TARBALL = "compute.tar.gz"
MAC = "18:c0:4d:45:00:eb"


class BootAPI(API):
    """The API with ``[FILES] IMAGE_FILES`` in a temporary folder and a
    service registry the test controls; ``case`` removes it all after the test."""

    def __init__(self, case: Any, enabled: dict[str, bool] | None = None) -> None:
        super().__init__()
        folder = self.cfg.database.database.parent
        case.addCleanup(shutil.rmtree, str(folder), True)
        case.addCleanup(self.store.pool.close)
        self.files = folder / "files"
        self.files.mkdir()
        self.services = Services(enabled=dict(enabled or {"dhcp": False, "dns": False}))
        self.resource = build(self.store, self.auth, ADMIN, self.files, self.services)
        self.treq = StubTreq(self.resource)

    def text(self, path: str, token: Any = None, **kw: Any) -> tuple[int, Any, dict]:
        """(status, body, headers) of a GET sent without a token unless given."""
        return self.request("GET", path, token=token, **kw)

    def script(self, path: str) -> str:
        """The iPXE script a GET of ``path`` without a token answers, which
        must be 200 plain text starting with ``#!ipxe``."""
        code, body, headers = self.text(path)
        assert code == 200, (path, code, body)
        assert headers[b"Content-Type"] == [b"text/plain; charset=utf-8"], (
            path,
            headers[b"Content-Type"],
        )
        assert body.startswith("#!ipxe\n"), (path, body[:40])
        return body

    def bootable(self) -> None:
        """Give the sample osimage a kernel, an initrd and a tarball."""
        code, body = self.post(
            "/config/osimage/compute",
            env(
                "osimage",
                "compute",
                {"kernelfile": KERNEL, "initrdfile": INITRD, "imagefile": TARBALL},
            ),
        )
        assert code == 204, body

    def update(self, kind: str, name: str, fields: dict) -> None:
        code, body = self.post(f"/config/{kind}/{name}", env(kind, name, fields))
        assert code in (201, 204), (code, body)

    def node(self, name: str) -> dict:
        return self.show("node", name)

    def on_loopback(self, node: str, dhcp: bool = False) -> None:
        """Give ``node``'s provisioning interface the address 127.0.0.1:
        StubTreq's requests come from there."""
        if self.get("/config/network/loop", token=self.admin_token)[0] == 404:
            self.update("network", "loop", {"network": "127.0.0.0/8", "dhcp": dhcp})
        self.update(
            "node",
            node,
            {"interfaces": [{"interface": "BOOTIF", "network": "loop", "ipaddress": "127.0.0.1"}]},
        )

    def arm(self, node: str, body: Any = None) -> None:
        """Arm ``node`` as an admin would (POST /config/node/<node>/_arm)."""
        code, answer = self.post(f"/config/node/{node}/_arm", body)
        assert code == 204, (code, answer)


async def settle(api: API, d: Any) -> Any:
    """The result of ``d``, flushing StubTreq while the real reactor turns
    (at most about two seconds)."""
    box: list = []
    d.addBoth(box.append)
    reactor = the_reactor()
    for _ in range(2000):
        api.treq.flush()
        if box:
            break
        await task.deferLater(reactor, 0.001, lambda: None)
    assert box, "the request did not complete"
    if hasattr(box[0], "raiseException"):
        box[0].raiseException()
    return box[0]


async def fetch(
    api: API, method: str, path: str, headers: dict | None = None, token: str | None = None
) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request through StubTreq, flushing
    while the real reactor runs the producers that write the body."""
    all_headers = dict(headers or {})
    if token:
        all_headers["x-access-tokens"] = token
    response = await settle(
        api, api.treq.request(method, "http://luna" + path, headers=all_headers)
    )
    body = await settle(api, api.treq.content(response))
    return response.code, {k: v for k, v in response.headers.getAllRawHeaders()}, body
