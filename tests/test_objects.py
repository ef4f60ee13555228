"""The generic object machinery (luna2d.store.objects) driven through a Store
on a real SQLite file (run synchronously): create, update, rename, clone
and delete for every kind, inheritance, addresses (IPAM), renumbering,
racks, secrets, osimage tags, users and the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from luna2d.errors import Invalid, LunaError, NotFound
from luna2d.model.wire import b64
from luna2d.store import objects
from luna2d.store.state import ip_key
from luna2d.store.store import Store
from tests.support import ADMIN, open_store, result_of


class StoreTestCase(unittest.TestCase):
    """A bootstrapped store (sample cluster) on a fresh SQLite file."""

    bootstrap = True

    def setUp(self) -> None:
        folder = Path(self.mktemp()).absolute()
        folder.mkdir(parents=True)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store: Store
        self.store, self.cfg = open_store(
            folder, bootstrap_enabled=self.bootstrap, clock=self.clock
        )
        self.addCleanup(self.store.pool.close)

    # -- helpers ----------------------------------------------------------------------
    def write(self, fn: Any, *args: Any) -> Any:
        """Run one write that must succeed and return its result."""
        return result_of(self.store.write(fn, *args))

    def upsert(self, kind: str, name: str, body: dict) -> bool:
        return self.write(objects.upsert, kind, name, body)

    def refused(self, fn: Any, *args: Any, error: type[LunaError] = Invalid) -> str:
        """Run one write that must fail with ``error``; its message. The
        store's content must be exactly as before."""
        before = self.snapshot()
        writes = self.store.writes
        failure = self.failureResultOf(self.store.write(fn, *args), error)
        self.assertEqual(self.store.writes, writes)
        self.assertEqual(self.snapshot(), before)
        return failure.value.message

    def snapshot(self) -> dict:
        store = self.store
        out: dict[str, Any] = {kind: store.objects_of(kind) for kind in store.state.by_kind}
        out["_secrets"] = store.secrets()
        out["_ips"] = dict(store.state.ips)
        out["_macs"] = dict(store.state.macs)
        return out

    def node(self, name: str) -> dict:
        return self.store.show("node", name)

    def addresses(self, name: str) -> dict[str, tuple]:
        """interface -> (network, ipaddress, macaddress) of a node."""
        return {
            i["interface"]: (i["network"], i["ipaddress"], i["macaddress"])
            for i in self.node(name)["interfaces"]
        }


class CreateUpdateTests(StoreTestCase):
    def test_create_then_update(self) -> None:
        """upsert answers True when it creates, False when it updates; fields
        given are set, fields not given are kept."""
        self.assertIs(self.upsert("bmcsetup", "gpu", {"username": "admin", "userid": "4"}), True)
        self.assertIs(self.upsert("bmcsetup", "gpu", {"comments": "GPU nodes"}), False)
        view = self.store.show("bmcsetup", "gpu")
        self.assertEqual(view["username"], "admin")
        self.assertEqual(view["userid"], 4)
        self.assertEqual(view["comment"], "GPU nodes")
        self.assertEqual(view["mgmtchannel"], 1)  # default
        self.assertEqual(view["unmanaged_bmc_users"], "skip")

    def test_null_unsets(self) -> None:
        """A field set to null goes back to its default."""
        self.upsert("bmcsetup", "compute", {"userid": 9})
        self.upsert("bmcsetup", "compute", {"userid": None})
        self.assertEqual(self.store.show("bmcsetup", "compute")["userid"], 2)

    def test_aliases(self) -> None:
        """Alias spellings are accepted and answered under the canonical name."""
        self.upsert(
            "network",
            "net1",
            {
                "network": "172.16.0.0/24",
                "dhcp_enable": True,
                "dhcp_begin": "172.16.0.100",
                "dhcp_end": "172.16.0.150",
                "ns_ip": "172.16.0.254",
            },
        )
        view = self.store.show("network", "net1")
        self.assertEqual(
            (view["dhcp"], view["dhcp_range_begin"], view["dhcp_range_end"], view["nameserver_ip"]),
            (True, "172.16.0.100", "172.16.0.150", "172.16.0.254"),
        )

    def test_node_needs_group(self) -> None:
        """A node cannot be created without a group, nor with one that does not exist."""
        self.assertEqual(
            self.refused(objects.upsert, "node", "node100", {}),
            "group: required to create node 'node100'",
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node100", {"group": "nope"}),
            "group: group 'nope' does not exist",
        )

    def test_new_node_gets_group_interfaces(self) -> None:
        """A new node gets every interface of its group, each with the next free address."""
        self.upsert("node", "node005", {"group": "compute"})
        self.assertEqual(
            self.addresses("node005"),
            {
                "BOOTIF": ("cluster", "10.141.0.5", None),
                "BMC": ("ipmi", "10.148.0.5", None),
                "ib0": ("ib", "10.149.0.5", None),
            },
        )

    def test_bad_input_refused(self) -> None:
        """Unknown fields, bad names, bad values and internal fields are
        refused, naming the field."""
        self.assertEqual(
            self.refused(objects.upsert, "node", "node001", {"bogus": 1}),
            "bogus: unknown field for node",
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node001", {"rack": "r1"}),
            "rack: unknown field for node",
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node001", {"netboot": "maybe"}),
            "netboot: expected true or false, got 'maybe'",
        )
        self.assertEqual(
            self.refused(objects.upsert, "bmcsetup", "compute", {"userid": 99}),
            "userid: must be at most 63",
        )
        self.assertTrue(
            self.refused(objects.upsert, "group", "Compute", {}).startswith(
                "name: 'Compute' is not a valid group name"
            )
        )
        self.assertEqual(
            self.refused(objects.upsert, "network", "net1", {"network": "10.0.0.0/31"}),
            "network: 10.0.0.0/31 is too small to hold hosts (at most /30 or /126)",
        )
        self.assertEqual(
            self.refused(objects.upsert, "network", "net1", {"comment": "x"}),
            "network: required to create network 'net1'",
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node001", {"name": "node002"}),
            "name: 'node002' differs from 'node001' in the path; use newhostname to rename",
        )

    def test_output_fields_accepted_back(self) -> None:
        """A GET answer posted back unchanged is accepted (name, members,
        _override and _<field>_source are ignored) and every value stays."""
        strip = lambda view: {k: v for k, v in view.items() if not k.startswith("_")}
        before = strip(self.node("node001"))
        self.assertIs(self.upsert("node", "node001", self.node("node001")), False)
        self.assertEqual(strip(self.node("node001")), before)
        group = self.store.show("group", "compute")
        self.assertIs(self.upsert("group", "compute", {**group, "members": ["node001"]}), False)
        self.assertEqual(self.store.show("group", "compute"), group)

    def test_cluster_update(self) -> None:
        """The cluster takes its own fields and refuses controller settings."""
        self.write(objects.update_cluster, {"ntp_server": "10.141.255.253", "debug": "yes"})
        cluster = self.store.cluster()
        self.assertEqual((cluster["ntp_server"], cluster["debug"]), ("10.141.255.253", True))
        self.assertEqual(
            self.refused(objects.update_cluster, {"controller": {"ipaddr": "1.2.3.4"}}),
            "controller: controllers are configured in the ini file, not through the API",
        )
        self.assertEqual(
            self.refused(objects.update_cluster, {"name": "other"}),
            "name: the cluster name cannot be changed",
        )
        self.assertEqual(
            self.refused(objects.update_cluster, {"colour": "red"}),
            "colour: unknown field for cluster",
        )


