"""A real machine network-boots against the real daemon. QEMU (software
emulation, 256 MB, no disk) sits on a tap device on the boot bridge of a
namespace the test creates (tests/e2e/bootlab.py); ``twistd luna2d`` runs in
that namespace with ``[DHCP]`` on the bridge and ``[TFTP]`` on port 69; the
node is created over the API with the VM's MAC on its BOOTIF interface.

- UEFI (OVMF, the NIC without an option ROM, so the firmware's own PXE
  runs): DHCP gives ``ipxe.efi``, the firmware fetches it from luna2d over
  TFTP and starts it, iPXE does its own DHCP and gets ``/boot``, the menu
  chains to ``/boot/search/mac/<mac>``, whose node script fetches the
  kernel and initrd from ``/files`` and runs the kernel.
- BIOS (SeaBIOS with the ipxe-qemu ROM, which is iPXE itself): DHCP gives
  ``/boot`` straight away, then the same chain over HTTP.

The "kernel" is a two-line iPXE script that prints a marker made for this
run and reboots; QEMU runs with ``-no-reboot``, so the VM ends by itself
once the node script has done its work. What happened is read from
luna2d's own log (the DHCP server's line per answer, the TFTP server's
line per transfer, twisted.web's access lines: the whole chain, in order),
from the DHCP counters of ``/monitor/service/dhcp``, and from a watcher on
the bridge that records every DHCP message and TFTP request
(tests/e2e/netwatch.py, which also sends the IPv6 router advertisements
that spare iPXE its 13 s wait)."""

from __future__ import annotations

import os
import random
import re
from typing import Any

from tests.e2e.bootlab import (
    TAP,
    BootLab,
    DHCPLine,
    HTTPLine,
    NamespaceDaemon,
    Spawned,
    TFTPLine,
    daemon_log,
    ipxe_file,
    start_watch,
    watch_records,
)
from tests.integration.test_daemon import DaemonCase

QEMU = "/usr/bin/qemu-system-x86_64"
OVMF = next(
    (p for p in ("/usr/share/qemu/OVMF.fd", "/usr/share/ovmf/OVMF.fd") if os.path.exists(p)),
    "/usr/share/qemu/OVMF.fd",
)
KERNEL, INITRD = "vmlinuz-e2e", "initrd-e2e.img"
NODE = "vm001"
HOST = 10  # the node's address on the boot network: <prefix>.10
BOOT_DEADLINE = 75.0  # seconds for the VM to go from power-on to its kernel


def random_mac() -> str:
    """A locally administered QEMU-style MAC of its own for each run."""
    return f"52:54:00:4c:{random.randrange(256):02x}:{random.randrange(256):02x}"


