"""The boot policy of docs/BOOT.md ("Who may claim a node"), attacked
through the whole HTTP stack (StubTreq, whose requests come from 127.0.0.1)
and, for power control, over real HTTP with a real IPMI client and an
OpenIPMI simulator:

- the manual boot moves a MAC only to or from a node that is armed or whose
  group allows it; a node without a MAC takes one (first provisioning);
- the install script goes without a token only to the node's provisioning
  address, and only once per grant (admin arming, power on/cycle/reset
  through /control, first provisioning), with arming persisted, visible,
  expiring on the clock and refused to non-admins;
- a node token reports only its boot interface's address, on a network with
  dhcp on, inside the range, from that address."""

from __future__ import annotations

import json
from typing import Any

import jwt
from twisted.internet import defer
from twisted.trial import unittest

from tests.boot.support import MAC, BootAPI
from tests.ipmi.test_control import Cluster
from tests.support import SECRET, ReactorCase, load_store

OTHER = "02:00:00:00:00:77"


def exported(script: str, name: str) -> str:
    prefix = f"export {name}="
    return next(line[len(prefix) :] for line in script.splitlines() if line.startswith(prefix))


class ManualBootPolicyTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()
        self.api.update("node", "node001", {"macaddr": MAC})

    def macs(self) -> tuple[Any, Any]:
        return self.api.node("node001")["macaddr"], self.api.node("node002")["macaddr"]

    def test_stranger_cannot_take_a_node_with_a_mac(self) -> None:
        """The attack of issue 8: a node that has a MAC is not given a
        stranger's by the manual boot (403 naming how to allow it); nothing
        is written, in memory or in the database."""
        writes = self.api.store.writes
        for path in (
            f"/boot/manual/hostname/node001/{OTHER}",
            f"/boot/manual/hostname/node001/{OTHER.upper()}",
        ):
            code, body, _ = self.api.text(path)
            self.assertEqual(code, 403, body)
            self.assertIn("_arm", body["message"])
        self.assertEqual(self.api.store.writes, writes)
        self.assertEqual(self.macs()[0], MAC)
        store = load_store(self.api.cfg, self.api.clock)
        self.addCleanup(store.pool.close)
        self.assertEqual(store.show("node", "node001")["macaddr"], MAC)
        self.assertIn("luna.node=node001 ", self.api.script(f"/boot/search/mac/{MAC}"))

    def test_a_nodes_mac_cannot_be_moved_to_another_node(self) -> None:
        """Nor may a stranger spoofing node001's MAC move it to node002
        (which has no MAC), which would leave node001 without one and free to
        claim: the holder must be armed too."""
        code, body, _ = self.api.text(f"/boot/manual/hostname/node002/{MAC}")
        self.assertEqual(code, 403, body)
        self.assertIn("node001", body["message"])
        code, body, _ = self.api.text(f"/boot/manual/group/compute/{MAC}")
        self.assertEqual(code, 200, body)  # node001 is of that group: it boots as itself
        self.assertIn("luna.node=node001 ", body)
        self.assertEqual(self.macs(), (MAC, None))

    def test_first_provisioning(self) -> None:
        """A node without a MAC takes one from the manual boot, as the spec
        has it, and may then fetch its install script once."""
        self.api.on_loopback("node002")
        self.assertIn(
            "luna.node=node002 ", self.api.script(f"/boot/manual/hostname/node002/{OTHER}")
        )
        self.assertEqual(self.macs(), (MAC, OTHER))
        self.assertEqual(
            self.api.get("/config/node/node002/_arm")[1]["config"]["node"]["node002"][
                "install_grant"
            ],
            "discovery",
        )
        code, body, _ = self.api.text("/boot/install/node002")
        self.assertEqual(code, 200, body)
        code, body, _ = self.api.text("/boot/install/node002")
        self.assertEqual(code, 403)
        self.assertIn("not armed", body["message"])

    def test_armed_once(self) -> None:
        """An admin's arming lets the manual boot move the MAC once (a
        replaced motherboard); the arming is then spent for MACs but still
        grants the one install; a second move is refused."""
        self.api.arm("node001")
        self.api.on_loopback("node001")
        self.api.script(f"/boot/manual/hostname/node001/{OTHER}")
        self.assertEqual(self.macs()[0], OTHER)
        code, body, _ = self.api.text("/boot/manual/hostname/node001/02:00:00:00:00:78")
        self.assertEqual(code, 403, body)
        self.assertEqual(self.macs()[0], OTHER)
        state = self.api.get("/config/node/node001/_arm")[1]["config"]["node"]["node001"]
        self.assertEqual((state["armed"], state["install_grant"]), (None, "manual"))
        self.assertEqual(self.api.text("/boot/install/node001")[0], 200)
        self.assertEqual(self.api.text("/boot/install/node001")[0], 403)

    def test_group_allows(self) -> None:
        """A group with mac_reassign on lets the manual boot move its nodes'
        MACs without arming (a lab where anyone at a console may)."""
        self.api.update("group", "compute", {"mac_reassign": True})
        self.api.script(f"/boot/manual/hostname/node001/{OTHER}")
        self.assertEqual(self.macs()[0], OTHER)
        self.api.script(f"/boot/manual/hostname/node002/{OTHER}")
        self.assertEqual(self.macs(), (None, OTHER))


class InstallPolicyTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()
        self.api.on_loopback("node001")
        self.api.update("bmcsetup", "compute", {"password": "bmc-PASSWORD-xyz"})

    def fetch(self, node: str = "node001") -> tuple[int, Any]:
        code, body, _ = self.api.text(f"/boot/install/{node}")
        return code, body

    def test_not_armed_403(self) -> None:
        """From the node's own provisioning address but without a grant the
        script is refused (403 saying how to arm): no secrets, no token."""
        code, body = self.fetch()
        self.assertEqual(code, 403)
        self.assertIn("POST /config/node/node001/_arm", body["message"])
        self.assertNotIn("bmc-PASSWORD-xyz", json.dumps(body))

    def test_once_per_arming(self) -> None:
        """Armed once: one fetch gets the script with the BMC password and a
        node token; the next is 403; arming again gives one more."""
        self.api.arm("node001")
        code, body = self.fetch()
        self.assertEqual(code, 200, body)
        self.assertIn("bmc-PASSWORD-xyz", body)
        claims = jwt.decode(
            exported(body, "LUNA_TOKEN"),
            SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
        self.assertEqual(claims["node"], "node001")
        self.assertEqual(self.fetch()[0], 403)
        self.api.arm("node001")
        self.assertEqual(self.fetch()[0], 200)

    def test_only_the_provisioning_address(self) -> None:
        """The BMC's address or another interface's is not the node: with
        the node armed, a request from 127.0.0.1 holding its BMC or ib0
        address is refused, and the arming is not spent."""
        self.api.update(
            "node",
            "node001",
            {
                "interfaces": [
                    {"interface": "BOOTIF", "network": "cluster", "ipaddress": "10.141.0.1"},
                    {"interface": "BMC", "network": "loop", "ipaddress": "127.0.0.1"},
                ]
            },
        )
        self.api.arm("node001")
        code, body = self.fetch()
        self.assertEqual(code, 403)
        self.assertIn("provisioning interface address", body["message"])
        self.api.update(
            "node",
            "node001",
            {
                "interfaces": [
                    {"interface": "BMC", "network": "ipmi", "ipaddress": "10.148.0.1"},
                    {"interface": "ib0", "network": "loop", "ipaddress": "127.0.0.1"},
                ]
            },
        )
        self.assertEqual(self.fetch()[0], 403)
        self.assertEqual(
            self.api.get("/config/node/node001/_arm")[1]["config"]["node"]["node001"]["armed"],
            "once",
        )

    def test_admin_token_any_time(self) -> None:
        """An admin token gets any node's script at any time, without
        spending a grant; readonly and node tokens are 403."""
        self.api.arm("node001")
        for _ in range(2):
            code, _, _ = self.api.text("/boot/install/node002", token=self.api.admin_token)
            self.assertEqual(code, 200)
        self.assertEqual(
            self.api.text("/boot/install/node001", token=self.api.token("node", node="node001"))[0],
            403,
        )
        self.assertEqual(self.fetch()[0], 200)

    def test_expiry_and_disarm(self) -> None:
        """An arming with an expiry lapses on the clock; disarming takes it
        back at once; continuous arming serves every fetch until disarmed."""
        self.api.arm("node001", {"config": {"node": {"node001": {"expiry": 60}}}})
        state = self.api.get("/config/node/node001/_arm")[1]["config"]["node"]["node001"]
        self.assertEqual(state["armed_until"], int(self.api.clock.seconds()) + 60)
        self.api.clock.advance(61)
        self.assertEqual(self.fetch()[0], 403)
        self.api.arm("node001")
        self.assertEqual(self.api.post("/config/node/node001/_disarm")[0], 204)
        self.assertEqual(self.fetch()[0], 403)
        self.api.arm(
            "node001", {"config": {"node": {"node001": {"mode": "continuous", "expiry": 0}}}}
        )
        self.api.clock.advance(10 * 86400)
        for _ in range(3):
            self.assertEqual(self.fetch()[0], 200)

    def test_clone_is_not_armed(self) -> None:
        """A clone of an armed node is not armed (it starts as a node
        without a MAC: first provisioning)."""
        self.api.arm("node001", {"config": {"node": {"node001": {"mode": "continuous"}}}})
        code, body = self.api.post(
            "/config/node/node001/_clone",
            {"config": {"node": {"node001": {"newhostname": "node009"}}}},
        )
        self.assertEqual(code, 201, body)
        state = self.api.get("/config/node/node009/_arm")[1]["config"]["node"]["node009"]
        self.assertEqual((state["armed"], state["install_grant"]), (None, None))

    def test_arming_persists(self) -> None:
        """Arming is a store write: a restart (the store loaded again from
        its database file) still has it."""
        self.api.arm("node001", {"config": {"node": {"node001": {"mode": "continuous"}}}})
        store = load_store(self.api.cfg, self.api.clock)
        self.addCleanup(store.pool.close)
        self.assertEqual(store.arming("node001")["armed"], "continuous")

    def test_arm_refusals(self) -> None:
        """Only admins arm (401 without a token, 403 readonly and node
        tokens); readonly may see; bad bodies are 400 naming the field; an
        unknown node 404; the arming fields are not writable through the
        generic update (400)."""
        from luna2d.store import objects
        from tests.support import result_of

        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        viewer = self.api.token("readonly", "viewer")
        self.assertEqual(self.api.post("/config/node/node001/_arm", token=False)[0], 401)
        self.assertEqual(self.api.post("/config/node/node001/_arm", token=viewer)[0], 403)
        self.assertEqual(
            self.api.post(
                "/config/node/node001/_arm", token=self.api.token("node", node="node001")
            )[0],
            403,
        )
        self.assertEqual(self.api.get("/config/node/node001/_arm", token=viewer)[0], 200)
        for fields, word in (
            ({"mode": "always"}, "mode"),
            ({"expiry": -1}, "expiry"),
            ({"expiry": 10**9}, "expiry"),
            ({"expiry": "soon"}, "expiry"),
            ({"until": 5}, "until"),
        ):
            code, body = self.api.post(
                "/config/node/node001/_arm", {"config": {"node": {"node001": fields}}}
            )
            self.assertEqual(code, 400, fields)
            self.assertIn(word, body["message"])
        self.assertEqual(self.api.post("/config/node/node999/_arm")[0], 404)
        for field in ("armed", "armed_until", "install_grant"):
            code, body = self.api.post(
                "/config/node/node001", {"config": {"node": {"node001": {field: "once"}}}}
            )
            self.assertEqual(code, 400, field)
        self.assertEqual(self.fetch()[0], 403)


class ConcurrentInstallTests(ReactorCase):
    async def test_concurrent_fetches_get_one_script(self) -> None:
        """Armed once, ten fetches at the same moment: exactly one gets the
        script, nine are 403 (the grant is spent inside the write lock)."""
        from tests.boot.support import fetch

        api = BootAPI(self)
        api.bootable()
        api.on_loopback("node001")
        api.arm("node001")
        answers = await defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(fetch(api, "GET", "/boot/install/node001"))
                for _ in range(10)
            ]
        )
        self.assertEqual(sorted(code for code, _, _ in answers), [200] + [403] * 9)


