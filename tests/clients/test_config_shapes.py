"""The /config answers and fields the TrinityX clients (the ``luna`` CLI of
luna2-cli, and luna2-utils) send and read, pinned through the whole HTTP
stack (StubTreq over luna2d's resource tree), in the exact wire form those
clients use (issue 10, part 2):

- ``luna node show`` strips a node's three scripts, so a script nobody set
  is "", never null; its show table reads a JSON list as a list of objects,
  so lists of strings (``grab_*``, an image's tags) are comma-separated;
- ``luna network reserve`` reads ``taken`` (ipaddress, device) from
  ``GET /config/network/<net>/_member``;
- ``luna secrets list/show`` read each item's ``name``;
- a group's BMC flag is read and sent as ``setupbmc``, "" going back to
  inheriting;
- ``changeinterface`` sends vlanid, mtu, dhcp, vlan_parent, bond_mode,
  bond_slaves as strings; ``renameinterface`` sends ``newinterfacename``
  in the interface entry, both POSTed to ``.../interfaces`` and expecting 204;
- ``-qk`` kernel options on a group and a node, ``-M`` macaddress on a switch
  and an other device; ``osimage tag`` expects 204;
- what an admin expects besides: no two networks share a CIDR, and renaming
  an object that does not exist is a 404 that creates nothing."""

from __future__ import annotations

import shutil
from typing import Any

from twisted.trial import unittest

from luna2d.model.kinds import GENERIC, KINDS
from tests.boot.support import MAC, BootAPI
from tests.support import API, env, hash_inline, load_store

SCRIPTS = ("prescript", "partscript", "postscript")


def fresh_api(case: unittest.TestCase) -> API:
    """The whole API over a store of its own, removed after the test."""
    api = API()
    case.addCleanup(shutil.rmtree, str(api.cfg.database.database.parent), True)
    case.addCleanup(api.store.pool.close)
    return api


