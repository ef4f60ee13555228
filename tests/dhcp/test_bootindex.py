"""The boot index built from a real store (SQLite file, sample cluster) and
kept in step with API writes: node entries with their inherited boot
settings and their network's options, network entries with DHCP settings
and the controller's address, and every kind of change (new MAC, new
address, netboot and bootmenu at node and group level, delete, network
changes) visible in the next ``current()``, rebuilt lazily."""

from __future__ import annotations

import ipaddress

from twisted.trial import unittest

from luna2d.store.bootindex import BootIndexer, build
from tests.support import API

MAC1 = "02:00:00:00:01:01"
MAC2 = "02:00:00:00:01:02"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


class IndexTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()
        self.store = self.api.store
        self.indexer = BootIndexer(self.store)

    def post(self, path: str, body: dict, expect: tuple[int, ...] = (201, 204)) -> None:
        code, answer = self.api.post(path, body)
        self.assertIn(code, expect, answer)

    def set_node(self, name: str, fields: dict) -> None:
        self.post(f"/config/node/{name}", {"config": {"node": {name: fields}}})

    def address_of(self, name: str, iface: str = "BOOTIF") -> str:
        code, body = self.api.get(f"/config/node/{name}")
        self.assertEqual(code, 200)
        return next(
            i for i in body["config"]["node"][name]["interfaces"] if i["interface"] == iface
        )["ipaddress"]

    def test_sample_networks(self) -> None:
        """The sample cluster network: CIDR, mask, gateway, name server, NTP
        from the cluster, dhcp on with its range, the controller's address
        and the reserved addresses; ipmi has dhcp off and no controller."""
        current = self.indexer.current()
        cluster = current.network_for("10.141.0.1")
        assert cluster is not None
        self.assertEqual(
            (cluster.name, cluster.cidr, cluster.netmask, cluster.prefixlen),
            ("cluster", "10.141.0.0/16", "255.255.0.0", 16),
        )
        self.assertEqual(cluster.broadcast, "10.141.255.255")
        self.assertEqual(cluster.gateway, "10.141.255.254")
        self.assertEqual(cluster.nameservers, ("10.141.255.254",))
        self.assertEqual(cluster.ntp_servers, ("10.141.255.254",))
        self.assertEqual(cluster.domain, "cluster")
        self.assertTrue(cluster.dhcp)
        self.assertEqual(
            (cluster.range_begin, cluster.range_end), (ip("10.141.0.200"), ip("10.141.0.253"))
        )
        self.assertEqual(cluster.controller, "10.141.255.254")
        self.assertEqual(
            cluster.reserved,
            frozenset({ip("10.141.0.0"), ip("10.141.255.255"), ip("10.141.255.254")}),
        )
        ipmi = current.network_for("10.148.3.4")
        assert ipmi is not None
        self.assertFalse(ipmi.dhcp)
        self.assertIsNone(ipmi.range_begin)
        self.assertIsNone(current.network_for("192.0.2.1"))
        self.assertIsNone(current.network_for("not an address"))

    def test_no_mac_no_entry(self) -> None:
        """Sample nodes have no MAC yet, so no entries; their addresses are taken."""
        current = self.indexer.current()
        self.assertEqual(current.nodes, {})
        self.assertTrue(current.taken(ip(self.address_of("node001"))))
        self.assertTrue(current.taken(ip("10.141.255.254")))  # the controller
        self.assertFalse(current.taken(ip("10.141.0.200")))

    def test_new_mac_entry(self) -> None:
        """Setting a MAC through the API adds an entry with the node's address,
        network, prefix, router, DNS, domain, hostname and boot flags."""
        self.set_node("node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]})
        entry = self.indexer.current().node(MAC1)
        assert entry is not None
        self.assertEqual((entry.name, entry.interface), ("node001", "BOOTIF"))
        self.assertEqual(entry.address, self.address_of("node001"))
        self.assertEqual((entry.network, entry.prefixlen), ("cluster", 16))
        self.assertEqual(entry.gateway, "10.141.255.254")
        self.assertEqual(entry.nameservers, ("10.141.255.254",))
        self.assertEqual(entry.domain, "cluster")
        self.assertEqual((entry.netboot, entry.bootmenu, entry.known), (True, False, True))

    def test_changes_show_in_next_answer(self) -> None:
        """MAC moved, address changed, node flags, group flags, group domain,
        delete: each shows in the very next current()."""
        self.set_node("node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]})
        self.assertIsNotNone(self.indexer.current().node(MAC1))
        self.set_node("node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC2}]})
        self.assertIsNone(self.indexer.current().node(MAC1))
        self.assertEqual(self.indexer.current().node(MAC2).name, "node001")  # type: ignore[union-attr]
        self.set_node(
            "node001", {"interfaces": [{"interface": "BOOTIF", "ipaddress": "10.141.7.7"}]}
        )
        self.assertEqual(self.indexer.current().node(MAC2).address, "10.141.7.7")  # type: ignore[union-attr]
        self.assertTrue(self.indexer.current().taken(ip("10.141.7.7")))
        self.set_node("node001", {"netboot": False})
        self.assertFalse(self.indexer.current().node(MAC2).netboot)  # type: ignore[union-attr]
        self.post(
            "/config/group/compute",
            {"config": {"group": {"compute": {"bootmenu": True, "domain": "hpc.example"}}}},
        )
        entry = self.indexer.current().node(MAC2)
        assert entry is not None
        self.assertTrue(entry.bootmenu)
        self.assertEqual(entry.domain, "hpc.example")
        code, _ = self.api.get("/config/node/node001/_delete")
        self.assertEqual(code, 204)
        self.assertIsNone(self.indexer.current().node(MAC2))
        self.assertFalse(self.indexer.current().taken(ip("10.141.7.7")))

    def test_mac_swap_between_nodes(self) -> None:
        """A MAC moved from one node to another in two writes follows."""
        self.set_node("node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]})
        self.set_node("node002", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC2}]})
        self.indexer.current()
        self.set_node(
            "node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": "02:00:00:00:01:03"}]}
        )
        self.set_node("node002", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]})
        current = self.indexer.current()
        self.assertEqual(current.node(MAC1).name, "node002")  # type: ignore[union-attr]
        self.assertIsNone(current.node(MAC2))
        self.assertEqual(current.node("02:00:00:00:01:03").name, "node001")  # type: ignore[union-attr]

    def test_network_changes(self) -> None:
        """A network's gateway, dhcp range and name follow, in the network
        entry and in its nodes' entries."""
        self.set_node("node001", {"interfaces": [{"interface": "BOOTIF", "macaddress": MAC1}]})
        self.post(
            "/config/network/cluster",
            {
                "config": {
                    "network": {
                        "cluster": {
                            "gateway": "10.141.255.1",
                            "dhcp_range_begin": "10.141.1.0",
                            "dhcp_range_end": "10.141.1.9",
                            "newnetname": "prov",
                        }
                    }
                }
            },
        )
        current = self.indexer.current()
        network = current.network_for("10.141.1.1")
        assert network is not None
        self.assertEqual((network.name, network.gateway), ("prov", "10.141.255.1"))
        self.assertEqual(
            (network.range_begin, network.range_end), (ip("10.141.1.0"), ip("10.141.1.9"))
        )
        entry = current.node(MAC1)
        assert entry is not None
        self.assertEqual((entry.network, entry.gateway), ("prov", "10.141.255.1"))

    def test_lazy_rebuild(self) -> None:
        """Writes cost no rebuild until someone asks; node-only writes update
        in place and a group write rebuilds once."""
        self.indexer.current()
        self.assertEqual(self.indexer.rebuilds, 1)
        for number in range(5):
            self.set_node(
                "node001",
                {
                    "interfaces": [
                        {"interface": "BOOTIF", "macaddress": f"02:00:00:00:02:{number:02x}"}
                    ]
                },
            )
        self.assertEqual(self.indexer.rebuilds, 1)
        self.assertEqual(self.indexer.current().node("02:00:00:00:02:04").name, "node001")  # type: ignore[union-attr]
        self.assertEqual(self.indexer.rebuilds, 1)
        self.post("/config/group/compute", {"config": {"group": {"compute": {"netboot": False}}}})
        self.post("/config/group/compute", {"config": {"group": {"compute": {"netboot": True}}}})
        self.assertEqual(self.indexer.rebuilds, 1)
        self.indexer.current()
        self.assertEqual(self.indexer.rebuilds, 2)
        unchanged = self.indexer.current()
        self.assertIs(self.indexer.current(), unchanged)

    def test_same_as_full_build(self) -> None:
        """After a series of node writes the incrementally kept index equals
        one built from scratch."""
        self.indexer.current()
        for number in range(1, 5):
            self.set_node(
                f"node{number:03d}",
                {
                    "interfaces": [
                        {"interface": "BOOTIF", "macaddress": f"02:00:00:00:03:{number:02x}"}
                    ]
                },
            )
        self.set_node("node002", {"bootmenu": True})
        self.post(
            "/config/node/node005",
            {
                "config": {
                    "node": {
                        "node005": {
                            "group": "compute",
                            "interfaces": [
                                {"interface": "BOOTIF", "macaddress": "02:00:00:00:03:05"}
                            ],
                        }
                    }
                }
            },
        )
        self.api.get("/config/node/node003/_delete")
        incremental = self.indexer.current()
        fresh, _, _ = build(self.store.state)
        self.assertEqual(incremental.nodes, fresh.nodes)
        self.assertEqual(incremental.addresses, fresh.addresses)
        self.assertEqual(len(incremental.nodes), 4)