class RenameTests(StoreTestCase):
    def test_rename_group_moves_members(self) -> None:
        """Renaming a group keeps its nodes in it: they show the new name."""
        self.upsert("group", "compute", {"newgroupname": "cpu"})
        self.assertIsNone(self.store.state.get("group", "compute"))
        for name in ("node001", "node002", "node003", "node004"):
            self.assertEqual(self.node(name)["group"], "cpu")
        self.assertEqual(
            self.store.members("group", "cpu"), ["node001", "node002", "node003", "node004"]
        )
        self.assertRaises(NotFound, self.store.show, "group", "compute")

    def test_rename_network_interfaces_follow(self) -> None:
        """Renaming a network: node and group interfaces show the new name,
        addresses unchanged."""
        self.upsert("network", "ib", {"newnetname": "infiniband"})
        self.assertEqual(self.addresses("node001")["ib0"], ("infiniband", "10.149.0.1", None))
        groups = {
            i["interface"]: i["network"] for i in self.store.show("group", "compute")["interfaces"]
        }
        self.assertEqual(groups["ib0"], "infiniband")
        self.assertEqual(self.store.nextfreeip("infiniband"), "10.149.0.5")

    def test_rename_bmcsetup_and_osimage(self) -> None:
        """Renamed bmcsetup and osimage are shown under their new names by
        the group and, inherited, by the nodes."""
        self.upsert("bmcsetup", "compute", {"newbmcname": "bmc2"})
        self.upsert("osimage", "compute", {"newosimage": "rocky9"})
        group = self.store.show("group", "compute")
        self.assertEqual((group["bmcsetupname"], group["osimage"]), ("bmc2", "rocky9"))
        node = self.node("node003")
        self.assertEqual((node["bmcsetup"], node["osimage"]), ("bmc2", "rocky9"))
        self.assertEqual(
            self.store.members("osimage", "rocky9"), ["node001", "node002", "node003", "node004"]
        )

    def test_rename_node_keeps_addresses(self) -> None:
        """A renamed node keeps its interfaces, MAC and addresses; the old name is free."""
        self.upsert("node", "node001", {"macaddr": "02:00:00:00:00:01"})
        before = self.addresses("node001")
        self.upsert("node", "node001", {"newhostname": "login01"})
        self.assertEqual(self.addresses("login01"), before)
        self.assertEqual(
            self.store.ipinfo("cluster", "10.141.0.1"), {"status": "taken", "device": "login01"}
        )
        self.assertTrue(self.upsert("node", "node001", {"group": "compute"}))
        self.assertEqual(self.addresses("node001")["BOOTIF"], ("cluster", "10.141.0.5", None))

    def test_rename_with_update(self) -> None:
        """Fields given beside the new name apply to the renamed object."""
        self.upsert("node", "node002", {"newnodename": "node020", "comment": "moved"})
        self.assertEqual(self.node("node020")["comment"], "moved")

    def test_rename_to_existing_refused(self) -> None:
        """Renaming onto an existing name is refused and changes nothing."""
        self.assertEqual(
            self.refused(objects.upsert, "node", "node003", {"newhostname": "node002"}),
            "node 'node002' already exists",
        )
        self.assertTrue(
            self.refused(objects.upsert, "node", "node003", {"newhostname": "Bad"}).startswith(
                "newhostname: 'Bad' is not a valid node name"
            )
        )

    def test_swap_names(self) -> None:
        """Two renames in one write may swap names (the database accepts it)."""

        def swap(tx: Any) -> None:
            objects.upsert(tx, "node", "node001", {"newhostname": "tmp"})
            objects.upsert(tx, "node", "node002", {"newhostname": "node001"})
            objects.upsert(tx, "node", "tmp", {"newhostname": "node002"})

        self.write(swap)
        self.assertEqual(self.addresses("node001")["BOOTIF"][1], "10.141.0.2")
        self.assertEqual(self.addresses("node002")["BOOTIF"][1], "10.141.0.1")


class CloneTests(StoreTestCase):
    def test_clone_node_fresh_addresses_no_mac(self) -> None:
        """A cloned node gets fresh addresses on the same networks, no MAC,
        status, vendor, asset tag or rack place, and the source's settings."""
        self.upsert(
            "node",
            "node001",
            {
                "macaddr": "02:00:00:00:00:01",
                "status": "installed",
                "vendor": "Dell",
                "assettag": "A1",
                "netboot": False,
                "comment": "original",
            },
        )
        self.upsert("rack", "r1", {"devices": [{"name": "node001", "position": 3}]})
        self.write(
            objects.put_secrets,
            "node",
            "node001",
            [{"name": "key", "secretname": "key", "content": "K", "path": "/etc/k"}],
        )
        self.assertEqual(
            self.write(objects.clone, "node", "node001", {"newhostname": "node010"}), "node010"
        )
        clone = self.node("node010")
        self.assertEqual(
            self.addresses("node010"),
            {
                "BOOTIF": ("cluster", "10.141.0.5", None),
                "BMC": ("ipmi", "10.148.0.5", None),
                "ib0": ("ib", "10.149.0.5", None),
            },
        )
        self.assertIsNone(clone["macaddr"])
        self.assertEqual((clone["status"], clone["vendor"], clone["assettag"]), (None, None, None))
        self.assertEqual(
            (clone["netboot"], clone["_netboot_source"], clone["comment"]),
            (False, "node", "original"),
        )
        self.assertEqual(
            self.store.secrets("node", "node010")["node"]["node010"],
            [{"name": "key", "secretname": "key", "content": "K", "path": "/etc/k"}],
        )
        self.assertIsNone(next(d for d in self.store.inventory() if d["name"] == "node010")["rack"])
        # The source is untouched.
        self.assertEqual(
            self.addresses("node001")["BOOTIF"], ("cluster", "10.141.0.1", "02:00:00:00:00:01")
        )

    def test_clone_node_keeps_extra_interfaces(self) -> None:
        """Interfaces the source has beyond its group's are cloned too, on
        the same network, with a fresh address."""
        self.upsert(
            "node",
            "node001",
            {"interfaces": [{"interface": "eth1", "network": "ipmi", "ipaddress": "10.148.9.9"}]},
        )
        self.write(objects.clone, "node", "node001", {"newhostname": "node010"})
        self.assertEqual(self.addresses("node010")["eth1"], ("ipmi", "10.148.0.6", None))

    def test_clone_body_overrides(self) -> None:
        """Fields in the clone body override the copy, interfaces included."""
        self.write(
            objects.clone,
            "node",
            "node002",
            {
                "newhostname": "node011",
                "comment": "copy",
                "provision_method": "http",
                "interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.5.5"}],
            },
        )
        node = self.node("node011")
        self.assertEqual(
            (node["comment"], node["provision_method"], node["_provision_method_source"]),
            ("copy", "http", "node"),
        )
        self.assertEqual(self.addresses("node011")["BOOTIF"], ("cluster", "10.141.5.5", None))
        self.assertEqual(self.addresses("node011")["BMC"], ("ipmi", "10.148.0.5", None))

    def test_clone_refusals(self) -> None:
        """Cloning needs a new name that is free, and a source that exists."""
        self.assertEqual(
            self.refused(objects.clone, "node", "node001", {}),
            "newhostname: required to clone node 'node001'",
        )
        self.assertEqual(
            self.refused(objects.clone, "node", "node001", {"newhostname": "node002"}),
            "node 'node002' already exists",
        )
        self.assertEqual(
            self.refused(objects.clone, "node", "nope", {"newhostname": "x"}, error=NotFound),
            "node 'nope' does not exist",
        )

    def test_clone_group(self) -> None:
        """A cloned group has the same interface networks and settings, no members."""
        self.write(objects.clone, "group", "compute", {"newgroupname": "gpu", "osimage": ""})
        gpu = self.store.show("group", "gpu")
        self.assertEqual(
            [(i["interface"], i["network"]) for i in gpu["interfaces"]],
            [("BOOTIF", "cluster"), ("BMC", "ipmi"), ("ib0", "ib")],
        )
        self.assertEqual((gpu["osimage"], gpu["bmcsetupname"]), (None, "compute"))
        self.assertEqual(self.store.members("group", "gpu"), [])

    def test_clone_switch_fresh_address(self) -> None:
        """A cloned switch gets a fresh address on the same network, and its secrets."""
        self.upsert("switch", "sw1", {"network": "ipmi", "rw": "private-rw"})
        self.write(objects.clone, "switch", "sw1", {"newswitchname": "sw2"})
        sw1, sw2 = self.store.show("switch", "sw1"), self.store.show("switch", "sw2")
        self.assertEqual((sw1["network"], sw1["ipaddress"]), ("ipmi", "10.148.0.5"))
        self.assertEqual(
            (sw2["network"], sw2["ipaddress"], sw2["rw"]), ("ipmi", "10.148.0.6", "private-rw")
        )


