"""Real DHCP clients against luna2d's DHCP server, over real sockets, in
network namespaces the tests create: busybox ``udhcpc`` and ISC
``dhclient`` in a client namespace, joined by a veth pair to the root
namespace, where luna2d's DHCPServer is bound to the host end
(SO_BINDTODEVICE). The server runs on a real store (SQLite file, sample
cluster plus a ``lab`` network, group and node made through the HTTP API in
process) with the boot index and the lease table wired as luna2d.tap wires
them.

What is pinned: a known node's fixed address with router, DNS, domain,
hostname, NTP, lease time and server identifier, for both clients; an
unknown machine's dynamic lease, kept in the store; the boot file by the
template table for iPXE and PXE firmware; API changes (new address,
netboot flag, new MAC) visible in the very next answer; and the range
holding under attack from a raw client (``tests.dhcp.rawclient``) in the
namespace: REQUESTs from machines offered nothing bind nothing, and after
3,000 DISCOVERs from made-up MACs a new machine and a known node are still
served."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer

from luna2d.protocols.dhcp.policy import Policy, Settings
from luna2d.protocols.dhcp.protocol import DHCPServer
from luna2d.store import bootindex, leases
from tests.dhcp.netns import CLIENT_IF, Lab, the_reactor
from tests.integration.test_daemon import DaemonCase
from tests.netns_support import run_limited
from tests.support import API, result_of

KNOWN_MAC = "02:4c:00:00:01:21"
UNKNOWN_MAC = "02:4c:00:00:09:99"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PXE_IPXE = ("-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x4d:69505845")  # option 77 "iPXE"


def lab_objects(api: API, lab: Lab, case: Any) -> None:
    """The lab network (dhcp on, range .100-.110), a group on it and node101 with KNOWN_MAC."""

    def post(path: str, kind: str, name: str, body: dict) -> None:
        code, answer = api.post(path, {"config": {kind: {name: body}}})
        case.assertIn(code, (201, 204), f"POST {path}: {answer}")

    post(
        "/config/network/lab",
        "network",
        "lab",
        {
            "network": lab.network,
            "gateway": lab.address(1),
            "nameserver_ip": lab.address(2),
            "ntp_server": lab.address(3),
            "dhcp": True,
            "dhcp_range_begin": lab.address(100),
            "dhcp_range_end": lab.address(110),
        },
    )
    post(
        "/config/group/labgroup",
        "group",
        "labgroup",
        {
            "domain": "lab.example",
            "netboot": True,
            "bootmenu": False,
            "interfaces": [{"interface": "BOOTIF", "network": "lab"}],
        },
    )
    post(
        "/config/node/node101",
        "node",
        "node101",
        {
            "group": "labgroup",
            "interfaces": [
                {"interface": "BOOTIF", "ipaddress": lab.address(21), "macaddress": KNOWN_MAC}
            ],
        },
    )


class LabCase(DaemonCase):
    """A lab namespace and a DHCPServer over a real store, wired as luna2d.tap does."""

    def setUp(self) -> defer.Deferred:  # type: ignore[override]
        super().setUp()
        return defer.ensureDeferred(self._set_up())

    async def _set_up(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="luna2d-dhcp-it-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)
        self.lab = await Lab(self, self.folder).create(KNOWN_MAC)
        self.api = API()
        self.store = self.api.store
        lab_objects(self.api, self.lab, self)
        store = self.store
        indexer = bootindex.BootIndexer(store)
        self.server = DHCPServer(
            the_reactor(),
            [self.lab.host_if],
            Policy(indexer.current, Settings(lease_time=3600, http_port=7050)),
            load=lambda: leases.load(store.pool),
            save=lambda changes: leases.apply(store.pool, changes),
        )
        self.server.privilegedStartService()
        self.server.startService()
        self.addCleanup(self.server.stopService)

    def set_node(self, fields: dict) -> None:
        code, answer = self.api.post(
            "/config/node/node101", {"config": {"node": {"node101": fields}}}
        )
        self.assertIn(code, (201, 204), answer)


class ClientTests(LabCase):
    async def test_udhcpc_known_node(self) -> None:
        """udhcpc on a known node's MAC gets its fixed address, mask, router,
        DNS, domain, hostname, NTP, lease time, and the host end's address as
        server identifier and next-server."""
        got = await self.lab.udhcpc()
        lab = self.lab
        self.assertEqual(got["ip"], lab.address(21))
        self.assertEqual(got["subnet"], "255.255.255.0")
        self.assertEqual(got["router"], lab.address(1))
        self.assertEqual(got["dns"].split(), [lab.address(2)])
        self.assertEqual(got["domain"], "lab.example")
        self.assertEqual(got["hostname"], "node101")
        self.assertEqual(got["ntpsrv"].split(), [lab.address(3)])
        self.assertEqual(got["lease"], "3600")
        self.assertEqual(got["serverid"], lab.server)
        self.assertEqual(got["siaddr"], lab.server)
        self.assertEqual(self.server.stats["offer"], 1)
        self.assertEqual(self.server.stats["ack"], 1)

    async def test_dhclient_known_node(self) -> None:
        """ISC dhclient on a known node's MAC gets the same: fixed address,
        mask, routers, DNS, domain, host name, NTP, lease time, server id."""
        got = await self.lab.dhclient()
        lab = self.lab
        self.assertEqual(got["fixed-address"], lab.address(21))
        self.assertEqual(got["subnet-mask"], "255.255.255.0")
        self.assertEqual(got["routers"], lab.address(1))
        self.assertEqual(got["domain-name-servers"], lab.address(2))
        self.assertEqual(got["domain-name"], "lab.example")
        self.assertEqual(got["host-name"], "node101")
        self.assertEqual(got["ntp-servers"], lab.address(3))
        self.assertEqual(got["dhcp-lease-time"], "3600")
        self.assertEqual(got["dhcp-server-identifier"], lab.server)

    async def test_unknown_machine_leases(self) -> None:
        """An unknown MAC gets the first address of the dynamic range and the
        domain but no host name; the lease is in the store; the machine gets
        the same address again; another machine gets the next one."""
        await self.lab.set_mac(UNKNOWN_MAC)
        got = await self.lab.udhcpc()
        self.assertEqual(got["ip"], self.lab.address(100))
        self.assertEqual(got["domain"], "cluster")
        self.assertNotIn("hostname", got)
        await self.server.writer.flushed()
        rows = result_of(leases.load(self.store.pool))
        self.assertEqual(
            [(r.address, r.mac, r.state) for r in rows],
            [(self.lab.address(100), UNKNOWN_MAC, "bound")],
        )
        self.assertEqual((await self.lab.udhcpc())["ip"], self.lab.address(100))
        await self.lab.set_mac("02:4c:00:00:09:98")
        self.assertEqual((await self.lab.udhcpc())["ip"], self.lab.address(101))

    async def test_api_changes_next_answer(self) -> None:
        """Changes through the API show in the next DHCP answer: a new address,
        the netboot flag (boot file /boot/short, then /boot/disk for iPXE), a
        MAC newly given to the node (dynamic address before, fixed after)."""
        lab = self.lab
        first = await lab.udhcpc(*PXE_IPXE)
        self.assertEqual(first["ip"], lab.address(21))
        self.assertEqual(first["boot_file"], f"http://{lab.server}:7050/boot/short")
        self.set_node({"interfaces": [{"interface": "BOOTIF", "ipaddress": lab.address(42)}]})
        second = await lab.udhcpc(*PXE_IPXE)
        self.assertEqual(second["ip"], lab.address(42))
        self.set_node({"netboot": False})
        self.assertEqual(
            (await lab.udhcpc(*PXE_IPXE))["boot_file"], f"http://{lab.server}:7050/boot/disk"
        )
        await lab.set_mac(UNKNOWN_MAC)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(100))
        self.set_node({"interfaces": [{"interface": "BOOTIF", "macaddress": UNKNOWN_MAC}]})
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(42))

    async def test_pxe_firmware_boot_file(self) -> None:
        """PXE firmware (vendor class PXEClient, option 93 arch 0 then 7) is
        told to fetch undionly.kpxe, then ipxe.efi, from the next-server."""
        bios = await self.lab.udhcpc("-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000")
        self.assertEqual((bios["boot_file"], bios["siaddr"]), ("undionly.kpxe", self.lab.server))
        efi = await self.lab.udhcpc("-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007")
        self.assertEqual(efi["boot_file"], "ipxe.efi")


async def raw_client(
    lab: Lab, kind: str, count: int, addresses: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run tests.dhcp.rawclient in the lab's namespace; its JSON summary."""
    argv = lab.netns_exec(
        sys.executable,
        "-m",
        "tests.dhcp.rawclient",
        "--interface",
        CLIENT_IF,
        "--kind",
        kind,
        "--count",
        str(count),
        "--addresses",
        ",".join(addresses),
    )
    output, reason = await run_limited(argv, 60, env={"PYTHONPATH": REPO})
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"rawclient failed ({reason}):\n{output}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class AttackTests(LabCase):
    """The attacks of issue 8 finding 5, over the veth pair."""

    async def test_requests_without_offer_bind_nothing(self) -> None:
        """51 INIT-REBOOT REQUESTs from made-up MACs, for the range's
        addresses in turn: no ACK and no lease in the store; an unknown
        machine's udhcpc then gets the first range address."""
        lab = self.lab
        span = tuple(lab.address(host) for host in range(100, 111))
        got = await raw_client(lab, "request", 51, span)
        self.assertEqual(got["sent"], 51)
        self.assertEqual(got["replies"].get("ack", 0), 0, got)
        self.assertEqual(self.server.stats["unoffered"], 51)
        await self.server.writer.flushed()
        self.assertEqual(result_of(leases.load(self.store.pool)), [])
        await lab.set_mac(UNKNOWN_MAC)
        self.assertEqual((await lab.udhcpc())["ip"], lab.address(100))

    async def test_discover_flood_leaves_room(self) -> None:
        """3,000 DISCOVERs from made-up MACs: offers follow the bucket (at
        most the burst of 100 and 20 a second), at most half of the 11
        range addresses are held; right after, a known node and a new
        machine each get their address (the old server held the whole range
        for 60 s, and udhcpc's four tries got nothing)."""
        lab = self.lab
        got = await raw_client(lab, "discover", 3000)
        held = len(self.server.policy.offers)
        known = await lab.udhcpc()
        self.assertEqual(known["ip"], lab.address(21))
        await lab.set_mac(UNKNOWN_MAC)
        fresh = await lab.udhcpc()
        self.assertIn(fresh["ip"], {lab.address(host) for host in range(100, 111)})
        await self.server.writer.flushed()
        rows = result_of(leases.load(self.store.pool))
        self.assertEqual([(r.address, r.mac) for r in rows], [(fresh["ip"], UNKNOWN_MAC)])
        offers = got["replies"].get("offer", 0)
        self.assertGreater(offers, 0, got)
        self.assertLessEqual(offers, 100 + 20 * 60, got)
        self.assertGreater(self.server.stats["throttled"], 1000)
        self.assertLessEqual(held, 11 // 2)
