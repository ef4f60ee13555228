"""Interfaces and addresses through the whole HTTP stack (StubTreq): the node
and group interfaces endpoints, _nextfreeip, address lookups and the list of
taken addresses of a network, renumbering on a CIDR change, and the cluster
endpoint."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from tests.support import API, env


def iface(
    name: str,
    network: str | None,
    ip: str | None,
    mac: str | None = None,
    options: str | None = None,
) -> dict:
    return {
        "interface": name,
        "network": network,
        "ipaddress": ip,
        "macaddress": mac,
        "options": options,
    }


SEEDED_NODE001 = [
    iface("BOOTIF", "cluster", "10.141.0.1"),
    iface("BMC", "ipmi", "10.148.0.1"),
    iface("ib0", "ib", "10.149.0.1"),
]
SEEDED_GROUP = [
    {"interface": "BOOTIF", "network": "cluster", "options": None},
    {"interface": "BMC", "network": "ipmi", "options": None},
    {"interface": "ib0", "network": "ib", "options": None},
]


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def ifaces(self, kind: str, name: str) -> list[dict]:
        """What GET .../interfaces of a node or group answers (which must be 200)."""
        code, body = self.api.get(f"/config/{kind}/{name}/interfaces")
        self.assertEqual(code, 200, body)
        return body["config"][kind][name]["interfaces"]

    def node_ifaces(self, node: str) -> list[dict]:
        return self.ifaces("node", node)

    def post_node_ifaces(self, node: str, entries: list) -> tuple[int, Any]:
        return self.api.post(
            f"/config/node/{node}/interfaces", env("node", node, {"interfaces": entries})
        )


class NodeInterfaceTests(Base):
    def test_list(self) -> None:
        """GET .../interfaces answers every interface of the node in the
        full envelope."""
        code, body = self.api.get("/config/node/node001/interfaces")
        self.assertEqual(
            (code, body), (200, env("node", "node001", {"interfaces": SEEDED_NODE001}))
        )

    def test_show_one(self) -> None:
        """GET .../interfaces/<if> answers that one interface."""
        code, body = self.api.get("/config/node/node001/interfaces/BMC")
        self.assertEqual(
            (code, body),
            (200, env("node", "node001", {"interfaces": [iface("BMC", "ipmi", "10.148.0.1")]})),
        )

    def test_unknown(self) -> None:
        """Unknown interfaces and unknown nodes answer 404 JSON."""
        self.assertEqual(
            self.api.get("/config/node/node001/interfaces/eth9"),
            (404, {"message": "node 'node001' has no interface 'eth9'"}),
        )
        self.assertEqual(
            self.api.get("/config/node/ghost/interfaces"),
            (404, {"message": "node 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/node/ghost/interfaces/BOOTIF"),
            (404, {"message": "node 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.post_node_ifaces("ghost", [{"interface": "eth1", "network": "ib"}]),
            (404, {"message": "node 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/node/ghost/interfaces/BOOTIF/_delete"),
            (404, {"message": "node 'ghost' does not exist"}),
        )

    def test_add_gets_next_free_address(self) -> None:
        """A new interface with a network only gets the next free address:
        204 (the luna CLI's form, also for a new one), other interfaces untouched."""
        code, body = self.post_node_ifaces("node001", [{"interface": "eth1", "network": "ib"}])
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.node_ifaces("node001"), SEEDED_NODE001 + [iface("eth1", "ib", "10.149.0.5")]
        )

    def test_update_answers_204(self) -> None:
        """Changing an existing interface answers 204 with no body."""
        code, body = self.post_node_ifaces(
            "node001",
            [
                {
                    "interface": "BOOTIF",
                    "ipaddress": "10.141.1.1",
                    "macaddress": "AA:BB:CC:00:00:01",
                    "options": "mtu 9000",
                }
            ],
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.node_ifaces("node001")[0],
            iface("BOOTIF", "cluster", "10.141.1.1", "aa:bb:cc:00:00:01", "mtu 9000"),
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(node["macaddr"], "aa:bb:cc:00:00:01")

    def test_address_finds_network(self) -> None:
        """An interface given only an address lands on the network holding it."""
        code, _ = self.post_node_ifaces(
            "node001", [{"interface": "eth2", "ipaddress": "10.141.7.7"}]
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/node/node001/interfaces/eth2")[1],
            env("node", "node001", {"interfaces": [iface("eth2", "cluster", "10.141.7.7")]}),
        )

    def test_address_checks(self) -> None:
        """Addresses outside the network, taken, in the DHCP range or the
        gateway answer 400 naming the field; nothing changes."""
        cases = [
            (
                "10.9.0.1",
                "interfaces[0].ipaddress: 10.9.0.1 is not inside network cluster (10.141.0.0/16)",
            ),
            (
                "10.141.0.2",
                (
                    "interfaces[0].ipaddress: 10.141.0.2 is already taken by node node002 "
                    "(interface BOOTIF)"
                ),
            ),
            (
                "10.141.0.210",
                "interfaces[0].ipaddress: 10.141.0.210 lies in the DHCP range of network cluster",
            ),
            (
                "10.141.255.254",
                "interfaces[0].ipaddress: 10.141.255.254 is the gateway of network cluster",
            ),
            (
                "10.141.255.255",
                (
                    "interfaces[0].ipaddress: 10.141.255.255 is the network or broadcast "
                    "address of cluster"
                ),
            ),
            ("banana", "interfaces[0].ipaddress: 'banana' is not an IP address"),
        ]
        for ip, text in cases:
            code, body = self.post_node_ifaces(
                "node001", [{"interface": "eth3", "network": "cluster", "ipaddress": ip}]
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.node_ifaces("node001"), SEEDED_NODE001)

    def test_force_allows_dhcp_range(self) -> None:
        """force: true allows an address inside the DHCP range."""
        code, _ = self.post_node_ifaces(
            "node001", [{"interface": "BOOTIF", "ipaddress": "10.141.0.210", "force": True}]
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.node_ifaces("node001")[0]["ipaddress"], "10.141.0.210")

    def test_bad_entries(self) -> None:
        """Malformed interface lists answer 400 naming the problem."""
        cases = [
            ({"interfaces": []}, "interfaces: expected a non-empty list of interface objects"),
            ({}, "the body: missing 'interfaces'"),
            (
                {"interfaces": [{"interface": "eth3", "bogus": 1}]},
                "interfaces[0].bogus: unknown interface field",
            ),
            ({"interfaces": ["eth3"]}, "interfaces[0]: expected an interface object"),
            (
                {"interfaces": [{"network": "ib"}]},
                "interfaces[0].interface: None is not a valid interface name",
            ),
            (
                {"interfaces": [{"interface": "eth3", "network": "nowhere"}]},
                "interfaces[0].network: network 'nowhere' does not exist",
            ),
            (
                {"interfaces": [{"interface": "BOOTIF", "macaddress": "zz"}]},
                "interfaces[0].macaddress: 'zz' is not a MAC address",
            ),
        ]
        for fields, text in cases:
            code, body = self.api.post(
                "/config/node/node001/interfaces", env("node", "node001", fields)
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.node_ifaces("node001"), SEEDED_NODE001)

    def test_body_names_another_node(self) -> None:
        """The interfaces body must name the node of the path."""
        code, body = self.api.post(
            "/config/node/node001/interfaces",
            env("node", "node002", {"interfaces": [{"interface": "eth1", "network": "ib"}]}),
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {"message": "config.node: the path names 'node001' but the body holds 'node002'"},
            ),
        )

    def test_delete(self) -> None:
        """GET .../interfaces/<if>/_delete answers 204, frees the address and
        a second delete answers 404."""
        self.assertEqual(self.api.get("/config/node/node001/interfaces/ib0/_delete"), (204, None))
        self.assertEqual(self.node_ifaces("node001"), SEEDED_NODE001[:2])
        self.assertEqual(
            self.api.get("/config/network/ib/10.149.0.1")[1],
            {"config": {"network": {"10.149.0.1": {"status": "free"}}}},
        )
        self.assertEqual(
            self.api.get("/config/node/node001/interfaces/ib0/_delete"),
            (404, {"message": "node 'node001' has no interface 'ib0'"}),
        )

    def test_post_delete_not_supported(self) -> None:
        """POST on an interface's _delete is no endpoint: 404 or 405 JSON."""
        code, body = self.api.post("/config/node/node001/interfaces/ib0/_delete", {})
        self.assertIn(code, (404, 405))
        self.assertIsInstance(body["message"], str)
        self.assertEqual(self.node_ifaces("node001"), SEEDED_NODE001)

    def test_interfaces_in_node_body(self) -> None:
        """Interfaces may also be updated in bulk through POST /config/node/<n>."""
        code, _ = self.api.post(
            "/config/node/node001",
            env(
                "node", "node001", {"interfaces": [{"interface": "BMC", "ipaddress": "10.148.9.9"}]}
            ),
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.node_ifaces("node001")[1], iface("BMC", "ipmi", "10.148.9.9"))

    def test_no_interfaces_endpoint_for_other_kinds(self) -> None:
        """Kinds without named interfaces answer 404 JSON."""
        self.assertEqual(
            self.api.get("/config/osimage/compute/interfaces"),
            (404, {"message": "osimage objects have no interfaces endpoint"}),
        )
        code, body = self.api.post(
            "/config/bmcsetup/compute/interfaces",
            env("bmcsetup", "compute", {"interfaces": [{"interface": "x"}]}),
        )
        self.assertEqual(
            (code, body), (404, {"message": "bmcsetup objects have no interfaces endpoint"})
        )