def cli_iface_body(kind: str, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The body the CLI's changeinterface / renameinterface POSTs to
    ``/config/<kind>/<name>/interfaces``."""
    return {"config": {kind: {name: {"interfaces": [entry]}}}}


def table_problems(view: dict[str, Any]) -> list[str]:
    """What would break the CLI's show table in one object's answer: a list
    holding anything but objects (it indexes each item by its keys)."""
    return [
        f"{key}: {value!r}"
        for key, value in view.items()
        if isinstance(value, list) and not all(isinstance(item, dict) for item in value)
    ]


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.api = fresh_api(self)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.api.post(path, body)

    def update(self, kind: str, name: str, fields: dict[str, Any]) -> tuple[int, Any]:
        return self.api.post(f"/config/{kind}/{name}", env(kind, name, fields))

    def iface(self, kind: str, name: str, iface: str) -> dict[str, Any]:
        for item in self.api.show(kind, name)["interfaces"]:
            if item["interface"] == iface:
                return dict(item)
        raise AssertionError(f"{kind} {name} has no interface {iface}")

    def iface_names(self, kind: str, name: str) -> list[str]:
        return [item["interface"] for item in self.api.show(kind, name)["interfaces"]]


class ShowShapeTests(Base):
    def test_node_scripts_unset_are_empty_strings(self) -> None:
        """A node whose group has none of the three scripts answers "" for
        each (source default), the form ``luna node show`` strips; a script
        the group sets is inherited, base64-encoded as before."""
        node = self.api.show("node", "node001")
        for script in SCRIPTS:
            self.assertEqual((node[script], node[f"_{script}_source"]), ("", "default"), script)
        group = self.api.show("group", "compute")
        self.assertEqual([group[s] for s in SCRIPTS], ["", "", ""])
        self.assertEqual(self.update("group", "compute", {"postscript": "echo done"})[0], 204)
        node = self.api.show("node", "node001")
        self.assertEqual(
            (node["postscript"], node["_postscript_source"]), ("ZWNobyBkb25l", "group")
        )
        self.assertEqual(node["prescript"], "")

    def test_lists_answered_comma_separated(self) -> None:
        """grab_filesystems and grab_exclude are answered as one
        comma-separated string, whether they were sent as a JSON list or as
        the CLI's string; an image's tags too."""
        self.assertEqual(
            self.update(
                "osimage",
                "compute",
                {"grab_filesystems": ["/", "/boot"], "grab_exclude": "/proc/*, /sys/*"},
            )[0],
            204,
        )
        image = self.api.show("osimage", "compute")
        self.assertEqual(
            (image["grab_filesystems"], image["grab_exclude"]),
            ("/,/boot", "/proc/*,/sys/*"),
        )
        for tag in ("v2", "v1"):
            self.assertEqual(
                self.post(
                    "/config/osimage/compute/tag",
                    env("osimage", "compute", {"tag": tag}),
                ),
                (204, None),
            )
        self.assertEqual(self.api.show("osimage", "compute")["tags"], "v1,v2")
        # The answer, sent back unchanged, is accepted and changes nothing.
        shown = self.api.show("osimage", "compute")
        self.assertEqual(self.update("osimage", "compute", shown)[0], 204)
        self.assertEqual(self.api.show("osimage", "compute"), shown)

    def test_every_answer_fits_the_cli_table(self) -> None:
        """No list or show answer of any kind holds a list of plain values,
        with every field set that can be (tags, grab lists, interface
        settings, secrets apart)."""
        self.update("osimage", "compute", {"grab_filesystems": ["/"], "grab_exclude": ["/tmp"]})
        self.post("/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"}))
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", {"interface": "ib0", "vlanid": "12", "mtu": "2044"}),
        )
        for kind in GENERIC:
            code, body = self.api.get(f"/config/{kind}")
            if code == 404:
                continue  # a kind with no objects yet
            self.assertEqual(code, 200, kind)
            for name, view in body["config"][kind].items():
                self.assertEqual(table_problems(view), [], f"{kind} {name}")
                self.assertEqual(table_problems(self.api.show(kind, name)), [], f"{kind} {name}")


class NetworkReserveTests(Base):
    def test_member_answers_taken(self) -> None:
        """GET /config/network/<net>/_member answers ``taken`` (each address
        with the device holding it, the same list as ``_list``) beside the
        member names."""
        code, body = self.api.get("/config/network/cluster/_member")
        self.assertEqual(code, 200)
        answer = body["config"]["network"]["cluster"]
        self.assertEqual(
            answer["members"],
            ["controller", "node001", "node002", "node003", "node004"],
        )
        self.assertEqual(answer["taken"][0], {"ipaddress": "10.141.0.1", "device": "node001"})
        self.assertEqual({t["device"] for t in answer["taken"]}, set(answer["members"]))
        self.assertEqual(
            answer["taken"],
            self.api.get("/config/network/cluster/_list")[1]["config"]["network"]["cluster"][
                "taken"
            ],
        )

    def test_member_of_unknown_network(self) -> None:
        """An unknown network is 404 naming it."""
        self.assertEqual(
            self.api.get("/config/network/ghost/_member"),
            (404, {"message": "network 'ghost' does not exist"}),
        )


class SecretNameTests(Base):
    def test_items_carry_name_and_secretname(self) -> None:
        """Secrets sent by the CLI (keyed ``name``) are answered in the list
        and in the show of one with both ``name`` and ``secretname``."""
        body = {
            "config": {
                "secrets": {
                    "node": {
                        "node001": [
                            {
                                "name": "munge",
                                "path": "/etc/munge/munge.key",
                                "content": "S0VZ",
                            }
                        ]
                    }
                }
            }
        }
        self.assertEqual(self.post("/config/secrets/node/node001", body)[0], 201)
        listed = self.api.get("/config/secrets")[1]["config"]["secrets"]["node"]["node001"]
        one = self.api.get("/config/secrets/node/node001/munge")[1]["config"]["secrets"]["node"][
            "node001"
        ]
        for items in (listed, one):
            self.assertEqual(
                [(i["name"], i["secretname"], i["path"]) for i in items],
                [("munge", "munge", "/etc/munge/munge.key")],
            )


class SetupBmcTests(Base):
    def test_group_answers_both_names(self) -> None:
        """A group answers its BMC flag as ``setupbmc`` (the CLI's name) and
        ``bmcsetup`` (the spec's), and takes either."""
        group = self.api.show("group", "compute")
        self.assertEqual((group["setupbmc"], group["bmcsetup"]), (True, True))
        self.assertEqual(self.update("group", "compute", {"setupbmc": False})[0], 204)
        group = self.api.show("group", "compute")
        self.assertEqual((group["setupbmc"], group["bmcsetup"]), (False, False))

    def test_empty_goes_back_to_inheriting(self) -> None:
        """``setupbmc: ""`` on a node drops its own value (it inherits the
        group's again); on a group it goes back to the default (false)."""
        self.assertEqual(self.update("node", "node001", {"setupbmc": False})[0], 204)
        node = self.api.show("node", "node001")
        self.assertEqual((node["setupbmc"], node["_setupbmc_source"]), (False, "node"))
        self.assertEqual(self.update("node", "node001", {"setupbmc": ""})[0], 204)
        node = self.api.show("node", "node001")
        self.assertEqual((node["setupbmc"], node["_setupbmc_source"]), (True, "group"))
        self.assertEqual(self.update("group", "compute", {"setupbmc": ""})[0], 204)
        self.assertEqual(self.api.show("group", "compute")["setupbmc"], False)
        self.assertEqual(self.api.show("node", "node001")["setupbmc"], False)


# An interface entry as the CLI's changeinterface sends it, and what is shown.
CLI_ENTRY = {
    "interface": "ib0",
    "vlanid": "100",
    "mtu": "9000",
    "dhcp": True,
    "vlan_parent": "BOOTIF",
    "bond_mode": "802.3ad",
    "bond_slaves": "eth0,eth1",
}
SHOWN = {
    "vlanid": 100,
    "mtu": 9000,
    "dhcp": True,
    "vlan_parent": "BOOTIF",
    "bond_mode": "802.3ad",
    "bond_slaves": "eth0,eth1",
}


class InterfaceSettingsTests(Base):
    def test_node_settings_stored_and_shown(self) -> None:
        """The CLI's changeinterface settings are kept (numbers as numbers),
        shown on the interface, in .../interfaces/<if> too, survive a restart,
        and the address stays."""
        before = self.iface("node", "node001", "ib0")
        code, _ = self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", CLI_ENTRY),
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.iface("node", "node001", "ib0"), {**before, **SHOWN})
        one = self.api.get("/config/node/node001/interfaces/ib0")[1]["config"]["node"]["node001"]
        self.assertEqual(one["interfaces"], [{**before, **SHOWN}])
        store = load_store(self.api.cfg)
        self.addCleanup(store.pool.close)
        self.assertEqual(API(store).show("node", "node001")["interfaces"][2], {**before, **SHOWN})

    def test_settings_in_node_body(self) -> None:
        """The settings ride in a node's own body too (``luna node add -if``)."""
        self.assertEqual(self.update("node", "node002", {"interfaces": [CLI_ENTRY]})[0], 204)
        self.assertEqual({k: self.iface("node", "node002", "ib0")[k] for k in SHOWN}, SHOWN)

    def test_empty_unsets(self) -> None:
        """ "" (the CLI's way to clear) or null drops a setting; unset
        settings are not shown at all."""
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", CLI_ENTRY),
        )
        code, _ = self.post(
            "/config/node/node001/interfaces",
            cli_iface_body(
                "node",
                "node001",
                {"interface": "ib0", "mtu": "", "vlanid": None, "dhcp": ""},
            ),
        )
        self.assertEqual(code, 204)
        shown = self.iface("node", "node001", "ib0")
        for gone in ("mtu", "vlanid", "dhcp"):
            self.assertNotIn(gone, shown)
        self.assertEqual(shown["bond_mode"], "802.3ad")
        self.assertNotIn("vlanid", self.iface("node", "node001", "BOOTIF"))

    def test_bad_settings_refused(self) -> None:
        """Out-of-range or malformed settings are 400 naming the entry and
        the field, and change nothing."""
        cases = [
            ({"vlanid": "5000"}, "interfaces[0].vlanid: must be at most 4094"),
            ({"vlanid": "0"}, "interfaces[0].vlanid: must be at least 1"),
            ({"mtu": "jumbo"}, "interfaces[0].mtu: expected an integer, got 'jumbo'"),
            ({"mtu": "20"}, "interfaces[0].mtu: must be at least 68"),
            (
                {"dhcp": "maybe"},
                "interfaces[0].dhcp: expected true or false, got 'maybe'",
            ),
            (
                {"vlan_parent": "eth0; reboot"},
                "interfaces[0].vlan_parent: 'eth0; reboot' is not",
            ),
            (
                {"bond_slaves": "eth0,$(x)"},
                "interfaces[0].bond_slaves: 'eth0,$(x)' is not",
            ),
        ]
        before = self.api.show("node", "node001")
        for extra, message in cases:
            code, body = self.post(
                "/config/node/node001/interfaces",
                cli_iface_body("node", "node001", {"interface": "ib0", **extra}),
            )
            self.assertEqual(code, 400, extra)
            self.assertTrue(body["message"].startswith(message), (extra, body))
        self.assertEqual(self.api.show("node", "node001"), before)

    def test_group_settings_reach_members(self) -> None:
        """A group interface's settings are shown on the group, given to its
        nodes and to a node created later; a change reaches the nodes that
        did not set their own value, and leaves a node's own."""
        self.post(
            "/config/node/node002/interfaces",
            cli_iface_body("node", "node002", {"interface": "ib0", "mtu": "4000"}),
        )
        code, _ = self.post(
            "/config/group/compute/interfaces",
            cli_iface_body("group", "compute", {"interface": "ib0", "mtu": "2044", "vlanid": "7"}),
        )
        self.assertEqual(code, 204)
        group_if = self.iface("group", "compute", "ib0")
        self.assertEqual((group_if["mtu"], group_if["vlanid"]), (2044, 7))
        self.assertEqual(
            (
                self.iface("node", "node001", "ib0")["mtu"],
                self.iface("node", "node002", "ib0")["mtu"],
            ),
            (2044, 4000),
        )
        self.assertEqual(self.iface("node", "node002", "ib0")["vlanid"], 7)
        self.assertEqual(self.update("node", "node009", {"group": "compute"})[0], 201)
        self.assertEqual(self.iface("node", "node009", "ib0")["mtu"], 2044)
        self.post(
            "/config/group/compute/interfaces",
            cli_iface_body("group", "compute", {"interface": "ib0", "mtu": ""}),
        )
        self.assertNotIn("mtu", self.iface("node", "node001", "ib0"))
        self.assertEqual(self.iface("node", "node002", "ib0")["mtu"], 4000)

    def test_delete_drops_settings(self) -> None:
        """Removing an interface forgets its settings: one added again under
        the same name starts bare."""
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", CLI_ENTRY),
        )
        self.assertEqual(self.api.get("/config/node/node001/interfaces/ib0/_delete")[0], 204)
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", {"interface": "ib0", "network": "ib"}),
        )
        self.assertEqual(
            set(self.iface("node", "node001", "ib0")),
            {"interface", "network", "ipaddress", "macaddress", "options"},
        )


