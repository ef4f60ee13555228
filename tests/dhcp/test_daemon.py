"""The real daemon (``twistd luna2d`` in its own process) with ``[DHCP]
ENABLED = yes`` serving the host end of a veth pair whose other end is in a
namespace the test creates: objects made over real HTTP are served to
udhcpc; leases of the dynamic range are written through the daemon's
adbapi pool and survive a restart; a missing interface stops start-up
with a message naming it."""

from __future__ import annotations

from typing import Any

from tests.dhcp.support import dhcp_ini, lab_with_node
from tests.integration.test_daemon import Daemon, DaemonCase

KNOWN_MAC = "02:4c:00:00:02:21"
FIRST_UNKNOWN = "02:4c:00:00:0a:01"
SECOND_UNKNOWN = "02:4c:00:00:0a:02"


class DaemonDHCPTests(DaemonCase):
    async def test_serves_and_keeps_leases(self) -> None:
        """A node made over HTTP gets its fixed address (lease time from the
        ini); an unknown machine gets .100; after a restart that lease is
        still held: another machine gets .101 and the first gets .100 again."""
        lab, daemon, _token = await lab_with_node(
            self, KNOWN_MAC, "node201", KNOWN_MAC, {"domain": "lab.example"}
        )
        code, health = await daemon.call("GET", "/monitor/service/dhcp")
        self.assertEqual(code, 200, health)
        self.assertIn(f"{lab.host_if} ({lab.server})", health["monitor"]["service"]["dhcp"])
        known = await lab.udhcpc("-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x4d:69505845")
        self.assertEqual(
            (known["ip"], known["hostname"], known["domain"]),
            (lab.address(21), "node201", "lab.example"),
        )
        self.assertEqual(known["lease"], "1800")
        self.assertEqual(known["serverid"], lab.server)
        self.assertEqual(known["boot_file"], f"http://{lab.server}:{daemon.port}/boot/short")
        await lab.set_mac(FIRST_UNKNOWN)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(100))
        await daemon.stop()
        await daemon.start()
        await lab.set_mac(SECOND_UNKNOWN)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(101))
        await lab.set_mac(FIRST_UNKNOWN)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(100))
        reason: Any = await daemon.stop()
        self.assertNotIn("Traceback", daemon.output(), reason)

    async def test_missing_interface(self) -> None:
        """An interface that does not exist stops start-up with a message
        naming [DHCP] INTERFACES and the interface, and no traceback."""
        daemon = Daemon(self, ini="")
        daemon.ini.write_text(dhcp_ini(daemon.port, "nosuchif9"))
        with self.assertRaises(AssertionError):
            await daemon.start()
        output = daemon.output()
        self.assertIn("[DHCP] INTERFACES: interface nosuchif9 does not exist", output)
        self.assertNotIn("Traceback", output)

    async def test_no_interfaces(self) -> None:
        """ENABLED = yes without INTERFACES stops start-up, naming the key."""
        daemon = Daemon(self, ini="")
        daemon.ini.write_text(dhcp_ini(daemon.port, ""))
        with self.assertRaises(AssertionError):
            await daemon.start()
        self.assertIn("[DHCP] INTERFACES: name the interfaces to serve", daemon.output())
        self.assertNotIn("Traceback", daemon.output())