class GroupInterfaceTests(Base):
    def group_ifaces(self) -> list[dict]:
        return self.ifaces("group", "compute")

    def test_list_and_show(self) -> None:
        """GET .../interfaces and .../interfaces/<if> answer networks only."""
        self.assertEqual(
            self.api.get("/config/group/compute/interfaces"),
            (200, env("group", "compute", {"interfaces": SEEDED_GROUP})),
        )
        self.assertEqual(
            self.api.get("/config/group/compute/interfaces/ib0"),
            (200, env("group", "compute", {"interfaces": [SEEDED_GROUP[2]]})),
        )

    def test_unknown(self) -> None:
        """Unknown group interfaces and groups answer 404 JSON."""
        self.assertEqual(
            self.api.get("/config/group/compute/interfaces/xx"),
            (404, {"message": "group 'compute' has no interface 'xx'"}),
        )
        self.assertEqual(
            self.api.get("/config/group/ghost/interfaces"),
            (404, {"message": "group 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/group/compute/interfaces/xx/_delete"),
            (404, {"message": "group 'compute' has no interface 'xx'"}),
        )
        code, body = self.api.post(
            "/config/group/ghost/interfaces",
            env("group", "ghost", {"interfaces": [{"interface": "eth1", "network": "ib"}]}),
        )
        self.assertEqual((code, body), (404, {"message": "group 'ghost' does not exist"}))

    def test_add_reaches_members(self) -> None:
        """A new group interface answers 204 and is added to every member
        with a free address."""
        code, body = self.api.post(
            "/config/group/compute/interfaces",
            env("group", "compute", {"interfaces": [{"interface": "eth5", "network": "ib"}]}),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.group_ifaces()[-1], {"interface": "eth5", "network": "ib", "options": None}
        )
        for number, host in ((1, 5), (2, 6), (3, 7), (4, 8)):
            self.assertEqual(
                self.api.get(f"/config/node/node00{number}/interfaces/eth5")[1]["config"]["node"][
                    f"node00{number}"
                ]["interfaces"],
                [iface("eth5", "ib", f"10.149.0.{host}")],
            )

    def test_move_reaches_members(self) -> None:
        """Moving a group interface to another network answers 204 and moves
        the members' interfaces with fresh addresses there."""
        code, _ = self.api.post(
            "/config/network/data", env("network", "data", {"network": "10.160.0.0/16"})
        )
        self.assertEqual(code, 201)
        code, body = self.api.post(
            "/config/group/compute/interfaces",
            env("group", "compute", {"interfaces": [{"interface": "ib0", "network": "data"}]}),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.node_ifaces("node002")[2], iface("ib0", "data", "10.160.0.2"))
        self.assertEqual(
            self.api.get("/config/network/ib/_list")[1], env("network", "ib", {"taken": []})
        )

    def test_group_entries_carry_no_address(self) -> None:
        """A group interface with an address, or new without a network,
        answers 400."""
        code, body = self.api.post(
            "/config/group/compute/interfaces",
            env(
                "group",
                "compute",
                {"interfaces": [{"interface": "eth6", "network": "ib", "ipaddress": "10.149.9.9"}]},
            ),
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {"message": "interfaces[0]: group interfaces carry a network only, not addresses"},
            ),
        )
        code, body = self.api.post(
            "/config/group/compute/interfaces",
            env("group", "compute", {"interfaces": [{"interface": "eth6"}]}),
        )
        self.assertEqual(
            (code, body),
            (400, {"message": "interfaces[0].network: required for the new interface eth6"}),
        )
        self.assertEqual(self.group_ifaces(), SEEDED_GROUP)

    def test_delete_reaches_members(self) -> None:
        """Deleting a group interface answers 204 and deletes it from members."""
        self.assertEqual(self.api.get("/config/group/compute/interfaces/ib0/_delete"), (204, None))
        self.assertEqual(self.group_ifaces(), SEEDED_GROUP[:2])
        self.assertEqual(
            self.node_ifaces("node004"),
            [iface("BOOTIF", "cluster", "10.141.0.4"), iface("BMC", "ipmi", "10.148.0.4")],
        )
        self.assertEqual(
            self.api.get("/config/network/ib/_member"),
            (200, env("network", "ib", {"members": [], "taken": []})),
        )