class DeleteTests(StoreTestCase):
    def test_group_with_members_refused(self) -> None:
        """A group with nodes cannot be deleted; the message names them."""
        self.assertEqual(
            self.refused(objects.delete, "group", "compute"),
            (
                "group 'compute' is still used by node node001, node node002, node node003, node "
                "node004"
            ),
        )

    def test_network_with_interfaces_refused(self) -> None:
        """A network with interfaces on it cannot be deleted; the message names them."""
        self.assertEqual(
            self.refused(objects.delete, "network", "ib"),
            (
                "network 'ib' is still used by node node001 (interface ib0), node node002 "
                "(interface ib0), node node003 (interface ib0), node node004 (interface ib0), "
                "group compute (interface ib0)"
            ),
        )

    def test_osimage_in_use_refused(self) -> None:
        """An osimage a group or node uses cannot be deleted."""
        self.assertEqual(
            self.refused(objects.delete, "osimage", "compute"),
            "osimage 'compute' is still used by group compute",
        )
        self.upsert("osimage", "img2", {"path": "/images/img2"})
        self.upsert("node", "node002", {"osimage": "img2"})
        self.assertEqual(
            self.refused(objects.delete, "osimage", "img2"),
            "osimage 'img2' is still used by node node002",
        )

    def test_bmcsetup_in_use_refused(self) -> None:
        """A bmcsetup a group or node uses cannot be deleted."""
        self.assertEqual(
            self.refused(objects.delete, "bmcsetup", "compute"),
            "bmcsetup 'compute' is still used by group compute",
        )
        self.upsert("bmcsetup", "other", {})
        self.upsert("node", "node004", {"bmcsetup": "other"})
        self.assertEqual(
            self.refused(objects.delete, "bmcsetup", "other"),
            "bmcsetup 'other' is still used by node node004",
        )

    def test_delete_unknown(self) -> None:
        """Deleting what does not exist is NotFound."""
        self.assertEqual(
            self.refused(objects.delete, "node", "node999", error=NotFound),
            "node 'node999' does not exist",
        )

    def test_delete_node_frees_addresses(self) -> None:
        """A deleted node's addresses and MAC are free again."""
        self.upsert("node", "node002", {"macaddr": "02:00:00:00:00:02"})
        self.write(objects.delete, "node", "node002")
        self.assertRaises(NotFound, self.store.show, "node", "node002")
        self.assertEqual(self.store.nextfreeip("cluster"), "10.141.0.2")
        self.assertEqual(self.store.ipinfo("cluster", "10.141.0.2"), {"status": "free"})
        self.upsert("node", "node003", {"macaddr": "02:00:00:00:00:02"})
        self.assertEqual(self.node("node003")["macaddr"], "02:00:00:00:00:02")

    def test_delete_in_order(self) -> None:
        """Once its users are gone, everything can be deleted."""
        for number in range(1, 5):
            self.write(objects.delete, "node", f"node{number:03d}")
        self.write(objects.delete, "group", "compute")
        self.write(objects.delete, "osimage", "compute")
        self.write(objects.delete, "bmcsetup", "compute")
        self.write(objects.delete, "network", "ib")
        self.assertEqual(self.store.objects_of("node"), {})
        self.assertEqual(sorted(self.store.objects_of("network")), ["cluster", "ipmi"])
        self.assertEqual(self.store.members("network", "cluster"), ["controller"])


class InheritanceTests(StoreTestCase):
    def test_provision_method_chain(self) -> None:
        """provision_method resolves node -> group -> cluster -> default, with
        _provision_method_source naming the level and _override set only when
        the node sets a value itself."""
        node = self.node("node001")
        self.assertEqual(
            (node["provision_method"], node["_provision_method_source"], node["_override"]),
            ("torrent", "group", False),
        )
        self.upsert("group", "compute", {"provision_method": None})
        self.write(objects.update_cluster, {"provision_method": "http"})
        node = self.node("node001")
        self.assertEqual(
            (node["provision_method"], node["_provision_method_source"], node["_override"]),
            ("http", "cluster", False),
        )
        group = self.store.show("group", "compute")
        self.assertEqual(
            (group["provision_method"], group["_provision_method_source"]), ("http", "cluster")
        )
        self.write(objects.update_cluster, {"provision_method": None})
        node = self.node("node001")
        self.assertEqual(
            (node["provision_method"], node["_provision_method_source"]), ("torrent", "default")
        )
        self.upsert("node", "node001", {"provision_method": "ftp"})
        node = self.node("node001")
        self.assertEqual(
            (node["provision_method"], node["_provision_method_source"], node["_override"]),
            ("ftp", "node", True),
        )
        self.assertEqual(self.node("node002")["provision_method"], "torrent")
        self.upsert("node", "node001", {"provision_method": None})
        node = self.node("node001")
        self.assertEqual((node["_provision_method_source"], node["_override"]), ("default", False))

    def test_group_fields_under_other_names(self) -> None:
        """A node's setupbmc comes from the group's bmcsetup flag, its bmcsetup
        from the group's bmcsetupname."""
        node = self.node("node001")
        self.assertEqual(
            (
                node["setupbmc"],
                node["_setupbmc_source"],
                node["bmcsetup"],
                node["_bmcsetup_source"],
            ),
            (True, "group", "compute", "group"),
        )
        self.upsert("group", "compute", {"bmcsetup": False, "bmcsetupname": None})
        node = self.node("node001")
        self.assertEqual(
            (
                node["setupbmc"],
                node["_setupbmc_source"],
                node["bmcsetup"],
                node["_bmcsetup_source"],
            ),
            (False, "group", None, "default"),
        )
        self.assertEqual(self.store.members("bmcsetup", "compute"), [])

    def test_non_inherited_field_is_no_override(self) -> None:
        """Setting a field that does not inherit (comment) is not an override."""
        self.upsert("node", "node002", {"comment": "rack 3"})
        self.assertIs(self.node("node002")["_override"], False)

    def test_node_osimage_override(self) -> None:
        """A node's own osimage wins over its group's and counts it as a member."""
        self.upsert("osimage", "img2", {})
        self.upsert("node", "node003", {"osimage": "img2"})
        self.assertEqual(
            (self.node("node003")["osimage"], self.node("node003")["_osimage_source"]),
            ("img2", "node"),
        )
        self.assertEqual(self.store.members("osimage", "img2"), ["node003"])
        self.assertEqual(
            self.store.members("osimage", "compute"), ["node001", "node002", "node004"]
        )

    def test_ntp_server_from_cluster_or_network(self) -> None:
        """A network's ntp_server is the cluster's unless it sets its own."""
        net = self.store.show("network", "ipmi")
        self.assertEqual(
            (net["ntp_server"], net["_ntp_server_source"]), ("10.141.255.254", "cluster")
        )
        self.upsert("network", "ipmi", {"ntp_server": "10.148.255.250"})
        net = self.store.show("network", "ipmi")
        self.assertEqual(
            (net["ntp_server"], net["_ntp_server_source"], net["_override"]),
            ("10.148.255.250", "network", True),
        )

    def test_scripts_base64(self) -> None:
        """Scripts are accepted as plain text or base64, kept as text, answered base64."""
        self.upsert("group", "compute", {"prescript": "echo group"})
        node = self.node("node001")
        self.assertEqual(
            (node["prescript"], node["_prescript_source"]), (b64(b"echo group"), "group")
        )
        self.upsert("node", "node001", {"prescript": b64(b"echo node")})
        self.assertEqual(self.node("node001")["prescript"], b64(b"echo node"))
        self.assertEqual(self.store.state.get("node", "node001").data["prescript"], "echo node")