class InterfaceRenameTests(Base):
    def test_node_rename(self) -> None:
        """renameinterface on a node: 204; the interface keeps its place,
        network, address, MAC, options and settings under the new name, and
        the address stays the node's."""
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body(
                "node",
                "node001",
                {
                    "interface": "ib0",
                    "macaddress": "02:00:00:00:00:01",
                    "mtu": "2044",
                    "options": "b3B0",
                },
            ),
        )
        before = self.iface("node", "node001", "ib0")
        code, body = self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", {"interface": "ib0", "newinterfacename": "ib1"}),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.iface_names("node", "node001"), ["BOOTIF", "BMC", "ib1"])
        self.assertEqual(self.iface("node", "node001", "ib1"), {**before, "interface": "ib1"})
        taken = self.api.get("/config/network/ib/_list")[1]["config"]["network"]["ib"]["taken"]
        self.assertIn({"ipaddress": before["ipaddress"], "device": "node001"}, taken)
        # The old name is free for a new interface, which gets a new address.
        self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", {"interface": "ib0", "network": "ib"}),
        )
        self.assertNotEqual(self.iface("node", "node001", "ib0")["ipaddress"], before["ipaddress"])

    def test_group_rename_reaches_members(self) -> None:
        """renameinterface on a group renames the template and the same
        interface of every node of the group, addresses kept."""
        addresses = {n: self.iface("node", n, "ib0")["ipaddress"] for n in ("node001", "node004")}
        code, _ = self.post(
            "/config/group/compute/interfaces",
            cli_iface_body("group", "compute", {"interface": "ib0", "newinterfacename": "ib1"}),
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.iface_names("group", "compute"), ["BOOTIF", "BMC", "ib1"])
        for node, ip in addresses.items():
            self.assertEqual(self.iface_names("node", node), ["BOOTIF", "BMC", "ib1"])
            self.assertEqual(self.iface("node", node, "ib1")["ipaddress"], ip)

    def test_rename_refusals(self) -> None:
        """Renaming onto an existing interface is 400, a missing interface
        404, a bad new name 400; nothing changes."""
        before = self.api.show("node", "node001")
        cases = [
            (
                {"interface": "ib0", "newinterfacename": "BMC"},
                400,
                "interfaces[0].newinterfacename: node node001 already has an interface BMC",
            ),
            (
                {"interface": "eth9", "newinterfacename": "eth10"},
                404,
                "node 'node001' has no interface 'eth9'",
            ),
            (
                {"interface": "ib0", "newinterfacename": "ib 1"},
                400,
                "interfaces[0].newinterfacename: 'ib 1' is not a valid interface name",
            ),
        ]
        for entry, status, message in cases:
            self.assertEqual(
                self.post(
                    "/config/node/node001/interfaces",
                    cli_iface_body("node", "node001", entry),
                ),
                (status, {"message": message}),
                entry,
            )
        self.assertEqual(self.api.show("node", "node001"), before)

    def test_provisioning_interface(self) -> None:
        """The provisioning interface is renamed only together with
        provision_interface: alone it is 400 saying so (the node would lose
        its boot interface); in one body with the new provision_interface it
        is done, and the node's boot MAC follows."""
        self.update("node", "node001", {"macaddr": MAC})
        code, body = self.post(
            "/config/node/node001/interfaces",
            cli_iface_body("node", "node001", {"interface": "BOOTIF", "newinterfacename": "eth0"}),
        )
        self.assertEqual(code, 400)
        self.assertIn("provision_interface", body["message"])
        code, _ = self.update(
            "node",
            "node001",
            {
                "provision_interface": "eth0",
                "interfaces": [{"interface": "BOOTIF", "newinterfacename": "eth0"}],
            },
        )
        self.assertEqual(code, 204)
        node = self.api.show("node", "node001")
        self.assertEqual((node["provision_interface"], node["macaddr"]), ("eth0", MAC))

    def test_own_provision_interface_follows(self) -> None:
        """When the group itself names the provisioning interface, renaming
        that group interface renames it in ``provision_interface`` too, and
        the nodes (which inherit it) keep booting from the renamed one."""
        self.update("node", "node001", {"macaddr": MAC})
        self.assertEqual(self.update("group", "compute", {"provision_interface": "BOOTIF"})[0], 204)
        code, _ = self.post(
            "/config/group/compute/interfaces",
            cli_iface_body("group", "compute", {"interface": "BOOTIF", "newinterfacename": "eth0"}),
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.api.show("group", "compute")["provision_interface"], "eth0")
        node = self.api.show("node", "node001")
        self.assertEqual(
            (node["provision_interface"], node["_provision_interface_source"], node["macaddr"]),
            ("eth0", "group", MAC),
        )

    def test_renamed_boot_interface_still_boots(self) -> None:
        """After the rename the node's iPXE script, found by its MAC, still
        carries the address of its (renamed) provisioning interface."""
        api = BootAPI(self)
        api.bootable()
        api.update("node", "node001", {"macaddr": MAC})
        api.update("group", "compute", {"provision_interface": "BOOTIF"})
        code, _ = api.post(
            "/config/group/compute/interfaces",
            cli_iface_body("group", "compute", {"interface": "BOOTIF", "newinterfacename": "eth0"}),
        )
        self.assertEqual(code, 204)
        script = api.script(f"/boot/search/mac/{MAC}")
        self.assertIn(f"luna.mac={MAC} luna.ip=10.141.0.1/16 ", script)