class RegroupTests(Base):
    def test_same_interfaces_keep_addresses(self) -> None:
        """Moving a node to a group with the same interfaces and networks
        keeps every address."""
        self.api.post(
            "/config/group/compute/_clone", env("group", "compute", {"newgroupname": "gpu"})
        )
        code, _ = self.api.post("/config/node/node002", env("node", "node002", {"group": "gpu"}))
        self.assertEqual(code, 204)
        self.assertEqual(
            self.node_ifaces("node002"),
            [
                iface("BOOTIF", "cluster", "10.141.0.2"),
                iface("BMC", "ipmi", "10.148.0.2"),
                iface("ib0", "ib", "10.149.0.2"),
            ],
        )
        self.assertEqual(
            self.api.get("/config/group/gpu/_list"),
            (200, env("group", "gpu", {"members": ["node002"]})),
        )

    def test_other_network_renumbers(self) -> None:
        """Moving a node to a group whose interface is on another network
        gives that interface a free address there; the others stay."""
        self.api.post("/config/network/data", env("network", "data", {"network": "10.160.0.0/16"}))
        self.api.post(
            "/config/group/gpu",
            env(
                "group",
                "gpu",
                {
                    "interfaces": [
                        {"interface": "BOOTIF", "network": "cluster"},
                        {"interface": "ib0", "network": "data"},
                    ]
                },
            ),
        )
        code, _ = self.api.post("/config/node/node002", env("node", "node002", {"group": "gpu"}))
        self.assertEqual(code, 204)
        ifaces = {
            i["interface"]: (i["network"], i["ipaddress"]) for i in self.node_ifaces("node002")
        }
        self.assertEqual(ifaces["BOOTIF"], ("cluster", "10.141.0.2"))
        self.assertEqual(ifaces["ib0"], ("data", "10.160.0.1"))