class QemuBootTests(DaemonCase):
    timeout = 150  # trial's limit; the VM itself gets BOOT_DEADLINE

    async def prepare(self) -> tuple[BootLab, NamespaceDaemon, str, str]:
        """The lab, the daemon in it with the node, osimage and files made
        over the API; (lab, daemon, the VM's MAC, the marker its kernel prints)."""
        lab = await BootLab(self).create()
        daemon = NamespaceDaemon(self, lab)
        await daemon.start()
        mac, marker = random_mac(), f"luna2d-e2e-{os.urandom(6).hex()}"
        files = daemon.folder / "var" / "files"
        files.mkdir(parents=True, exist_ok=True)
        # The "kernel" iPXE runs once the node script has fetched it: proof the
        # script was followed to its end, and the VM's way out (-no-reboot).
        (files / KERNEL).write_text(f"#!ipxe\necho {marker} ${{net0/mac}}\nsleep 1\nreboot\n")
        (files / INITRD).write_bytes(os.urandom(65536))
        token = await daemon.token()
        for kind, name, body in (
            ("network", "boot", {"network": lab.network, "dhcp": False}),
            ("osimage", "e2e", {"kernelfile": KERNEL, "initrdfile": INITRD}),
            (
                "group",
                "e2e",
                {"osimage": "e2e", "interfaces": [{"interface": "BOOTIF", "network": "boot"}]},
            ),
            (
                "node",
                NODE,
                {
                    "group": "e2e",
                    "bootmenu": True,
                    "interfaces": [
                        {"interface": "BOOTIF", "ipaddress": lab.address(HOST), "macaddress": mac}
                    ],
                },
            ),
        ):
            code, answer = await daemon.call(
                "POST", f"/config/{kind}/{name}", {"config": {kind: {name: body}}}, token=token
            )
            self.assertIn(code, (201, 204), f"{kind} {name}: {answer}")
        # The answer the VM should get; asked here over the uplink.
        code, script = await daemon.call("GET", f"/boot/search/mac/{mac}")
        self.assertEqual(code, 200, script)
        self.assertIn(f"luna.node={NODE} ", script)
        return lab, daemon, mac, marker

    def qemu_argv(self, lab: BootLab, mac: str, uefi: bool) -> list[str]:
        argv = [
            QEMU,
            "-accel",
            "tcg",
            "-m",
            "256",
            "-boot",
            "n",
            "-no-reboot",
            "-nographic",
            "-nodefaults",
            "-serial",
            "stdio",
            "-display",
            "none",
            "-monitor",
            "none",
            "-netdev",
            f"tap,id=net0,ifname={TAP},script=no,downscript=no",
        ]
        if uefi:
            # romfile= leaves the NIC without iPXE's option ROM, so OVMF's own
            # PXE (EDK2, as on real UEFI servers) does the first DHCP and TFTP.
            argv += [
                "-bios",
                OVMF,
                "-device",
                f"virtio-net-pci,netdev=net0,mac={mac},romfile=,bootindex=1",
            ]
        else:
            argv += ["-device", f"virtio-net-pci,netdev=net0,mac={mac}"]
        return lab.netns_exec(*argv)

    async def boot(self, uefi: bool) -> tuple[BootLab, NamespaceDaemon, str, str, Spawned, Spawned]:
        """Prepare, start the watcher, power the VM on and wait for it to end
        by itself (BOOT_DEADLINE at most)."""
        lab, daemon, mac, marker = await self.prepare()
        watch = start_watch(self, lab)
        self.assertTrue(await watch.wait_for(r'"kind": "ready"'), watch.text())
        vm = Spawned(self, self.qemu_argv(lab, mac, uefi), cwd=daemon.folder)
        await vm.wait(BOOT_DEADLINE)
        return lab, daemon, mac, marker, watch, vm

    def explain(self, daemon: NamespaceDaemon, watch: Spawned, vm: Spawned) -> str:
        """Everything there is to read when an assertion fails."""
        console = re.sub(r"\x1b\[[0-9;?=]*[A-Za-z]", "", vm.text())
        ended = "ended: " + str(vm.reason) if vm.ended else "still running"
        return (
            f"\n--- VM ({ended}), console tail ---\n"
            f"{console[-3000:]}\n--- wire ---\n{watch.text()[-6000:]}\n--- luna2d ---\n"
            f"{daemon.output()[-6000:]}"
        )

    def assert_log_chain(
        self, events: list[Any], steps: list[tuple[str, Any]], why: str
    ) -> list[int]:
        """Each step (what, test) found in luna2d's log after the one before
        it; a request found there must be a GET answered 200 to iPXE. Their
        positions."""
        positions, start = [], 0
        for what, test in steps:
            found = next((i for i in range(start, len(events)) if test(events[i])), None)
            if found is None:
                self.fail(f"luna2d's log: no {what} after the previous step{why}")
            line = events[found]
            if isinstance(line, HTTPLine):
                self.assertEqual((line.method, line.status), ("GET", 200), f"{line}{why}")
                self.assertTrue(line.agent.startswith("iPXE/"), f"{line}{why}")
            positions.append(found)
            start = found + 1
        return positions

    @staticmethod
    def dhcp_answer(event: str, mac: str, client: str, file: str) -> tuple[str, Any]:
        """A step: luna2d sent a DHCP ``event`` to ``mac`` with ``client`` and boot file "
        "``file``."""
        return (
            f"DHCP {event} to {mac} of {client} with file {file!r}",
            lambda e: (
                isinstance(e, DHCPLine)
                and (e.event, e.mac, e.address, e.file) == (event, mac, client, file)
            ),
        )

    @staticmethod
    def http_chain(client: str, mac: str) -> list[tuple[str, Any]]:
        """The steps of iPXE's requests: /boot, the search by its MAC, then the
        node script's kernel and initrd."""
        paths = ["/boot", f"/boot/search/mac/{mac}", f"/files/{KERNEL}", f"/files/{INITRD}"]
        return [
            (
                f"GET {path} from {client}",
                lambda e, path=path: (
                    isinstance(e, HTTPLine) and e.client == client and e.path == path
                ),
            )
            for path in paths
        ]

    async def assert_dhcp_counters(self, daemon: NamespaceDaemon, answers: int, why: str) -> None:
        code, body = await daemon.call("GET", "/monitor/service/dhcp")
        self.assertEqual(code, 200, body)
        text = body["monitor"]["service"]["dhcp"]
        match = re.search(r"(\d+) received, (\d+) answered", text)
        if match is None:
            self.fail(text)
        self.assertGreaterEqual(int(match[2]), answers, f"{text}{why}")

    async def test_uefi_pxe_tftp_ipxe_chain(self) -> None:
        """UEFI PXE to the node script: the firmware's DHCP (PXEClient arch 7,
        no iPXE user class) is offered and acked ipxe.efi with next-server
        luna2d and the node's fixed address, and no vendor class (which would
        send EDK2 to a boot server on port 4011); the firmware fetches
        ipxe.efi over TFTP; iPXE's own DHCP (user class iPXE) is acked
        http://<luna2d>:<port>/boot (all this on the wire). luna2d's log has
        the same chain in order: offer and ack of ipxe.efi to the VM's MAC,
        the TFTP transfer of ipxe.efi complete (the size of the ipxe
        package's file), offer and ack of /boot, then GET /boot, GET
        /boot/search/mac/<its MAC>, the kernel and the initrd, each 200; the
        kernel runs (its marker on the console) and the VM ends by itself."""
        lab, daemon, mac, marker, watch, vm = await self.boot(uefi=True)
        why = self.explain(daemon, watch, vm)
        client = lab.address(HOST)
        wire = [r for r in watch_records(watch) if r.get("mac") == mac or r["kind"] == "tftp-rrq"]

        def first(start: int, test: Any, what: str) -> int:
            found = next((i for i in range(start, len(wire)) if test(wire[i])), None)
            if found is None:
                self.fail(f"on the wire: no {what}{why}")
            return found

        firmware = first(
            0,
            lambda r: (
                r.get("type") == "DISCOVER"
                and "user_class" not in r
                and r.get("vendor_class", "").startswith("PXEClient:Arch:00007")
            ),
            "DISCOVER from the UEFI firmware",
        )
        offer = first(firmware, lambda r: r.get("type") == "OFFER", "OFFER to the firmware")
        ack = first(offer, lambda r: r.get("type") == "ACK", "ACK to the firmware")
        for index in (offer, ack):
            reply = wire[index]
            self.assertEqual(
                (reply["yiaddr"], reply["siaddr"], reply["file"], reply.get("server_id")),
                (client, lab.server, "ipxe.efi", lab.server),
                f"{reply}{why}",
            )
            self.assertNotIn("vendor_class", reply, f"{reply}{why}")
        rrq = first(
            ack,
            lambda r: r["kind"] == "tftp-rrq" and r["name"] == "ipxe.efi",
            "TFTP RRQ of ipxe.efi",
        )
        ipxe = first(
            rrq,
            lambda r: r.get("type") == "DISCOVER" and r.get("user_class") == "iPXE",
            "DISCOVER from iPXE",
        )
        ipxe_ack = first(ipxe, lambda r: r.get("type") == "ACK", "ACK to iPXE")
        self.assertEqual(
            (wire[ipxe_ack]["yiaddr"], wire[ipxe_ack]["file"]),
            (client, f"{daemon.boot_url}/boot"),
            f"{wire[ipxe_ack]}{why}",
        )

        events = daemon_log(daemon.output())
        boot = f"{daemon.boot_url}/boot"
        positions = self.assert_log_chain(
            events,
            [
                self.dhcp_answer("offer", mac, client, "ipxe.efi"),
                self.dhcp_answer("ack", mac, client, "ipxe.efi"),
                (
                    "complete TFTP transfer of ipxe.efi",
                    lambda e: (
                        isinstance(e, TFTPLine)
                        and e.client == client
                        and e.name == "ipxe.efi"
                        and e.outcome == "complete"
                    ),
                ),
                self.dhcp_answer("offer", mac, client, boot),
                self.dhcp_answer("ack", mac, client, boot),
                *self.http_chain(client, mac),
            ],
            why,
        )
        transfer = events[positions[2]]
        assert isinstance(transfer, TFTPLine)
        self.assertEqual(transfer.size, ipxe_file("ipxe.efi").stat().st_size, f"{transfer}{why}")
        await self.assert_dhcp_counters(daemon, 4, why)
        self.assertIn(f"{marker} {mac}", vm.text(), f"the kernel did not run{why}")
        self.assertTrue(vm.ended, f"the VM did not finish within {BOOT_DEADLINE} s{why}")

    async def test_bios_ipxe_rom_chain(self) -> None:
        """BIOS with QEMU's iPXE ROM to the node script: the ROM's DHCP
        (PXEClient arch 0 and user class iPXE) is offered and acked the node's
        address and http://<luna2d>:<port>/boot with vendor class PXEClient
        (iPXE takes that offer at once), and nothing over TFTP (the ROM is
        iPXE already). luna2d's log has, in order, the offer and ack of /boot
        to the VM's MAC, GET /boot, GET /boot/search/mac/<its MAC>, the
        kernel and the initrd, each 200, and no TFTP transfer; the kernel
        runs and the VM ends by itself."""
        lab, daemon, mac, marker, watch, vm = await self.boot(uefi=False)
        why = self.explain(daemon, watch, vm)
        client = lab.address(HOST)
        wire = [r for r in watch_records(watch) if r.get("mac") == mac]
        discover = next((r for r in wire if r.get("type") == "DISCOVER"), None)
        self.assertIsNotNone(discover, f"no DISCOVER from the VM{why}")
        self.assertEqual(
            (discover["user_class"], discover["vendor_class"][:20]),  # type: ignore[index]
            ("iPXE", "PXEClient:Arch:00000"),
            why,
        )
        replies = [r for r in wire if r.get("type") in ("OFFER", "ACK")]
        self.assertEqual([r["type"] for r in replies][:2], ["OFFER", "ACK"], why)
        for reply in replies[:2]:
            self.assertEqual(
                (reply["yiaddr"], reply["file"], reply.get("vendor_class")),
                (client, f"{daemon.boot_url}/boot", "PXEClient"),
                f"{reply}{why}",
            )
        events = daemon_log(daemon.output())
        self.assertEqual([e for e in events if isinstance(e, TFTPLine)], [], why)
        boot = f"{daemon.boot_url}/boot"
        self.assert_log_chain(
            events,
            [
                self.dhcp_answer("offer", mac, client, boot),
                self.dhcp_answer("ack", mac, client, boot),
                *self.http_chain(client, mac),
            ],
            why,
        )
        await self.assert_dhcp_counters(daemon, 2, why)
        self.assertIn(f"{marker} {mac}", vm.text(), f"the kernel did not run{why}")
        self.assertTrue(vm.ended, f"the VM did not finish within {BOOT_DEADLINE} s{why}")