class IpamTests(StoreTestCase):
    def tiny(self) -> None:
        """192.168.10.0/29: gateway .1, nameserver .6, DHCP .3-.4."""
        self.upsert(
            "network",
            "tiny",
            {
                "network": "192.168.10.0/29",
                "gateway": "192.168.10.1",
                "nameserver_ip": "192.168.10.6",
                "dhcp": True,
                "dhcp_range_begin": "192.168.10.3",
                "dhcp_range_end": "192.168.10.4",
            },
        )

    def test_nextfreeip_skips(self) -> None:
        """_nextfreeip skips network, gateway, DHCP range, taken addresses,
        nameserver and broadcast; None when the network is full."""
        self.tiny()
        self.assertEqual(self.store.nextfreeip("tiny"), "192.168.10.2")
        self.upsert("otherdev", "pdu1", {"network": "tiny", "ipaddress": "192.168.10.2"})
        self.assertEqual(self.store.nextfreeip("tiny"), "192.168.10.5")
        self.upsert("otherdev", "pdu2", {"network": "tiny"})
        self.assertEqual(self.store.show("otherdev", "pdu2")["ipaddress"], "192.168.10.5")
        self.assertIsNone(self.store.nextfreeip("tiny"))
        self.assertEqual(
            self.refused(objects.upsert, "otherdev", "pdu3", {"network": "tiny"}),
            "ipaddress: network tiny has no free address left",
        )

    def test_nextfreeip_makes_no_reservation(self) -> None:
        """Asking for the next free address twice answers the same address."""
        self.assertEqual(self.store.nextfreeip("cluster"), "10.141.0.5")
        self.assertEqual(self.store.nextfreeip("cluster"), "10.141.0.5")

    def test_nextfreeip_fills_gaps(self) -> None:
        """A freed low address is handed out before higher ones."""
        self.upsert(
            "node", "node002", {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.0.50"}]}
        )
        self.assertEqual(self.store.nextfreeip("cluster"), "10.141.0.2")

    def test_nextfreeip_jumps_dhcp_range(self) -> None:
        """Allocation jumps over the whole DHCP range."""
        self.tiny()
        self.upsert(
            "network",
            "tiny",
            {
                "network": "192.168.10.0/28",
                "nameserver_ip": "192.168.10.14",
                "dhcp_range_begin": "192.168.10.2",
                "dhcp_range_end": "192.168.10.9",
            },
        )
        self.assertEqual(self.store.nextfreeip("tiny"), "192.168.10.10")

    def test_ipinfo_and_taken(self) -> None:
        """An address is free, taken by a device, or the gateway; outside the network: NotFound."""
        self.assertEqual(
            self.store.ipinfo("cluster", "10.141.0.3"), {"status": "taken", "device": "node003"}
        )
        self.assertEqual(self.store.ipinfo("cluster", "10.141.0.9"), {"status": "free"})
        self.assertEqual(
            self.store.ipinfo("ipmi", "10.148.255.254"), {"status": "taken", "device": "gateway"}
        )
        self.assertRaises(NotFound, self.store.ipinfo, "cluster", "10.142.0.1")
        self.assertRaises(Invalid, self.store.ipinfo, "cluster", "not-an-ip")
        self.assertEqual(
            self.store.taken("ib"),
            [{"ipaddress": f"10.149.0.{n}", "device": f"node00{n}"} for n in range(1, 5)],
        )

    def test_explicit_ip_outside_network(self) -> None:
        """An interface address outside its network is refused, naming network and CIDR."""
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.142.0.1"}]},
            ),
            "interfaces[0].ipaddress: 10.142.0.1 is not inside network cluster (10.141.0.0/16)",
        )

    def test_duplicate_ip_names_holder(self) -> None:
        """An address held by another device is refused, naming the holder."""
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.0.1"}]},
            ),
            (
                "interfaces[0].ipaddress: 10.141.0.1 is already taken by node node001 (interface "
                "BOOTIF)"
            ),
        )
        self.upsert("switch", "sw1", {"ipaddress": "10.148.1.1"})
        self.assertEqual(self.store.show("switch", "sw1")["network"], "ipmi")
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {"interfaces": [{"interface": "BMC", "ipaddress": "10.148.1.1"}]},
            ),
            "interfaces[0].ipaddress: 10.148.1.1 is already taken by switch sw1",
        )
        self.assertEqual(
            self.refused(objects.upsert, "otherdev", "pdu", {"ipaddress": "10.141.0.4"}),
            "ipaddress: 10.141.0.4 is already taken by node node004 (interface BOOTIF)",
        )

    def test_reserved_addresses_refused(self) -> None:
        """Gateway, broadcast and network addresses are refused to nodes."""
        iface = lambda ip: {"interfaces": [{"interface": "BOOTIF", "ipaddress": ip}]}
        self.assertEqual(
            self.refused(objects.upsert, "node", "node002", iface("10.141.255.254")),
            "interfaces[0].ipaddress: 10.141.255.254 is the gateway of network cluster",
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node002", iface("10.141.255.255")),
            (
                "interfaces[0].ipaddress: 10.141.255.255 is the network or broadcast address of "
                "cluster"
            ),
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node002", iface("10.141.0.0")),
            "interfaces[0].ipaddress: 10.141.0.0 is the network or broadcast address of cluster",
        )

    def test_dhcp_range_needs_force(self) -> None:
        """An address in the DHCP range is refused unless forced."""
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.0.210"}]},
            ),
            "interfaces[0].ipaddress: 10.141.0.210 lies in the DHCP range of network cluster",
        )
        self.upsert(
            "node",
            "node002",
            {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.0.210", "force": True}]},
        )
        self.assertEqual(self.addresses("node002")["BOOTIF"], ("cluster", "10.141.0.210", None))
        self.assertEqual(self.store.nextfreeip("cluster"), "10.141.0.2")
        # force does not open the gateway
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {
                    "interfaces": [
                        {"interface": "BOOTIF", "ipaddress": "10.141.255.254", "force": True}
                    ]
                },
            ),
            "interfaces[0].ipaddress: 10.141.255.254 is the gateway of network cluster",
        )

    def test_mac_normalized_and_unique(self) -> None:
        """MACs are stored lowercase with colons; a MAC held by another
        interface is refused, naming the holder; re-posting the same is fine."""
        self.upsert("node", "node001", {"macaddr": "AA-BB-CC-DD-EE-01"})
        self.assertEqual(self.node("node001")["macaddr"], "aa:bb:cc:dd:ee:01")
        self.assertEqual(
            self.addresses("node001")["BOOTIF"], ("cluster", "10.141.0.1", "aa:bb:cc:dd:ee:01")
        )
        self.assertIs(self.upsert("node", "node001", {"macaddr": "aa:bb:cc:dd:ee:01"}), False)
        self.assertEqual(
            self.refused(objects.upsert, "node", "node002", {"macaddr": "aabbccddee01"}),
            (
                "macaddr.macaddress: aa:bb:cc:dd:ee:01 already belongs to node node001 (interface "
                "BOOTIF)"
            ),
        )
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node001",
                {"interfaces": [{"interface": "BMC", "macaddress": "aa:bb:cc:dd:ee:01"}]},
            ),
            (
                "interfaces[0].macaddress: aa:bb:cc:dd:ee:01 already belongs to node node001 "
                "(interface BOOTIF)"
            ),
        )
        self.assertEqual(
            self.refused(objects.upsert, "node", "node002", {"macaddr": "zz:bb:cc:dd:ee:01"}),
            "macaddr.macaddress: 'zz:bb:cc:dd:ee:01' is not a MAC address",
        )

    def test_interface_without_network_finds_it(self) -> None:
        """An interface given only an address takes the network holding it;
        one given a network only gets the next free address."""
        self.upsert(
            "node",
            "node002",
            {
                "interfaces": [
                    {"interface": "eth1", "ipaddress": "10.148.3.3"},
                    {"interface": "eth2", "network": "ib"},
                ]
            },
        )
        self.assertEqual(self.addresses("node002")["eth1"], ("ipmi", "10.148.3.3", None))
        self.assertEqual(self.addresses("node002")["eth2"], ("ib", "10.149.0.5", None))
        self.assertEqual(
            self.refused(
                objects.upsert,
                "node",
                "node002",
                {"interfaces": [{"interface": "eth3", "ipaddress": "192.0.2.1"}]},
            ),
            "interfaces[0].ipaddress: no configured network holds 192.0.2.1",
        )

    def test_move_group_same_networks_keeps_addresses(self) -> None:
        """A node moved to a group with the same interfaces and networks keeps its addresses."""
        self.write(objects.clone, "group", "compute", {"newgroupname": "compute2"})
        before = self.addresses("node002")
        self.upsert("node", "node002", {"group": "compute2"})
        self.assertEqual(self.node("node002")["group"], "compute2")
        self.assertEqual(self.addresses("node002"), before)

    def test_move_group_other_network_renumbers(self) -> None:
        """A node moved to a group whose interface is on another network gets
        a fresh address there; interfaces on equal networks stay."""
        self.upsert("network", "cluster2", {"network": "10.142.0.0/16"})
        self.upsert(
            "group",
            "other",
            {
                "interfaces": [
                    {"interface": "BOOTIF", "network": "cluster2"},
                    {"interface": "BMC", "network": "ipmi"},
                ]
            },
        )
        self.upsert("node", "node002", {"group": "other"})
        self.assertEqual(
            self.addresses("node002"),
            {
                "BOOTIF": ("cluster2", "10.142.0.1", None),
                "BMC": ("ipmi", "10.148.0.2", None),
                "ib0": ("ib", "10.149.0.2", None),
            },
        )
        self.assertEqual(self.store.ipinfo("cluster", "10.141.0.2"), {"status": "free"})

    def test_group_interface_added_to_members(self) -> None:
        """A group interface added later is added to every member with a free address."""
        self.upsert("network", "data", {"network": "10.200.0.0/24"})
        self.upsert("group", "compute", {"interfaces": [{"interface": "eth9", "network": "data"}]})
        for n in range(1, 5):
            self.assertEqual(self.addresses(f"node00{n}")["eth9"], ("data", f"10.200.0.{n}", None))
        # and a new member gets it too
        self.upsert("node", "node005", {"group": "compute"})
        self.assertEqual(self.addresses("node005")["eth9"], ("data", "10.200.0.5", None))

    def test_group_interface_moved_moves_members(self) -> None:
        """A group interface moved to another network moves the members' interfaces."""
        self.upsert("network", "oob2", {"network": "10.160.0.0/24"})
        self.upsert("group", "compute", {"interfaces": [{"interface": "BMC", "network": "oob2"}]})
        self.assertEqual(
            [self.addresses(f"node00{n}")["BMC"] for n in range(1, 5)],
            [("oob2", f"10.160.0.{n}", None) for n in range(1, 5)],
        )
        self.assertEqual(self.store.taken("ipmi"), [])

    def test_group_interface_deleted_from_members(self) -> None:
        """Deleting a group interface deletes it from the members and frees the addresses."""
        self.write(objects.delete_interface, "group", "compute", "ib0")
        self.assertEqual(sorted(self.addresses("node001")), ["BMC", "BOOTIF"])
        self.assertEqual(self.store.taken("ib"), [])
        self.write(objects.delete, "network", "ib")

    def test_network_cidr_renumbers(self) -> None:
        """Changing a network's CIDR moves every address by its host offset,
        gateway and nameserver included."""
        self.upsert(
            "node", "node003", {"interfaces": [{"interface": "ib0", "ipaddress": "10.149.1.7"}]}
        )
        self.upsert("network", "ib", {"network": "10.150.0.0/16"})
        net = self.store.show("network", "ib")
        self.assertEqual(
            (net["network"], net["gateway"], net["nameserver_ip"]),
            ("10.150.0.0/16", "10.150.255.254", "10.150.255.254"),
        )
        self.assertEqual(
            [self.addresses(f"node00{n}")["ib0"][1] for n in range(1, 5)],
            ["10.150.0.1", "10.150.0.2", "10.150.1.7", "10.150.0.4"],
        )
        self.assertEqual(
            self.store.ipinfo("ib", "10.150.1.7"), {"status": "taken", "device": "node003"}
        )
        self.assertNotIn(ip_key("10.149.0.1"), self.store.state.ips)
        self.assertEqual(self.store.nextfreeip("ib"), "10.150.0.3")

    def test_network_cidr_renumbers_controller_and_dhcp(self) -> None:
        """Renumbering the provisioning network moves the controller (which
        holds the gateway address), the DHCP range and the nodes together."""
        self.upsert("network", "cluster", {"network": "10.142.0.0/16"})
        net = self.store.show("network", "cluster")
        self.assertEqual(
            (net["gateway"], net["nameserver_ip"], net["dhcp_range_begin"], net["dhcp_range_end"]),
            ("10.142.255.254", "10.142.255.254", "10.142.0.200", "10.142.0.253"),
        )
        self.assertEqual(self.store.show("controller", "controller")["ipaddress"], "10.142.255.254")
        self.assertEqual(self.addresses("node004")["BOOTIF"], ("cluster", "10.142.0.4", None))
        self.assertEqual(
            self.store.taken("cluster")[-1], {"ipaddress": "10.142.255.254", "device": "controller"}
        )

    def test_network_cidr_refused_when_not_fitting(self) -> None:
        """A CIDR too small for the addresses on it is refused, naming them;
        nothing moves."""
        self.upsert(
            "node", "node003", {"interfaces": [{"interface": "ib0", "ipaddress": "10.149.1.7"}]}
        )
        self.assertEqual(
            self.refused(objects.upsert, "network", "ib", {"network": "10.149.0.0/24"}),
            "gateway: 10.149.255.254 does not fit in 10.149.0.0/24; give a new value",
        )
        self.assertEqual(
            self.refused(
                objects.upsert,
                "network",
                "ib",
                {
                    "network": "10.149.0.0/24",
                    "gateway": "10.149.0.254",
                    "nameserver_ip": "10.149.0.254",
                },
            ),
            "network: 10.149.0.0/24 cannot hold 10.149.1.7 of node003",
        )

    def test_network_shrink_keeping_fitting_addresses(self) -> None:
        """Shrinking a network whose addresses all fit keeps them."""
        self.upsert(
            "network",
            "ib",
            {
                "network": "10.149.0.0/24",
                "gateway": "10.149.0.254",
                "nameserver_ip": "10.149.0.253",
            },
        )
        self.assertEqual(self.addresses("node004")["ib0"], ("ib", "10.149.0.4", None))

    def test_dhcp_range_checks(self) -> None:
        """A DHCP range must lie in the network, run forwards and not swallow node addresses."""
        self.assertEqual(
            self.refused(objects.upsert, "network", "cluster", {"dhcp_range_end": "10.141.0.100"}),
            "dhcp_range_end: 10.141.0.100 comes before dhcp_range_begin 10.141.0.200",
        )
        self.assertEqual(
            self.refused(objects.upsert, "network", "cluster", {"dhcp_range_begin": "10.142.0.1"}),
            "dhcp_range_begin: 10.142.0.1 is not inside 10.141.0.0/16",
        )
        self.assertEqual(
            self.refused(objects.upsert, "network", "cluster", {"dhcp_range_begin": "10.141.0.1"}),
            "dhcp_range_begin: the range would hold 10.141.0.1 of node node001",
        )

    def test_switch_and_otherdev_addresses(self) -> None:
        """Single-address devices take a network (next free address) or an
        address alone (its network found); clearing the network drops it."""
        self.upsert("switch", "sw1", {"network": "ipmi"})
        self.upsert("otherdev", "pdu1", {"ipaddress": "10.141.100.1"})
        self.assertEqual(
            (
                self.store.show("switch", "sw1")["network"],
                self.store.show("switch", "sw1")["ipaddress"],
            ),
            ("ipmi", "10.148.0.5"),
        )
        self.assertEqual(self.store.show("otherdev", "pdu1")["network"], "cluster")
        self.upsert("switch", "sw1", {"network": None})
        self.assertEqual(
            (
                self.store.show("switch", "sw1")["network"],
                self.store.show("switch", "sw1")["ipaddress"],
            ),
            (None, None),
        )
        self.assertEqual(self.store.ipinfo("ipmi", "10.148.0.5"), {"status": "free"})