class AddressTests(Base):
    def test_nextfreeip(self) -> None:
        """_nextfreeip answers the lowest free host address; no reservation."""
        expected = (200, env("network", "cluster", {"nextip": "10.141.0.5"}))
        self.assertEqual(self.api.get("/config/network/cluster/_nextfreeip"), expected)
        self.assertEqual(self.api.get("/config/network/cluster/_nextfreeip"), expected)

    def test_nextfreeip_skips_taken_and_reserved(self) -> None:
        """_nextfreeip skips taken addresses, the gateway, the nameserver and
        the DHCP range."""
        self.api.post(
            "/config/network/small",
            env(
                "network",
                "small",
                {
                    "network": "10.170.0.0/29",
                    "gateway": "10.170.0.1",
                    "nameserver_ip": "10.170.0.2",
                    "dhcp": True,
                    "dhcp_range_begin": "10.170.0.3",
                    "dhcp_range_end": "10.170.0.4",
                },
            ),
        )
        self.assertEqual(
            self.api.get("/config/network/small/_nextfreeip")[1],
            env("network", "small", {"nextip": "10.170.0.5"}),
        )
        self.api.post("/config/otherdev/pdu", env("otherdev", "pdu", {"network": "small"}))
        self.assertEqual(
            self.api.get("/config/otherdev/pdu")[1]["config"]["otherdev"]["pdu"]["ipaddress"],
            "10.170.0.5",
        )
        self.assertEqual(
            self.api.get("/config/network/small/_nextfreeip")[1],
            env("network", "small", {"nextip": "10.170.0.6"}),
        )
        self.api.post("/config/otherdev/ups", env("otherdev", "ups", {"network": "small"}))
        code, body = self.api.get("/config/network/small/_nextfreeip")
        self.assertEqual(
            (code, body), (404, {"message": "network 'small' has no free address left"})
        )

    def test_nextfreeip_after_delete(self) -> None:
        """A deleted node's address is the next free one again."""
        self.api.get("/config/node/node002/_delete")
        self.assertEqual(
            self.api.get("/config/network/cluster/_nextfreeip")[1],
            env("network", "cluster", {"nextip": "10.141.0.2"}),
        )

    def test_unknown_network(self) -> None:
        """Every address endpoint of an unknown network answers 404."""
        for path in (
            "/config/network/ghost/_nextfreeip",
            "/config/network/ghost/_list",
            "/config/network/ghost/10.141.0.1",
            "/config/network/ghost/_member",
        ):
            self.assertEqual(
                self.api.get(path), (404, {"message": "network 'ghost' does not exist"}), path
            )

    def test_network_interfaces_not_found(self) -> None:
        """Networks have no interfaces endpoint: 404 like every other kind
        without one, not 400 from the address lookup the path resembles."""
        self.assertEqual(
            self.api.get("/config/network/cluster/interfaces"),
            (404, {"message": "network objects have no interfaces endpoint"}),
        )
        self.assertEqual(self.api.get("/config/switch/switch01/interfaces")[0], 404)

    def test_ip_taken(self) -> None:
        """A held address answers taken with its device."""
        self.assertEqual(
            self.api.get("/config/network/cluster/10.141.0.3"),
            (
                200,
                {"config": {"network": {"10.141.0.3": {"status": "taken", "device": "node003"}}}},
            ),
        )
        self.assertEqual(
            self.api.get("/config/network/cluster/10.141.255.254"),
            (
                200,
                {
                    "config": {
                        "network": {"10.141.255.254": {"status": "taken", "device": "controller"}}
                    }
                },
            ),
        )

    def test_ip_free(self) -> None:
        """An unheld host address answers free."""
        self.assertEqual(
            self.api.get("/config/network/cluster/10.141.0.9"),
            (200, {"config": {"network": {"10.141.0.9": {"status": "free"}}}}),
        )

    def test_ip_reserved(self) -> None:
        """The gateway of another network and the network and broadcast
        addresses are never free."""
        self.assertEqual(
            self.api.get("/config/network/ipmi/10.148.255.254")[1],
            {"config": {"network": {"10.148.255.254": {"status": "taken", "device": "gateway"}}}},
        )
        self.assertEqual(
            self.api.get("/config/network/ipmi/10.148.0.0")[1],
            {"config": {"network": {"10.148.0.0": {"status": "taken", "device": "network"}}}},
        )
        self.assertEqual(
            self.api.get("/config/network/ipmi/10.148.255.255")[1],
            {"config": {"network": {"10.148.255.255": {"status": "taken", "device": "broadcast"}}}},
        )

    def test_ip_outside(self) -> None:
        """An address outside the network answers 404; a non-address 400."""
        self.assertEqual(
            self.api.get("/config/network/cluster/10.142.0.1"),
            (404, {"message": "10.142.0.1 is not inside network cluster (10.141.0.0/16)"}),
        )
        self.assertEqual(
            self.api.get("/config/network/cluster/nonsense"),
            (400, {"message": "'nonsense' is not an IP address"}),
        )

    def test_taken_list(self) -> None:
        """_list answers every taken address of the network with its device,
        nodes, switches, other devices and the controller alike."""
        self.api.post(
            "/config/switch/sw01",
            env("switch", "sw01", {"network": "cluster", "ipaddress": "10.141.253.1"}),
        )
        self.api.post(
            "/config/otherdev/pdu01", env("otherdev", "pdu01", {"ipaddress": "10.141.250.1"})
        )
        code, body = self.api.get("/config/network/cluster/_list")
        self.assertEqual(
            (code, body),
            (
                200,
                env(
                    "network",
                    "cluster",
                    {
                        "taken": [
                            {"ipaddress": "10.141.0.1", "device": "node001"},
                            {"ipaddress": "10.141.0.2", "device": "node002"},
                            {"ipaddress": "10.141.0.3", "device": "node003"},
                            {"ipaddress": "10.141.0.4", "device": "node004"},
                            {"ipaddress": "10.141.250.1", "device": "pdu01"},
                            {"ipaddress": "10.141.253.1", "device": "sw01"},
                            {"ipaddress": "10.141.255.254", "device": "controller"},
                        ]
                    },
                ),
            ),
        )

    def test_taken_list_empty(self) -> None:
        """A network nobody uses answers an empty taken list."""
        self.api.post("/config/network/data", env("network", "data", {"network": "10.160.0.0/16"}))
        self.assertEqual(
            self.api.get("/config/network/data/_list"), (200, env("network", "data", {"taken": []}))
        )

    def test_address_unique_across_kinds(self) -> None:
        """A switch may not take a node's address, nor a node a switch's."""
        self.api.post("/config/switch/sw01", env("switch", "sw01", {"ipaddress": "10.141.253.1"}))
        code, body = self.post_node_ifaces(
            "node001", [{"interface": "BOOTIF", "ipaddress": "10.141.253.1"}]
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "interfaces[0].ipaddress: 10.141.253.1 is already taken "
                    "by switch sw01"
                },
            ),
        )