class KernelOptionsTests(Base):
    def test_group_and_node_override_the_image(self) -> None:
        """kerneloptions on a group and on a node are kept and shown with
        their source: the node's own, else its group's, else its image's."""
        self.update("osimage", "compute", {"kerneloptions": "console=ttyS0"})
        node = self.api.show("node", "node001")
        self.assertEqual(
            (node["kerneloptions"], node["_kerneloptions_source"]),
            ("console=ttyS0", "osimage"),
        )
        group = self.api.show("group", "compute")
        self.assertEqual(
            (group["kerneloptions"], group["_kerneloptions_source"]),
            ("console=ttyS0", "osimage"),
        )
        self.assertEqual(self.update("group", "compute", {"kerneloptions": "quiet"})[0], 204)
        node = self.api.show("node", "node001")
        self.assertEqual((node["kerneloptions"], node["_kerneloptions_source"]), ("quiet", "group"))
        self.assertEqual(self.update("node", "node001", {"kernopts": "nomodeset"})[0], 204)
        node = self.api.show("node", "node001")
        self.assertEqual(
            (node["kerneloptions"], node["_kerneloptions_source"]),
            ("nomodeset", "node"),
        )
        self.assertEqual(self.api.show("node", "node002")["kerneloptions"], "quiet")

    def test_command_chaining_refused(self) -> None:
        """The iPXE-safety rule of an image's options holds on groups and
        nodes: 400 naming the field."""
        for kind, name in (("group", "compute"), ("node", "node001")):
            self.assertEqual(
                self.update(kind, name, {"kerneloptions": "quiet || shell"}),
                (
                    400,
                    {
                        "message": "kerneloptions: 'quiet || shell' is not kernel options iPXE "
                        "passes as they are (no ||, &&, lone ; or ${...})"
                    },
                ),
            )

    def test_boot_script_uses_them(self) -> None:
        """The node's iPXE script carries the options it resolves to."""
        api = BootAPI(self)
        api.bootable()
        api.update("node", "node001", {"macaddr": MAC})
        api.update("osimage", "compute", {"kerneloptions": "console=ttyS0"})
        api.update("group", "compute", {"kerneloptions": "quiet"})
        script = api.script(f"/boot/search/mac/{MAC}")
        self.assertIn(" quiet initrd=", script)
        self.assertNotIn("console=ttyS0", script)
        api.update("node", "node001", {"kerneloptions": "nomodeset"})
        self.assertIn(" nomodeset initrd=", api.script(f"/boot/search/mac/{MAC}"))
        api.update("node", "node001", {"kerneloptions": ""})
        api.update("group", "compute", {"kerneloptions": ""})
        self.assertIn(" console=ttyS0 initrd=", api.script(f"/boot/search/mac/{MAC}"))


