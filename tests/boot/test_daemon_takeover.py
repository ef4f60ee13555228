"""The takeover of issue 8 against the real daemon (``twistd luna2d`` with
``[DHCP] ENABLED = yes``) and a real DHCP client (busybox udhcpc) in a
network namespace the test creates: a stranger's machine asks the manual
boot to give a node its MAC, then asks DHCP for an address. It must not get
the node's address; once the admin arms the node, the same steps do (so the
test can tell the two apart)."""

from __future__ import annotations

from tests.dhcp.support import lab_with_node
from tests.integration.test_daemon import DaemonCase

NODE_MAC = "02:4c:00:00:08:21"
STRANGER = "02:4c:00:00:0e:01"


class TakeoverTests(DaemonCase):
    async def test_stranger_cannot_claim_a_node(self) -> None:
        """GET /boot/manual/hostname/node821/<stranger> without a token is
        403 and leaves the node's MAC; DHCP from the stranger's MAC then gets
        an address of the dynamic range, not node821's; the discovery menu
        names no node. After the admin arms node821 the same request moves
        the MAC, and DHCP from that MAC gets the node's address."""
        lab, daemon, token = await lab_with_node(self, STRANGER, "node821", NODE_MAC, {})

        code, body = await daemon.call("GET", f"/boot/manual/hostname/node821/{STRANGER}")
        self.assertEqual(code, 403, body)
        self.assertIn("already has a MAC", body["message"])
        node = (await daemon.get("/config/node/node821", token))["config"]["node"]["node821"]
        self.assertEqual(node["macaddr"], NODE_MAC)
        lease = await lab.udhcpc()
        self.assertEqual(lease["ip"], lab.address(100))
        code, menu = await daemon.call("GET", f"/boot/search/mac/{STRANGER}")
        self.assertEqual(code, 200)
        self.assertNotIn("node821", menu)
        self.assertNotIn(NODE_MAC, menu)

        code, body = await daemon.call("POST", "/config/node/node821/_arm", token=token)
        self.assertEqual(code, 204, body)
        code, script = await daemon.call("GET", f"/boot/manual/hostname/node821/{STRANGER}")
        self.assertEqual(code, 200, script)
        self.assertIn("node821", script)
        node = (await daemon.get("/config/node/node821", token))["config"]["node"]["node821"]
        self.assertEqual(node["macaddr"], STRANGER)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(21))
        self.assertNotIn("Traceback", daemon.output())