class RackTests(StoreTestCase):
    def test_placement(self) -> None:
        """POSTing devices places them; the rack, its members and the inventory show them."""
        self.upsert("switch", "sw1", {})
        self.upsert(
            "rack",
            "r1",
            {
                "size": 10,
                "room": "A",
                "devices": [
                    {"name": "node001", "position": 1},
                    {
                        "name": "sw1",
                        "type": "switch",
                        "position": 2,
                        "height": 2,
                        "orientation": "back",
                        "vendor": "Arista",
                    },
                ],
            },
        )
        rack = self.store.show("rack", "r1")
        self.assertEqual(
            rack["devices"],
            [
                {
                    "name": "node001",
                    "type": "node",
                    "vendor": None,
                    "orientation": "front",
                    "height": 1,
                    "position": 1,
                },
                {
                    "name": "sw1",
                    "type": "switch",
                    "vendor": "Arista",
                    "orientation": "back",
                    "height": 2,
                    "position": 2,
                },
            ],
        )
        self.assertEqual(self.store.members("rack", "r1"), ["node001", "sw1"])
        self.assertEqual(
            [(d["name"], d["rack"]) for d in self.store.inventory("configured")],
            [("node001", "r1"), ("sw1", "r1")],
        )
        self.assertNotIn("node001", [d["name"] for d in self.store.inventory("unconfigured")])
        self.assertEqual(self.store.show("switch", "sw1")["vendor"], "Arista")

    def test_view_posted_back(self) -> None:
        """A rack's GET answer posted back (devices included) changes nothing."""
        self.upsert(
            "rack",
            "r1",
            {"devices": [{"name": "node001", "position": 7, "height": 2, "vendor": "HPE"}]},
        )
        view = self.store.show("rack", "r1")
        before = self.snapshot()
        self.assertIs(self.upsert("rack", "r1", view), False)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(
            view["devices"],
            [
                {
                    "name": "node001",
                    "type": "node",
                    "vendor": "HPE",
                    "orientation": "front",
                    "height": 2,
                    "position": 7,
                }
            ],
        )

    def test_devices_merge_into_content(self) -> None:
        """Devices not listed in a later POST stay where they are; listed
        ones move (lrack place sends only the devices it places)."""
        self.upsert(
            "rack",
            "r1",
            {"devices": [{"name": "node001", "position": 1}, {"name": "node002", "position": 2}]},
        )
        self.upsert("rack", "r1", {"devices": [{"name": "node002", "position": 5}]})
        self.assertEqual(
            [(d["name"], d["position"]) for d in self.store.show("rack", "r1")["devices"]],
            [("node001", 1), ("node002", 5)],
        )

    def test_overlap_refused(self) -> None:
        """Two devices on the same unit are refused, naming both."""
        self.upsert("rack", "r1", {"devices": [{"name": "node001", "position": 1, "height": 2}]})
        self.assertEqual(
            self.refused(
                objects.upsert,
                "rack",
                "r1",
                {
                    "devices": [
                        {"name": "node001", "position": 1, "height": 2},
                        {"name": "node002", "position": 2},
                    ]
                },
            ),
            "devices: node001 and node002 both take unit 2 of rack r1",
        )

    def test_overlap_across_posts_refused(self) -> None:
        """Placing a device over one already in the rack is refused."""
        self.upsert("rack", "r1", {"devices": [{"name": "node001", "position": 4}]})
        self.assertEqual(
            self.refused(
                objects.upsert,
                "rack",
                "r1",
                {
                    "devices": [
                        {"name": "node001", "position": 4},
                        {"name": "controller", "type": "controller", "position": 4},
                    ]
                },
            ),
            "devices: controller and node001 both take unit 4 of rack r1",
        )

    def test_fits_size(self) -> None:
        """A device must fit inside the rack's size; the top unit may be used."""
        self.assertEqual(
            self.refused(
                objects.upsert,
                "rack",
                "r1",
                {"size": 10, "devices": [{"name": "node001", "position": 10, "height": 2}]},
            ),
            "devices: node001 at 10 (height 2) does not fit rack of size 10",
        )
        self.upsert(
            "rack", "r1", {"size": 10, "devices": [{"name": "node001", "position": 9, "height": 2}]}
        )
        self.assertEqual(self.store.show("rack", "r1")["devices"][0]["position"], 9)

    def test_shrinking_rack_must_hold_devices(self) -> None:
        """A rack cannot shrink below the devices it holds."""
        self.upsert("rack", "r1", {"devices": [{"name": "node001", "position": 20}]})
        self.assertEqual(
            self.refused(objects.upsert, "rack", "r1", {"size": 10}),
            "devices: node001 at 20 (height 1) does not fit rack of size 10",
        )
        self.upsert("rack", "r1", {"size": 20})
        self.assertEqual(self.store.show("rack", "r1")["size"], 20)

    def test_unknown_device_refused(self) -> None:
        """Devices must exist and carry a position."""
        self.assertEqual(
            self.refused(
                objects.upsert, "rack", "r1", {"devices": [{"name": "node999", "position": 1}]}
            ),
            "devices[0].name: node 'node999' does not exist",
        )
        self.assertEqual(
            self.refused(objects.upsert, "rack", "r1", {"devices": [{"name": "node001"}]}),
            "devices[0].position: required to place node001 in a rack",
        )

    def test_rename_and_delete_rack(self) -> None:
        """A renamed rack keeps its devices; a deleted rack releases them."""
        self.upsert("rack", "r1", {"devices": [{"name": "node001", "position": 1}]})
        self.upsert("rack", "r1", {"newrackname": "r2"})
        self.assertEqual([d["rack"] for d in self.store.inventory("configured")], ["r2"])
        self.write(objects.delete, "rack", "r2")
        self.assertEqual(self.store.inventory("configured"), [])
        self.assertEqual(self.store.objects_of("rack"), {})

    def test_inventory_updates_and_clears(self) -> None:
        """The inventory updates vendor and height (still checked) and takes a device out."""
        self.upsert("rack", "r1", {"size": 5, "devices": [{"name": "node001", "position": 4}]})
        self.write(
            objects.update_inventory,
            [{"name": "node001", "type": "node", "vendor": "HPE", "height": 2}],
        )
        self.assertEqual(self.store.show("node", "node001")["vendor"], "HPE")
        self.assertEqual(
            self.refused(objects.update_inventory, [{"name": "node001", "height": 3}]),
            "devices: node001 at 4 (height 3) does not fit rack of size 5",
        )
        self.write(objects.clear_inventory, "node001", "node")
        self.assertEqual(self.store.inventory("configured"), [])
        self.assertEqual(self.store.show("rack", "r1")["devices"], [])