class DeviceMacTests(Base):
    def setUp(self) -> None:
        super().setUp()
        for kind, name in (("switch", "sw01"), ("otherdev", "pdu01")):
            self.assertEqual(self.update(kind, name, {"network": "ipmi"})[0], 201)

    def test_switch_and_otherdev_macaddress(self) -> None:
        """A switch and an other device take ``macaddress`` (the CLI's -M),
        normalised; "" clears it; a bad MAC is 400 naming the field."""
        for kind, name in (("switch", "sw01"), ("otherdev", "pdu01")):
            self.assertEqual(self.update(kind, name, {"macaddress": "AA-BB-CC-00-11-22"})[0], 204)
            self.assertEqual(self.api.show(kind, name)["macaddress"], "aa:bb:cc:00:11:22")
            code, body = self.update(kind, name, {"macaddress": "not-a-mac"})
            self.assertEqual(code, 400)
            self.assertTrue(body["message"].startswith("macaddress:"), body)
            self.assertEqual(self.update(kind, name, {"macaddress": ""})[0], 204)
            self.assertIsNone(self.api.show(kind, name)["macaddress"])


class NetworkCidrTests(Base):
    def test_same_cidr_refused(self) -> None:
        """A new network with the CIDR of an existing one (in any spelling
        of it) is 400 naming the other network, and is not created."""
        for cidr in ("10.141.0.0/16", "10.141.0.0/255.255.0.0"):
            self.assertEqual(
                self.update("network", "dup", {"network": cidr}),
                (
                    400,
                    {"message": "network: 10.141.0.0/16 is already the network of cluster"},
                ),
            )
            self.assertEqual(self.api.get("/config/network/dup")[0], 404)

    def test_move_onto_another_refused(self) -> None:
        """Moving a network onto another's CIDR, or cloning one without a
        CIDR of its own, is refused the same way; a different CIDR is fine."""
        self.assertEqual(
            self.update("network", "ipmi", {"network": "10.141.0.0/16"}),
            (
                400,
                {"message": "network: 10.141.0.0/16 is already the network of cluster"},
            ),
        )
        self.assertEqual(self.api.show("network", "ipmi")["network"], "10.148.0.0/16")
        self.assertEqual(
            self.post("/config/network/ib/_clone", env("network", "ib", {"newnetname": "ib2"})),
            (400, {"message": "network: 10.149.0.0/16 is already the network of ib"}),
        )
        self.assertEqual(self.update("network", "spare", {"network": "10.141.0.0/17"})[0], 201)


class RenameMissingTests(Base):
    def test_rename_of_missing_object_is_404(self) -> None:
        """Renaming an object that does not exist is 404 for every kind, and
        creates neither name."""
        hash_inline(self)
        for kind in GENERIC:
            rename = KINDS[kind].rename
            if not rename:
                continue
            fields: dict[str, Any] = {rename[0]: "phantom"}
            if kind == "user":
                fields["password"] = "long enough"  # users are checked for one first
            code, body = self.update(kind, "ghost", fields)
            self.assertEqual(
                (code, body),
                (
                    404,
                    {"message": f"{kind} 'ghost' does not exist; there is nothing to rename"},
                ),
                kind,
            )
            for name in ("ghost", "phantom"):
                self.assertEqual(self.api.get(f"/config/{kind}/{name}")[0], 404, (kind, name))

    def test_rename_of_existing_still_works(self) -> None:
        """A rename of an existing switch is still 204."""
        self.assertEqual(self.update("switch", "sw01", {"network": "ipmi"})[0], 201)
        self.assertEqual(self.update("switch", "sw01", {"newswitchname": "sw09"})[0], 204)
        self.assertEqual(self.api.show("switch", "sw09")["name"], "sw09")
