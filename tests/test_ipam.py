"""Address management for IPv6 and absurd networks (issue 8, low): a
``::/0`` network gave a new interface the IPv4 address ``0.0.0.1``, after
which ``GET /config/network/<net>/_list`` answered 500. Networks shorter
than /8 are refused; allocation on an IPv6 network gives IPv6 addresses,
also near ``::``; the taken list sorts either family."""

from __future__ import annotations

import ipaddress

from twisted.trial import unittest

from luna2d.store import ipam
from luna2d.store.state import Iface, Obj, State
from tests.support import API, env


class AbsurdNetworkTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def eth6_address(self) -> str:
        """node001's address on eth6 as the API shows it."""
        return next(
            i["ipaddress"]
            for i in self.api.show("node", "node001")["interfaces"]
            if i["interface"] == "eth6"
        )

    def test_whole_address_space_refused(self) -> None:
        """::/0, 0.0.0.0/0 and a /7 answer 400; a /8 is accepted."""
        for cidr in ("::/0", "0.0.0.0/0", "::/7", "10.0.0.0/7"):
            code, answer = self.api.post(
                "/config/network/wide", env("network", "wide", {"network": cidr})
            )
            net = ipaddress.ip_network(cidr, strict=False)
            self.assertEqual(
                (code, answer),
                (
                    400,
                    {"message": f"network: {net} is too large for a cluster network (at least /8)"},
                ),
                cidr,
            )
        self.assertEqual(
            self.api.post(
                "/config/network/wide", env("network", "wide", {"network": "2001:db8::/8"})
            )[0],
            201,
        )

    def test_ipv6_near_zero(self) -> None:
        """Allocation on a network whose addresses are small integers still
        gives IPv6 addresses, and the network's views answer 200."""
        self.assertEqual(
            self.api.post("/config/network/v6", env("network", "v6", {"network": "::1:0/112"}))[0],
            201,
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001",
                env("node", "node001", {"interfaces": [{"interface": "eth6", "network": "v6"}]}),
            )[0],
            204,
        )
        ip = self.eth6_address()
        self.assertEqual(ip, "::1:1")
        self.assertEqual(
            self.api.get("/config/network/v6/_list"),
            (200, env("network", "v6", {"taken": [{"ipaddress": "::1:1", "device": "node001"}]})),
        )
        self.assertEqual(
            self.api.get("/config/network/v6/_nextfreeip"),
            (200, env("network", "v6", {"nextip": "::1:2"})),
        )
        self.assertEqual(
            self.api.get("/config/network/v6/_member"),
            (
                200,
                env(
                    "network",
                    "v6",
                    {
                        "members": ["node001"],
                        "taken": [{"ipaddress": "::1:1", "device": "node001"}],
                    },
                ),
            ),
        )

    def test_renumber_ipv6(self) -> None:
        """Renumbering an IPv6 network keeps each host offset, in IPv6."""
        self.api.post("/config/network/v6", env("network", "v6", {"network": "::1:0/112"}))
        self.api.post(
            "/config/node/node001",
            env("node", "node001", {"interfaces": [{"interface": "eth6", "network": "v6"}]}),
        )
        self.assertEqual(
            self.api.post(
                "/config/network/v6", env("network", "v6", {"network": "2001:db8::/112"})
            )[0],
            204,
        )
        ip = self.eth6_address()
        self.assertEqual(ip, "2001:db8::1")


class TakenSortTests(unittest.TestCase):
    def test_mixed_families_sort(self) -> None:
        """taken() sorts addresses of both families without comparing them
        across families (which raised TypeError: a 500)."""
        state = State()
        net = Obj(1, "network", "n", {"network": "10.0.0.0/8"})
        state.add(net)
        state.add(Obj(2, "otherdev", "a", {}, [Iface("otherdev", 1, "::5")]))
        state.add(Obj(3, "otherdev", "b", {}, [Iface("otherdev", 1, "10.0.0.9")]))
        self.assertEqual(
            ipam.taken(state, net),
            [{"ipaddress": "10.0.0.9", "device": "b"}, {"ipaddress": "::5", "device": "a"}],
        )