class SecretTests(StoreTestCase):
    def test_create_update_unchanged(self) -> None:
        """put_secrets answers created, unchanged or updated, and the store shows the values."""
        item = {
            "name": "ssh key",
            "secretname": "ssh key",
            "content": "PRIVATE",
            "path": "/root/.ssh/id_rsa",
        }
        self.assertEqual(self.write(objects.put_secrets, "node", "node001", [item]), "created")
        self.assertEqual(self.write(objects.put_secrets, "node", "node001", [item]), "unchanged")
        self.assertEqual(
            self.write(
                objects.put_secrets, "node", "node001", [{"name": "ssh key", "content": "NEW"}]
            ),
            "updated",
        )
        self.assertEqual(
            self.store.secrets("node", "node001", "ssh key"),
            {
                "node": {
                    "node001": [
                        {
                            "name": "ssh key",
                            "secretname": "ssh key",
                            "content": "NEW",
                            "path": "/root/.ssh/id_rsa",
                        }
                    ]
                }
            },
        )

    def test_node_secrets_include_group(self) -> None:
        """A node's secrets come with its group's; readonly views are masked."""
        self.write(
            objects.put_secrets,
            "group",
            "compute",
            [{"name": "munge", "secretname": "munge", "content": "MUNGE"}],
        )
        self.write(
            objects.put_secrets,
            "node",
            "node002",
            [{"name": "host", "secretname": "host", "content": "HOST", "path": "/etc/h"}],
        )
        self.assertEqual(
            self.store.secrets("node", "node002"),
            {
                "node": {
                    "node002": [
                        {"name": "host", "secretname": "host", "content": "HOST", "path": "/etc/h"}
                    ]
                },
                "group": {
                    "compute": [
                        {"name": "munge", "secretname": "munge", "content": "MUNGE", "path": None}
                    ]
                },
            },
        )
        self.assertEqual(
            self.store.secrets("group", "compute", reveal=False),
            {
                "group": {
                    "compute": [
                        {
                            "name": "munge",
                            "secretname": "munge",
                            "content": "********",
                            "path": None,
                        }
                    ]
                }
            },
        )
        self.assertEqual(
            self.store.secrets(),
            {
                "node": {
                    "node002": [
                        {"name": "host", "secretname": "host", "content": "HOST", "path": "/etc/h"}
                    ]
                },
                "group": {
                    "compute": [
                        {"name": "munge", "secretname": "munge", "content": "MUNGE", "path": None}
                    ]
                },
            },
        )

    def test_rename_clone_delete(self) -> None:
        """A secret can be renamed (newsecretname), cloned (overrides apply) and deleted."""
        self.write(
            objects.put_secrets,
            "node",
            "node001",
            [{"name": "a", "secretname": "a", "content": "A", "path": "/a"}],
        )
        self.assertEqual(
            self.write(
                objects.put_secrets, "node", "node001", [{"secretname": "a", "newsecretname": "b"}]
            ),
            "updated",
        )
        self.write(
            objects.clone_secret,
            "node",
            "node001",
            "b",
            [{"secretname": "b", "newsecretname": "c", "path": "/c"}],
        )
        self.assertEqual(
            self.store.secrets("node", "node001")["node"]["node001"],
            [
                {"name": "b", "secretname": "b", "content": "A", "path": "/a"},
                {"name": "c", "secretname": "c", "content": "A", "path": "/c"},
            ],
        )
        self.write(objects.delete_secret, "node", "node001", "b")
        self.assertEqual(
            self.store.secrets("node", "node001")["node"]["node001"],
            [{"name": "c", "secretname": "c", "content": "A", "path": "/c"}],
        )
        self.assertRaises(NotFound, self.store.secrets, "node", "node001", "b")

    def test_refusals(self) -> None:
        """Bad secret bodies are refused, naming the item and field."""
        self.write(
            objects.put_secrets,
            "node",
            "node001",
            [
                {"name": "a", "secretname": "a", "content": "A"},
                {"name": "b", "secretname": "b", "content": "B"},
            ],
        )
        self.assertEqual(
            self.refused(objects.put_secrets, "node", "node001", [{"secretname": "new"}]),
            "node001[0].content: required to create secret 'new'",
        )
        self.assertEqual(
            self.refused(
                objects.put_secrets,
                "node",
                "node001",
                [{"name": "x", "secretname": "x", "content": "X", "path": "relative"}],
            ),
            "node001[0].path: 'relative' must be an absolute path",
        )
        self.assertEqual(
            self.refused(
                objects.put_secrets, "node", "node001", [{"secretname": "a", "newsecretname": "b"}]
            ),
            "node001[0].newsecretname: secret 'b' already exists",
        )
        self.assertEqual(
            self.refused(objects.put_secrets, "node", "node001", []),
            "secrets: expected a non-empty list of secrets for node node001",
        )
        self.assertEqual(
            self.refused(objects.delete_secret, "node", "node001", "zz", error=NotFound),
            "node node001 has no secret 'zz'",
        )
        self.assertEqual(
            self.refused(
                objects.clone_secret,
                "node",
                "node001",
                "a",
                [{"secretname": "a", "newsecretname": "b"}],
            ),
            "newsecretname: secret 'b' already exists",
        )
        self.assertEqual(
            self.refused(
                objects.put_secrets,
                "node",
                "node999",
                [{"name": "a", "secretname": "a", "content": "A"}],
                error=NotFound,
            ),
            "node 'node999' does not exist",
        )

    def test_secrets_follow_owner(self) -> None:
        """A renamed node keeps its secrets; a cloned node copies them; a deleted one loses them."""
        self.write(
            objects.put_secrets,
            "node",
            "node001",
            [{"name": "a", "secretname": "a", "content": "A"}],
        )
        self.upsert("node", "node001", {"newhostname": "login"})
        self.write(objects.clone, "node", "login", {"newhostname": "login2"})
        self.write(objects.delete, "node", "login")
        self.assertEqual(
            self.store.secrets()["node"],
            {"login2": [{"name": "a", "secretname": "a", "content": "A", "path": None}]},
        )

    def test_bmc_password_masked(self) -> None:
        """BMC passwords and switch write communities are shown only when revealed."""
        self.upsert("bmcsetup", "compute", {"password": "bmc-pass"})
        self.upsert("switch", "sw1", {"rwcommunity": "rw-comm"})
        self.assertEqual(self.store.show("bmcsetup", "compute")["password"], "bmc-pass")
        self.assertEqual(
            self.store.show("bmcsetup", "compute", reveal=False)["password"], "********"
        )
        self.assertEqual(self.store.show("switch", "sw1")["rw"], "rw-comm")
        self.assertEqual(self.store.objects_of("switch", reveal=False)["sw1"]["rw"], "********")