class PowerGrantTests(ReactorCase):
    async def test_power_on_grants_one_install(self) -> None:
        """Over real HTTP with an IPMI simulator: before, and after power
        status or off, node001's install is 403; power on through /control
        lets it fetch the script once; a cycle of the hostlist grants again."""
        cluster = Cluster(self)
        await cluster.setup()
        await cluster.simulators([False])
        code, _ = await cluster.call(
            "POST",
            "/config/network/loop",
            {"config": {"network": {"loop": {"network": "127.0.0.0/8"}}}},
        )
        self.assertEqual(code, 201)
        code, _ = await cluster.call(
            "POST",
            "/config/node/node001",
            {
                "config": {
                    "node": {
                        "node001": {
                            "interfaces": [
                                {"interface": "BOOTIF", "network": "loop", "ipaddress": "127.0.0.1"}
                            ]
                        }
                    }
                }
            },
        )
        self.assertEqual(code, 204)
        base = "/control/action/power"
        install = "/boot/install/node001"
        self.assertEqual((await cluster.call("GET", install, token=None))[0], 403)
        self.assertEqual((await cluster.call("GET", f"{base}/node001/_status"))[0], 200)
        self.assertEqual((await cluster.call("GET", f"{base}/node001/_off"))[0], 204)
        self.assertEqual((await cluster.call("GET", install, token=None))[0], 403)
        self.assertEqual((await cluster.call("GET", f"{base}/node001/_on"))[0], 204)
        state = (await cluster.call("GET", "/config/node/node001/_arm"))[1]["config"]["node"][
            "node001"
        ]
        self.assertEqual(state["install_grant"], "power")
        code, body = await self.script(cluster, install)
        self.assertEqual(code, 200, body)
        self.assertIn("export LUNA_TOKEN=", body)
        self.assertEqual((await self.script(cluster, install))[0], 403)
        code, body = await cluster.call(
            "POST",
            f"{base}/_cycle",
            {"control": {"power": {"cycle": {"hostlist": "node[001-002]"}}}},
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(body["control"]["power"], {"ok": {"node001": "power cycle"}})
        self.assertTrue(body["progress"]["finished"])
        self.assertEqual((await self.script(cluster, install))[0], 200)
        # node002 has no BMC: its cycle failed, so it was granted nothing.
        state = (await cluster.call("GET", "/config/node/node002/_arm"))[1]["config"]["node"][
            "node002"
        ]
        self.assertIsNone(state["install_grant"])

    async def script(self, cluster: Cluster, path: str) -> tuple[int, str]:
        import treq

        url = f"http://127.0.0.1:{cluster.port.getHost().port}{path}"
        response = await treq.get(url, pool=cluster.pool, timeout=20)
        return response.code, (await response.content()).decode()


# 127.0.0.0/24 with a DHCP range (.1-.50) below the nodes' addresses.
LOOP_NETWORK = {
    "network": "127.0.0.0/24",
    "dhcp": True,
    "dhcp_range_begin": "127.0.0.1",
    "dhcp_range_end": "127.0.0.50",
}


class NodeTokenTests(unittest.TestCase):
    """Finding 4: a node token reports only its own boot interface's address."""

    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.update("network", "loop", dict(LOOP_NETWORK))
        self.api.update(
            "node",
            "node001",
            {
                "interfaces": [
                    {"interface": "BOOTIF", "network": "loop", "ipaddress": "127.0.0.100"}
                ]
            },
        )
        self.token = self.api.token("node", node="node001")

    def report(self, interfaces: Any, extra: dict | None = None) -> tuple[int, Any]:
        fields = {"name": "node001", "interfaces": interfaces, **(extra or {})}
        return self.api.post(
            "/config/node/node001", {"config": {"node": {"node001": fields}}}, token=self.token
        )

    def interfaces(self) -> dict[str, Any]:
        return {i["interface"]: i["ipaddress"] for i in self.api.node("node001")["interfaces"]}

    def test_reports_its_dhcp_address(self) -> None:
        """What the install script sends (its provisioning interface, force,
        the address it calls from) is stored, with vendor and asset tag."""
        code, body = self.report(
            [{"interface": "BOOTIF", "force": True, "ipaddress": "127.0.0.1"}],
            {"vendor": "ACME", "assettag": "SN-1"},
        )
        self.assertEqual(code, 204, body)
        self.assertEqual(self.interfaces()["BOOTIF"], "127.0.0.1")
        self.assertEqual(self.api.node("node001")["vendor"], "ACME")

    def test_attacks_refused(self) -> None:
        """Each attack of issue 8 is refused and changes nothing: a new
        interface evil0 at a BMC-network address; moving its BMC interface;
        every range address in one request with force; another interface,
        network or MAC; an address it does not call from; one outside the
        network (400) or the range."""
        before = self.interfaces()
        attacks = [
            ([{"interface": "evil0", "ipaddress": "10.148.0.77", "force": True}], 403),
            ([{"interface": "BMC", "ipaddress": "10.148.0.99"}], 403),
            (
                [
                    {"interface": "BOOTIF", "ipaddress": f"127.0.0.{n}", "force": True}
                    for n in range(1, 51)
                ],
                403,
            ),
            ([{"interface": "BOOTIF", "ipaddress": "127.0.0.1", "network": "cluster"}], 403),
            ([{"interface": "BOOTIF", "ipaddress": "127.0.0.1", "macaddress": OTHER}], 403),
            ([{"interface": "BOOTIF", "ipaddress": "127.0.0.2", "force": True}], 403),
            ([{"interface": "BOOTIF", "ipaddress": "10.141.0.200", "force": True}], 400),
            ([{"interface": "BOOTIF", "ipaddress": "127.0.0.60"}], 403),
            ([], 403),
            ("BOOTIF", 403),
        ]
        for interfaces, expected in attacks:
            code, body = self.report(interfaces)
            self.assertEqual(code, expected, (interfaces, body))
            self.assertIsInstance(body["message"], str)
        self.assertEqual(self.interfaces(), before)
        code, body = self.api.post(
            "/config/node/node002",
            {
                "config": {
                    "node": {
                        "node002": {
                            "interfaces": [{"interface": "BOOTIF", "ipaddress": "127.0.0.1"}]
                        }
                    }
                }
            },
            token=self.token,
        )
        self.assertEqual(code, 403)

    def test_static_network_refused(self) -> None:
        """On a network with dhcp off the node boots with a static address:
        its token may not change it, even to the address it calls from."""
        self.api.update("network", "loop", {"dhcp": False})
        code, body = self.report([{"interface": "BOOTIF", "ipaddress": "127.0.0.1", "force": True}])
        self.assertEqual(code, 403)
        self.assertIn("dhcp off", body["message"])
        self.assertEqual(self.interfaces()["BOOTIF"], "127.0.0.100")


class DynamicNodeTests(unittest.TestCase):
    """A node whose provisioning interface has no address boots by DHCP:
    its install script goes to an address of a DHCP range that no device
    holds (still once per grant), and its token then reports that address."""

    def setUp(self) -> None:
        self.api = BootAPI(self)
        self.api.bootable()
        self.api.update("network", "loop", dict(LOOP_NETWORK))
        self.api.update(
            "node",
            "node002",
            {
                "provision_interface": "eth9",
                "interfaces": [{"interface": "eth9", "macaddress": OTHER}],
            },
        )

    def test_install_then_report(self) -> None:
        """Not armed: 403; armed: the script, whose token reports the
        address the node calls from, which becomes the interface's."""
        self.assertIn("luna.bootproto=dhcp ", self.api.script(f"/boot/search/mac/{OTHER}"))
        self.assertEqual(self.api.text("/boot/install/node002")[0], 403)
        self.api.arm("node002")
        code, script, _ = self.api.text("/boot/install/node002")
        self.assertEqual(code, 200, script)
        token = exported(script, "LUNA_TOKEN")
        code, body = self.api.post(
            "/config/node/node002",
            {
                "config": {
                    "node": {
                        "node002": {
                            "name": "node002",
                            "interfaces": [
                                {"interface": "eth9", "force": True, "ipaddress": "127.0.0.1"}
                            ],
                        }
                    }
                }
            },
            token=token,
        )
        self.assertEqual(code, 204, body)
        eth9 = next(i for i in self.api.node("node002")["interfaces"] if i["interface"] == "eth9")
        self.assertEqual((eth9["network"], eth9["ipaddress"]), ("loop", "127.0.0.1"))

    def test_not_from_a_held_or_static_address(self) -> None:
        """An address some device holds, or one outside every DHCP range,
        is not a DHCP-booted node: 403 even when armed."""
        self.api.arm("node002")
        self.api.update(
            "node",
            "node003",
            {
                "interfaces": [
                    {"interface": "ib0", "network": "loop", "ipaddress": "127.0.0.1", "force": True}
                ]
            },
        )
        self.assertEqual(self.api.text("/boot/install/node002")[0], 403)
        self.api.update(
            "node",
            "node003",
            {"interfaces": [{"interface": "ib0", "network": "ib", "ipaddress": "10.149.0.3"}]},
        )
        self.api.update("network", "loop", {"dhcp_range_begin": "127.0.0.2"})
        self.assertEqual(self.api.text("/boot/install/node002")[0], 403)
        self.api.update("network", "loop", {"dhcp_range_begin": "127.0.0.1"})
        self.assertEqual(self.api.text("/boot/install/node002")[0], 200)
