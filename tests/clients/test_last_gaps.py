"""Contract tests for the last gaps of issue 10 between luna2d and the
unmodified clients (docs/CLIENTS.md, docs/API.md):

- ``luna control sel list <node>`` and ``lnode list <node>`` read
  ``control.sel`` of ``GET /control/action/sel/<node>/_list`` as one text,
  entries separated by ``;;`` (lnode turns each ``;;`` into a new line; the
  CLI wraps the text at 50 columns). luna2d answered a JSON list, on which
  both fell back to printing the raw answer;
- ``luna group changeinterface <group> <interface>`` POSTs
  ``/config/group/<group>/interfaces`` and reads only 204 as success, also
  when the interface is new; ``luna node changeinterface`` and the switch
  and other-device interface commands take 201 or 204. A POST there now
  answers 204 whether it adds or changes (a new one answered 201, and the
  CLI exited 1 with the interface in place);
- fields the luna2 daemon keeps and the newer CLI sends (``luna cluster
  change``, ``network add|change``, ``switch add|change``) are validated,
  stored and shown; fields the incumbent does not have (network
  ``dhcp_relay``, node ``routes``, switch ``ostype``, the request flag
  ``nonetwork``) stay refused with a message naming them."""

from __future__ import annotations

import shutil
from typing import Any

from twisted.trial import unittest

from luna2d.ipmi.session import Success
from tests.clients.support import HeldIPMICase
from tests.support import API, env


class SelListTests(HeldIPMICase):
    """One node's SEL as the clients read it (StubTreq, BMC answered by the test)."""

    def sel_list(self, lines: list[str]) -> tuple[int, Any]:
        d = self.request("GET", "/control/action/sel/node001/_list")
        self.ipmi.pending["node001"].callback(Success(lines))
        self.api.treq.flush()
        return self.body_of(d)

    def test_entries_joined_by_double_semicolon(self) -> None:
        """Two entries come back as one string; splitting it on ``;;`` as
        lnode does gives the two lines back, in order."""
        lines = [
            "1 | 12/01/2026 | 10:00:00 | Temperature #0x01 | Asserted",
            "2 | 12/01/2026 | 10:05:00 | Processor #0x10 | Thermal Trip | Asserted",
        ]
        code, body = self.sel_list(lines)
        self.assertEqual(code, 200, body)
        self.assertIsInstance(body["control"]["sel"], str)
        self.assertEqual(body["control"]["sel"], ";;".join(lines))
        self.assertEqual(body["control"]["sel"].replace(";;", "\n").splitlines(), lines)

    def test_empty_sel_is_empty_text(self) -> None:
        """An empty SEL is an empty string, not a list (the CLI takes its length)."""
        self.assertEqual(self.sel_list([]), (200, {"control": {"sel": ""}}))


class InterfacePostTests(unittest.TestCase):
    """POST .../interfaces as ``changeinterface`` sends it (in process)."""

    def setUp(self) -> None:
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def change(self, kind: str, name: str, interface: dict[str, str]) -> tuple[int, Any]:
        path = f"/config/{kind}/{name}/interfaces"
        return self.api.post(path, env(kind, name, {"interfaces": [interface]}))

    def test_group_new_and_changed_interface_are_204(self) -> None:
        """A group interface the group lacks, then a change to it: both 204
        with no body (what the CLI takes as success), and it is stored."""
        self.assertEqual(
            self.change("group", "compute", {"interface": "eth5", "network": "ib"}), (204, None)
        )
        self.assertEqual(
            self.change("group", "compute", {"interface": "eth5", "mtu": "9000"}), (204, None)
        )
        code, body = self.api.get("/config/group/compute/interfaces/eth5")
        self.assertEqual(code, 200, body)
        [shown] = body["config"]["group"]["compute"]["interfaces"]
        self.assertEqual((shown["network"], str(shown["mtu"])), ("ib", "9000"))

    def test_node_new_interface_is_204(self) -> None:
        """``luna node changeinterface`` on a new interface: 204 (it reads 201 or 204)."""
        self.assertEqual(
            self.change("node", "node001", {"interface": "eth7", "network": "ib"}), (204, None)
        )
        self.assertEqual(self.api.get("/config/node/node001/interfaces/eth7")[0], 200)