class TagTests(StoreTestCase):
    def test_tags(self) -> None:
        """A tag records the image's current files; re-tagging replaces it;
        tags are listed per image and overall."""
        self.upsert(
            "osimage", "compute", {"kernelfile": "k1", "initrdfile": "i1", "imagefile": "t1"}
        )
        self.assertIs(self.write(objects.put_tag, "compute", {"tag": "v1"}), True)
        self.upsert("osimage", "compute", {"kernelfile": "k2"})
        self.assertIs(self.write(objects.put_tag, "compute", {"tag": "v2"}), True)
        self.assertIs(self.write(objects.put_tag, "compute", {"tag": "v2"}), False)
        expected = {
            "v1": {
                "name": "v1",
                "osimage": "compute",
                "kernelfile": "k1",
                "initrdfile": "i1",
                "imagefile": "t1",
            },
            "v2": {
                "name": "v2",
                "osimage": "compute",
                "kernelfile": "k2",
                "initrdfile": "i1",
                "imagefile": "t1",
            },
        }
        self.assertEqual(self.store.tags("compute"), expected)
        self.assertEqual(self.store.tags(), expected)
        self.assertEqual(self.store.show("osimage", "compute")["tags"], "v1,v2")
        self.upsert("osimage", "compute", {"newosimage": "rocky"})
        self.assertEqual(self.store.tags("rocky")["v1"]["osimage"], "rocky")

    def test_tag_in_use_and_delete(self) -> None:
        """A tag a group uses cannot be deleted; an unused one can; unknown: NotFound."""
        self.write(objects.put_tag, "compute", {"tag": "v1"})
        self.write(objects.put_tag, "compute", {"tag": "v2"})
        self.upsert("group", "compute", {"osimagetag": "v1"})
        self.assertEqual(
            self.refused(objects.delete_tag, "compute", "v1"),
            "tag 'v1' is still used by group compute",
        )
        self.write(objects.delete_tag, "compute", "v2")
        self.assertEqual(list(self.store.tags("compute")), ["v1"])
        self.assertEqual(
            self.refused(objects.delete_tag, "compute", "v3", error=NotFound),
            "osimage 'compute' has no tag 'v3'",
        )
        self.assertEqual(
            self.refused(objects.put_tag, "compute", {"tag": "Bad Tag"}),
            "tag: 'Bad Tag' is not a valid tag name",
        )

    def test_tags_not_settable_directly(self) -> None:
        """tags in an osimage body are output only: ignored, not stored."""
        self.write(objects.put_tag, "compute", {"tag": "v1"})
        self.upsert("osimage", "compute", {"tags": ["x", "y"]})
        self.assertEqual(self.store.show("osimage", "compute")["tags"], "v1")