class RenumberTests(Base):
    def test_cidr_change_renumbers(self) -> None:
        """Changing a network's CIDR keeps every host offset: nodes, other
        devices, the controller, gateway, nameserver and DHCP range move."""
        self.api.post(
            "/config/otherdev/pdu01", env("otherdev", "pdu01", {"ipaddress": "10.141.250.1"})
        )
        code, body = self.api.post(
            "/config/network/cluster", env("network", "cluster", {"network": "10.142.0.0/16"})
        )
        self.assertEqual((code, body), (204, None))
        net = self.api.get("/config/network/cluster")[1]["config"]["network"]["cluster"]
        self.assertEqual(
            (
                net["network"],
                net["gateway"],
                net["nameserver_ip"],
                net["dhcp_range_begin"],
                net["dhcp_range_end"],
            ),
            ("10.142.0.0/16", "10.142.255.254", "10.142.255.254", "10.142.0.200", "10.142.0.253"),
        )
        self.assertEqual(self.node_ifaces("node003")[0], iface("BOOTIF", "cluster", "10.142.0.3"))
        self.assertEqual(
            self.api.get("/config/otherdev/pdu01")[1]["config"]["otherdev"]["pdu01"]["ipaddress"],
            "10.142.250.1",
        )
        self.assertEqual(
            self.api.get("/config/cluster")[1]["config"]["cluster"]["controller"]["ipaddr"],
            "10.142.255.254",
        )
        self.assertEqual(
            self.api.get("/config/network/cluster/_list")[1]["config"]["network"]["cluster"][
                "taken"
            ][0],
            {"ipaddress": "10.142.0.1", "device": "node001"},
        )
        self.assertEqual(self.api.get("/config/network/cluster/10.141.0.1")[0], 404)

    def test_cidr_change_with_new_gateway(self) -> None:
        """Shrinking a network works when the body gives a gateway and
        nameserver that fit and every address fits."""
        code, body = self.api.post(
            "/config/network/ib",
            env(
                "network",
                "ib",
                {
                    "network": "10.149.0.0/24",
                    "gateway": "10.149.0.254",
                    "nameserver_ip": "10.149.0.253",
                },
            ),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.node_ifaces("node001")[2], iface("ib0", "ib", "10.149.0.1"))
        self.assertEqual(
            self.api.get("/config/network/ib/_nextfreeip")[1],
            env("network", "ib", {"nextip": "10.149.0.5"}),
        )

    def test_cidr_change_refused_when_gateway_misfits(self) -> None:
        """A gateway that does not fit the new CIDR is refused naming it."""
        code, body = self.api.post(
            "/config/network/ib", env("network", "ib", {"network": "10.149.0.0/24"})
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "gateway: 10.149.255.254 does not fit in 10.149.0.0/24; "
                    "give a new value"
                },
            ),
        )
        self.assertEqual(
            self.api.get("/config/network/ib")[1]["config"]["network"]["ib"]["network"],
            "10.149.0.0/16",
        )

    def test_cidr_change_refused_when_addresses_misfit(self) -> None:
        """Addresses that would not fit the new CIDR refuse the change with
        400 naming them; nothing moves."""
        self.post_node_ifaces("node001", [{"interface": "ib0", "ipaddress": "10.149.3.9"}])
        code, body = self.api.post(
            "/config/network/ib",
            env(
                "network",
                "ib",
                {"network": "10.149.0.0/24", "gateway": None, "nameserver_ip": None},
            ),
        )
        self.assertEqual(
            (code, body),
            (400, {"message": "network: 10.149.0.0/24 cannot hold 10.149.3.9 of node001"}),
        )
        self.assertEqual(self.node_ifaces("node001")[2], iface("ib0", "ib", "10.149.3.9"))
        net = self.api.get("/config/network/ib")[1]["config"]["network"]["ib"]
        self.assertEqual((net["network"], net["gateway"]), ("10.149.0.0/16", "10.149.255.254"))