class IncumbentFieldTests(unittest.TestCase):
    """The incumbent's extra fields, as the CLI sends them (in process)."""

    def setUp(self) -> None:
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def view(self, kind: str, name: str) -> dict[str, Any]:
        code, body = self.api.get(f"/config/{kind}/{name}")
        self.assertEqual(code, 200, body)
        return body["config"][kind][name]

    def test_cluster_fields(self) -> None:
        """``luna cluster change`` with every extra field: 204, then shown
        (address lists and search domains as comma-separated text, the
        CLI's y/n as booleans); ``""`` unsets."""
        body = {
            "user": "trinity",
            "nameserver_ip": "10.141.255.254 10.141.255.253",
            "forwardserver_ip": "8.8.8.8,1.1.1.1",
            "domain_search": "cluster ipmi",
            "security": "y",
            "packing_bootpause": "n",
            "createnode_ondemand": "yes",
            "createnode_macashost": "no",
            "nextnode_discover": "y",
            "bind_legacy": "n",
            "dnssec_enable": "y",
            "dnssec_validation": "n",
        }
        code, answer = self.api.post("/config/cluster", {"config": {"cluster": body}})
        self.assertEqual((code, answer), (204, None))
        code, shown = self.api.get("/config/cluster")
        view = shown["config"]["cluster"]
        self.assertEqual(
            {key: view[key] for key in body},
            {
                "user": "trinity",
                "nameserver_ip": "10.141.255.254,10.141.255.253",
                "forwardserver_ip": "8.8.8.8,1.1.1.1",
                "domain_search": "cluster ipmi",
                "security": True,
                "packing_bootpause": False,
                "createnode_ondemand": True,
                "createnode_macashost": False,
                "nextnode_discover": True,
                "bind_legacy": False,
                "dnssec_enable": True,
                "dnssec_validation": False,
            },
        )
        code, _ = self.api.post(
            "/config/cluster", {"config": {"cluster": {"forwardserver_ip": ""}}}
        )
        self.assertEqual(code, 204)
        self.assertIsNone(
            self.api.get("/config/cluster")[1]["config"]["cluster"]["forwardserver_ip"]
        )

    def test_cluster_bad_values(self) -> None:
        """A bad address in a list, a bad search domain or a bad boolean: 400 naming the field."""
        for field, value in (
            ("nameserver_ip", "10.141.255.254,banana"),
            ("forwardserver_ip", "8.8.8.300"),
            ("domain_search", "a;b"),
            ("security", "maybe"),
        ):
            code, body = self.api.post("/config/cluster", {"config": {"cluster": {field: value}}})
            self.assertEqual(code, 400, (field, body))
            self.assertIn(field, body["message"])

    def test_network_fields(self) -> None:
        """``luna network change`` with zone, type, gateway_metric, shared
        and non_authoritative: stored and shown; a zone other than
        internal/external, a missing or self shared network: 400."""
        fields = {
            "zone": "external",
            "type": "infiniband",
            "gateway_metric": "100",
            "shared": "cluster",
            "non_authoritative": "y",
        }
        self.assertEqual(
            self.api.post("/config/network/ib", env("network", "ib", fields)), (204, None)
        )
        view = self.view("network", "ib")
        self.assertEqual(
            {key: view[key] for key in fields},
            {
                "zone": "external",
                "type": "infiniband",
                "gateway_metric": 100,
                "shared": "cluster",
                "non_authoritative": True,
            },
        )
        for field, value, words in (
            ("zone", "dmz", "zone"),
            ("shared", "nope", "nope"),
            ("shared", "ib", "itself"),
            ("gateway_metric", "-1", "gateway_metric"),
        ):
            code, body = self.api.post("/config/network/ib", env("network", "ib", {field: value}))
            self.assertEqual(code, 400, (field, body))
            self.assertIn(words, body["message"])
        self.assertEqual(self.view("network", "ib")["zone"], "external")

    def test_switch_uplinkports(self) -> None:
        """``luna switch change -u``: kept and shown."""
        self.assertIn(
            self.api.post(
                "/config/switch/sw01",
                env("switch", "sw01", {"network": "ipmi", "ipaddress": "10.148.253.9"}),
            )[0],
            (201, 204),
        )
        self.assertEqual(
            self.api.post("/config/switch/sw01", env("switch", "sw01", {"uplinkports": "47,48"})),
            (204, None),
        )
        self.assertEqual(self.view("switch", "sw01")["uplinkports"], "47,48")

    def test_fields_the_incumbent_lacks_stay_refused(self) -> None:
        """What the luna2 daemon has no field for is refused by name, and nothing changes."""
        for kind, name, field, value in (
            ("network", "ib", "dhcp_relay", "10.149.0.1"),
            ("node", "node001", "routes", "r1"),
            ("switch", "sw01", "ostype", "cumulus"),
            ("otherdev", "pdu01", "nonetwork", True),
        ):
            code, body = self.api.post(f"/config/{kind}/{name}", env(kind, name, {field: value}))
            self.assertEqual(code, 400, (field, body))
            self.assertIn(field, body["message"])
        self.assertEqual(self.api.get("/config/switch/sw01")[0], 404)