class UserTests(StoreTestCase):
    @defer.inlineCallbacks
    def test_check_user(self) -> Any:
        """A stored user checks with the right password (answering the role)
        and not with a wrong one; unknown users never check."""
        created = yield defer.ensureDeferred(
            self.store.put_user("alice", {"password": "alice-pass1", "role": "admin"}, ADMIN)
        )
        self.assertIs(created, True)
        self.assertEqual(
            (yield defer.ensureDeferred(self.store.check_user("alice", "alice-pass1"))), "admin"
        )
        self.assertIsNone(
            (yield defer.ensureDeferred(self.store.check_user("alice", "alice-pass2")))
        )
        self.assertIsNone((yield defer.ensureDeferred(self.store.check_user("bob", "alice-pass1"))))
        view = self.store.show("user", "alice")
        self.assertEqual(view, {"name": "alice", "role": "admin", "comment": None})
        self.assertTrue(self.store.user("alice").data["pwhash"].startswith("scrypt$"))

    @defer.inlineCallbacks
    def test_role_rename_delete(self) -> Any:
        """Users default to readonly, keep their password through a rename
        and a role change, and stop checking once deleted."""
        yield defer.ensureDeferred(self.store.put_user("bob", {"password": "bob-password"}, ADMIN))
        self.assertEqual(
            (yield defer.ensureDeferred(self.store.check_user("bob", "bob-password"))), "readonly"
        )
        created = yield defer.ensureDeferred(
            self.store.put_user("bob", {"newusername": "robert", "role": "admin"}, ADMIN)
        )
        self.assertIs(created, False)
        self.assertIsNone(
            (yield defer.ensureDeferred(self.store.check_user("bob", "bob-password")))
        )
        self.assertEqual(
            (yield defer.ensureDeferred(self.store.check_user("robert", "bob-password"))), "admin"
        )
        yield defer.ensureDeferred(
            self.store.put_user("robert", {"password": "new-password"}, ADMIN)
        )
        self.assertIsNone(
            (yield defer.ensureDeferred(self.store.check_user("robert", "bob-password")))
        )
        self.assertEqual(
            (yield defer.ensureDeferred(self.store.check_user("robert", "new-password"))), "admin"
        )
        self.write(objects.delete, "user", "robert")
        self.assertIsNone(
            (yield defer.ensureDeferred(self.store.check_user("robert", "new-password")))
        )
        self.assertEqual(self.store.objects_of("user"), {})

    @defer.inlineCallbacks
    def test_user_refusals(self) -> Any:
        """Short passwords, a missing password, the ini admin's name, bad
        roles and internal fields are refused, naming the field."""
        cases = [
            ("carol", {"password": "short"}, "password: must be at least 8 characters"),
            ("carol", {"role": "admin"}, "password: required to create user 'carol'"),
            (
                ADMIN,
                {"password": "long-enough"},
                f"name: {ADMIN!r} is the ini file's admin and cannot be managed here",
            ),
            (
                "carol",
                {"password": "long-enough", "role": "root"},
                "role: must be one of admin, readonly, got 'root'",
            ),
            ("carol", {"password": "long-enough", "pwhash": "x"}, "pwhash: unknown field for user"),
            (
                "Carol",
                {"password": "long-enough"},
                (
                    "name: 'Carol' is not a valid user name "
                    "(lowercase letters, digits, '.', '_' and '-', at most 63 characters)"
                ),
            ),
        ]
        for name, body, message in cases:
            try:
                yield defer.ensureDeferred(self.store.put_user(name, body, ADMIN))
            except Invalid as exc:
                self.assertEqual(exc.message, message)
            else:
                self.fail(f"user {name} {body} was accepted")
        self.assertEqual(self.store.objects_of("user"), {})


class JournalTests(StoreTestCase):
    def test_add_and_list(self) -> None:
        """Entries are stored in order per target controller, with created
        defaulting to the clock and masteronly normalised."""
        count = result_of(
            self.store.add_journal(
                [
                    {
                        "function": "update",
                        "object": "node001",
                        "payload": "{}",
                        "sendfor": "controller",
                        "sendby": "c2",
                    },
                    {
                        "function": "delete",
                        "object": "node002",
                        "masteronly": True,
                        "sendfor": "controller",
                        "created": 5,
                    },
                    {"function": "update", "object": "x", "sendfor": "elsewhere"},
                ]
            )
        )
        self.assertEqual(count, 3)
        self.assertEqual(
            result_of(self.store.journal("controller")),
            [
                {
                    "function": "update",
                    "object": "node001",
                    "param": None,
                    "payload": "{}",
                    "masteronly": "0",
                    "misc": None,
                    "sendfor": "controller",
                    "sendby": "c2",
                    "created": "1700000000",
                },
                {
                    "function": "delete",
                    "object": "node002",
                    "param": None,
                    "payload": None,
                    "masteronly": "1",
                    "misc": None,
                    "sendfor": "controller",
                    "sendby": None,
                    "created": "5",
                },
            ],
        )

    def test_unknown_controller(self) -> None:
        """Listing the journal of a controller that does not exist is NotFound."""
        self.failureResultOf(self.store.journal("nobody"), NotFound)

    def test_bad_entries(self) -> None:
        """Malformed entries are refused, naming the entry and field; nothing is stored."""
        for entries, message in (
            ([], "journal: expected a non-empty list of entries"),
            ({"function": "x"}, "journal: expected a non-empty list of entries"),
            ([{"sendfor": "controller"}], "journal[0].function: required"),
            (
                [{"function": "f", "sendfor": "controller"}, {"function": "f"}],
                "journal[1].sendfor: required",
            ),
            (
                [{"function": "f", "sendfor": "controller", "colour": 1}],
                "journal[0].colour: unknown journal field",
            ),
            (
                [{"function": "f", "sendfor": "controller", "masteronly": "perhaps"}],
                "journal[0].masteronly: expected 0 or 1",
            ),
            (
                [{"function": "f", "sendfor": "controller", "created": "yesterday"}],
                "journal[0].created: expected a UNIX timestamp",
            ),
            (
                [{"function": "f", "sendfor": "controller", "payload": {"a": 1}}],
                "journal[0].payload: expected a string or null",
            ),
        ):
            failure = self.failureResultOf(self.store.add_journal(entries), Invalid)
            self.assertEqual(failure.value.message, message)
        self.assertEqual(result_of(self.store.journal("controller")), [])