class ClusterTests(Base):
    def cluster(self) -> dict:
        code, body = self.api.get("/config/cluster")
        self.assertEqual(code, 200)
        return body["config"]["cluster"]

    def test_show(self) -> None:
        """GET /config/cluster answers the controllers and the settings."""
        view = self.cluster()
        controller = view.pop("controller")
        self.assertEqual(
            (controller["status"], controller["ipaddr"], controller["serverport"]),
            ("primary", "10.141.255.254", 7050),
        )
        self.assertEqual(controller["luna_config"], str(self.api.cfg.path))
        self.assertEqual(
            view,
            {
                "name": "cluster",
                "ntp_server": "10.141.255.254",
                "technical_contacts": "root@localhost",
                "provision_method": "torrent",
                "provision_fallback": "http",
                "debug": False,
                "domain": "cluster",
                "comment": None,
                "discovery_names": False,
                "user": None,
                "nameserver_ip": None,
                "forwardserver_ip": None,
                "domain_search": None,
                "security": None,
                "packing_bootpause": None,
                "createnode_ondemand": None,
                "createnode_macashost": None,
                "nextnode_discover": None,
                "bind_legacy": None,
                "dnssec_enable": None,
                "dnssec_validation": None,
            },
        )

    def test_update(self) -> None:
        """POST /config/cluster changes the settings: 204 with no body."""
        code, body = self.api.post(
            "/config/cluster",
            {
                "config": {
                    "cluster": {
                        "ntp_server": "10.141.255.252",
                        "technical_contacts": "ops@example.com",
                        "provision_method": "http",
                        "provision_fallback": "torrent",
                        "debug": True,
                        "domain": "hpc",
                    }
                }
            },
        )
        self.assertEqual((code, body), (204, None))
        view = self.cluster()
        self.assertEqual(
            (
                view["ntp_server"],
                view["technical_contacts"],
                view["provision_method"],
                view["provision_fallback"],
                view["debug"],
                view["domain"],
            ),
            ("10.141.255.252", "ops@example.com", "http", "torrent", True, "hpc"),
        )

    def test_inheritance(self) -> None:
        """Networks inherit ntp_server and groups provision_method from the
        cluster when they leave them unset."""
        self.api.post("/config/group/compute", env("group", "compute", {"provision_method": None}))
        self.api.post(
            "/config/cluster",
            {"config": {"cluster": {"ntp_server": "10.141.255.252", "provision_method": "http"}}},
        )
        net = self.api.get("/config/network/ipmi")[1]["config"]["network"]["ipmi"]
        self.assertEqual(
            (net["ntp_server"], net["_ntp_server_source"]), ("10.141.255.252", "cluster")
        )
        group = self.api.get("/config/group/compute")[1]["config"]["group"]["compute"]
        self.assertEqual(
            (group["provision_method"], group["_provision_method_source"]), ("http", "cluster")
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(
            (node["provision_method"], node["_provision_method_source"]), ("http", "cluster")
        )

    def test_alias(self) -> None:
        """provisioning_method (the spec's list spelling) is accepted."""
        code, _ = self.api.post(
            "/config/cluster", {"config": {"cluster": {"provisioning_method": "http"}}}
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.cluster()["provision_method"], "http")

    def test_controller_refused(self) -> None:
        """A body naming a controller answers 400; nothing changes."""
        before = self.cluster()
        for name in ("controller", "controller2"):
            code, body = self.api.post(
                "/config/cluster",
                {
                    "config": {
                        "cluster": {
                            "debug": True,
                            name: {"status": "standby", "ipaddr": "10.141.255.253"},
                        }
                    }
                },
            )
            self.assertEqual(
                (code, body),
                (
                    400,
                    {
                        "message": f"{name}: controllers are configured in the ini file, "
                        "not through the API"
                    },
                ),
            )
        self.assertEqual(self.cluster(), before)

    def test_bad_bodies(self) -> None:
        """Unknown fields, wrong types and wrong envelopes answer 400."""
        for payload, text in (
            ({"config": {"cluster": {"bogus": 1}}}, "bogus: unknown field for cluster"),
            (
                {"config": {"cluster": {"debug": "maybe"}}},
                "debug: expected true or false, got 'maybe'",
            ),
            ({"cluster": {"debug": True}}, "the body: missing 'config'"),
            ({"config": {"cluster": []}}, "the cluster must be a JSON object of fields"),
            (
                {"config": {"cluster": {"name": "other"}}},
                "name: the cluster name cannot be changed",
            ),
        ):
            code, body = self.api.post("/config/cluster", payload)
            self.assertEqual((code, body), (400, {"message": text}))

    def test_other_methods(self) -> None:
        """PUT and DELETE on the cluster answer 405 JSON."""
        for method in ("PUT", "DELETE"):
            code, body, _ = self.api.request(method, "/config/cluster", {"config": {"cluster": {}}})
            self.assertEqual(
                (code, body),
                (405, {"message": f"method {method} is not supported on /config/cluster"}),
            )
