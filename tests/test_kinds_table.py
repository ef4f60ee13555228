"""The kind table is the one description of every kind, and it is true.

- A kind registered from a test (and taken out again) gets, from its entry
  alone: address allocation (IPAM), ``_list`` of a network, ``_member`` of
  its own objects and of a network, interface templates carried to the
  objects that take them, refusal to delete a network it holds addresses
  on, and boot index refreshes of the taken addresses.
- The table says what the code does: ``macaddr`` is accepted and shown, a
  rack's ``devices`` too; ``tags`` is a map shown by its names; a group
  takes ``setupbmc`` (the TrinityX CLI's name) for its ``bmcsetup`` flag and
  ``""`` unsets a flag (a node then inherits it).
- A kind without a members relation answers 404, not [].
- Booleans are read by one function, for the API, the ini file and the
  journal."""

from __future__ import annotations

import ast
import ipaddress
from pathlib import Path

from twisted.trial import unittest

import luna2d
from luna2d import config
from luna2d.errors import ConfigError, Invalid, NotFound
from luna2d.model import kinds
from luna2d.model.fields import Field, parse_bool
from luna2d.model.kinds import COMMENT, KINDS, NO_MEMBERS, Kind, Members
from luna2d.store.bootindex import BootIndexer
from luna2d.store.store import _journal_row
from tests.support import API, env

CHASSIS = Kind(
    name="chassis",
    rename=("newchassisname",),
    interfaces="network",
    members=Members("refers", kind="blade", field="chassis"),
    fields=(Field("slots", "int", default=16, minimum=1, maximum=64), COMMENT),
)
BLADE = Kind(
    name="blade",
    rename=("newbladename",),
    interfaces="multi",
    required=("chassis",),
    members=NO_MEMBERS,
    fields=(
        Field("chassis", "ref", ref="chassis"),
        Field("macaddr", "mac", stored=False),
        Field("provision_interface", "str", default="BOOTIF"),
        COMMENT,
    ),
)
PDU = Kind(
    name="pdu", rename=("newpduname",), interfaces="single", members=NO_MEMBERS, fields=(COMMENT,)
)


class ThrowawayKindTests(unittest.TestCase):
    """Three kinds that exist only in this test, served by the whole API."""

    def setUp(self) -> None:
        self.before = dict(KINDS)
        self.addCleanup(self.assertEqual, set(KINDS), set(self.before))  # runs last: all undone
        for kind in (CHASSIS, BLADE, PDU):
            self.addCleanup(kinds.register(kind))
        self.api = API()
        self.indexer = BootIndexer(self.api.store)

    def post(self, kind: str, name: str, fields: dict, code: int = 201) -> None:
        got = self.api.post(f"/config/{kind}/{name}", env(kind, name, fields))
        self.assertEqual(got[0], code, got)

    def test_blade_gets_addresses_from_its_chassis(self) -> None:
        """A blade takes its chassis' interface templates, each with the
        network's next free address, shown like a node's and listed as
        taken by the network."""
        expected = self.api.store.nextfreeip("cluster")
        self.post("chassis", "c1", {"interfaces": [{"interface": "BOOTIF", "network": "cluster"}]})
        self.post("blade", "b1", {"chassis": "c1", "macaddr": "02:00:00:00:0b:01"})
        blade = self.api.show("blade", "b1")
        self.assertEqual(
            blade["interfaces"],
            [
                {
                    "interface": "BOOTIF",
                    "network": "cluster",
                    "ipaddress": expected,
                    "macaddress": "02:00:00:00:0b:01",
                    "options": None,
                }
            ],
        )
        self.assertEqual(blade["macaddr"], "02:00:00:00:0b:01")
        code, body = self.api.get("/config/network/cluster/_list")
        self.assertEqual(code, 200)
        self.assertIn(
            {"ipaddress": expected, "device": "b1"}, body["config"]["network"]["cluster"]["taken"]
        )
        self.assertEqual(
            self.api.get(f"/config/network/cluster/{expected}"),
            (200, {"config": {"network": {expected: {"status": "taken", "device": "b1"}}}}),
        )
        self.assertNotEqual(self.api.store.nextfreeip("cluster"), expected)

    def test_template_changes_reach_blades(self) -> None:
        """A new chassis interface is carried to its blades, with addresses."""
        self.post("chassis", "c1", {"interfaces": [{"interface": "BOOTIF", "network": "cluster"}]})
        self.post("blade", "b1", {"chassis": "c1"})
        self.post(
            "chassis", "c1", {"interfaces": [{"interface": "ib0", "network": "ib"}]}, code=204
        )
        names = {i["interface"]: i["ipaddress"] for i in self.api.show("blade", "b1")["interfaces"]}
        self.assertEqual(set(names), {"BOOTIF", "ib0"})
        self.assertIn(ipaddress.ip_address(names["ib0"]), ipaddress.ip_network("10.149.0.0/16"))

    def test_interfaces_endpoint(self) -> None:
        """A kind with named interfaces gets .../interfaces: add, show, delete."""
        self.post("chassis", "c1", {"interfaces": [{"interface": "BOOTIF", "network": "cluster"}]})
        self.post("blade", "b1", {"chassis": "c1"})
        body = env("blade", "b1", {"interfaces": [{"interface": "eth1", "network": "ib"}]})
        self.assertEqual(self.api.post("/config/blade/b1/interfaces", body)[0], 204)
        code, answer = self.api.get("/config/blade/b1/interfaces/eth1")
        self.assertEqual(code, 200)
        item = answer["config"]["blade"]["b1"]["interfaces"][0]
        self.assertIn(
            ipaddress.ip_address(item["ipaddress"]), ipaddress.ip_network("10.149.0.0/16")
        )
        self.assertEqual(self.api.get("/config/blade/b1/interfaces/eth1/_delete")[0], 204)
        names = [i["interface"] for i in self.api.show("blade", "b1")["interfaces"]]
        self.assertEqual(names, ["BOOTIF"])
        code, answer = self.api.get("/config/pdu/p1/interfaces")
        self.assertEqual(
            (code, answer), (404, {"message": "pdu objects have no interfaces endpoint"})
        )

    def test_single_address_kind(self) -> None:
        """A PDU gets one address on the network it names, shown as
        network and ipaddress, and refused when taken."""
        self.post("pdu", "p1", {"network": "ipmi"})
        pdu = self.api.show("pdu", "p1")
        self.assertEqual(pdu["network"], "ipmi")
        self.assertIn(ipaddress.ip_address(pdu["ipaddress"]), ipaddress.ip_network("10.148.0.0/16"))
        code, body = self.api.post(
            "/config/pdu/p2", env("pdu", "p2", {"ipaddress": pdu["ipaddress"]})
        )
        self.assertEqual(
            (code, body),
            (400, {"message": f"ipaddress: {pdu['ipaddress']} is already taken by pdu p1"}),
        )

    def test_members(self) -> None:
        """_list and _member of the new kinds, and of the network they use."""
        self.post("chassis", "c1", {"interfaces": [{"interface": "BOOTIF", "network": "cluster"}]})
        self.post("blade", "b1", {"chassis": "c1"})
        self.post("blade", "b2", {"chassis": "c1"})
        self.post("pdu", "p1", {"network": "cluster"})
        for suffix in ("_list", "_member"):
            self.assertEqual(
                self.api.get(f"/config/chassis/c1/{suffix}"),
                (200, env("chassis", "c1", {"members": ["b1", "b2"]})),
            )
            self.assertEqual(
                self.api.get(f"/config/blade/b1/{suffix}"),
                (200, env("blade", "b1", {"members": []})),
            )
        code, body = self.api.get("/config/network/cluster/_member")
        self.assertEqual(code, 200)
        self.assertTrue({"b1", "b2", "p1"} <= set(body["config"]["network"]["cluster"]["members"]))

    def test_network_in_use_by_new_kind(self) -> None:
        """A network holding a blade's address cannot be deleted; the
        message names the blade and its interface."""
        self.post("network", "lab", {"network": "10.160.0.0/24"})
        self.post("chassis", "c1", {"interfaces": [{"interface": "eth0", "network": "lab"}]})
        self.post("blade", "b1", {"chassis": "c1"})
        code, body = self.api.get("/config/network/lab/_delete")
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "network 'lab' is still used by "
                    "chassis c1 (interface eth0), blade b1 (interface eth0)"
                },
            ),
        )

    def test_renumber_moves_new_kinds(self) -> None:
        """Renumbering a network moves a blade's and a PDU's addresses."""
        self.post("network", "lab", {"network": "10.160.0.0/24"})
        self.post("chassis", "c1", {"interfaces": [{"interface": "eth0", "network": "lab"}]})
        self.post("blade", "b1", {"chassis": "c1"})
        self.post("pdu", "p1", {"network": "lab"})
        self.post("network", "lab", {"network": "10.161.0.0/24"}, code=204)
        self.assertEqual(self.api.show("blade", "b1")["interfaces"][0]["ipaddress"], "10.161.0.1")
        self.assertEqual(self.api.show("pdu", "p1")["ipaddress"], "10.161.0.2")

    def test_boot_index_follows_new_kind(self) -> None:
        """The boot index's taken set is refreshed by a write to a kind
        that holds addresses, without a full rebuild."""
        first = self.indexer.current()
        rebuilds = self.indexer.rebuilds
        self.post("pdu", "p1", {"ipaddress": "10.141.0.190"})
        self.assertFalse(first.taken(int(ipaddress.IPv4Address("10.141.0.190"))))
        self.assertTrue(self.indexer.current().taken(int(ipaddress.IPv4Address("10.141.0.190"))))
        self.assertEqual(self.indexer.rebuilds, rebuilds)

    def test_register_is_undone(self) -> None:
        """register() refuses a name in use and its undo takes the kind out."""
        self.assertRaises(ValueError, kinds.register, CHASSIS)
        undo = kinds.register(Kind(name="scratch", fields=()))
        self.assertIn("scratch", KINDS)
        self.assertIn("scratch", kinds.GENERIC)
        undo()
        self.assertNotIn("scratch", KINDS)
        self.assertNotIn("scratch", kinds.GENERIC)
        self.assertEqual(set(KINDS) - set(self.before), {"chassis", "blade", "pdu"})


class TableTruthTests(unittest.TestCase):
    """The table says what the code does."""

    def setUp(self) -> None:
        self.api = API()

    def test_macaddr_is_a_shown_field(self) -> None:
        """macaddr is in the table as a field that is accepted and shown,
        kept on the provisioning interface rather than in the node's data."""
        f = KINDS["node"].field("macaddr")
        assert f is not None
        self.assertEqual((f.internal, f.stored, f.type), (False, False, "mac"))
        code, _ = self.api.post(
            "/config/node/node001", env("node", "node001", {"macaddr": "02:00:00:00:aa:01"})
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.api.show("node", "node001")["macaddr"], "02:00:00:00:aa:01")
        node = self.api.store.state.get("node", "node001")
        assert node is not None
        self.assertNotIn("macaddr", node.data)
        self.assertEqual(node.iface("BOOTIF").mac, "02:00:00:00:aa:01")  # type: ignore[union-attr]

    def test_tags_is_a_map(self) -> None:
        """tags is a read-only map, shown by its names comma-separated (the
        CLI's table breaks on a list of strings); an echo is ignored."""
        f = KINDS["osimage"].field("tags")
        assert f is not None
        self.assertEqual((f.type, f.readonly, f.internal), ("map", True, False))
        self.assertEqual(
            self.api.post("/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"}))[
                0
            ],
            204,
        )
        shown = self.api.show("osimage", "compute")
        self.assertEqual(shown["tags"], "v1")
        self.assertEqual(
            self.api.post("/config/osimage/compute", env("osimage", "compute", shown))[0], 204
        )
        self.assertEqual(self.api.show("osimage", "compute")["tags"], "v1")

    def test_group_takes_setupbmc(self) -> None:
        """A group takes setupbmc (the TrinityX CLI's name) for its bmcsetup
        flag; nodes inherit it as their setupbmc."""
        self.assertEqual(
            self.api.post("/config/group/compute", env("group", "compute", {"setupbmc": False}))[0],
            204,
        )
        self.assertIs(self.api.show("group", "compute")["bmcsetup"], False)
        node = self.api.show("node", "node001")
        self.assertEqual((node["setupbmc"], node["_setupbmc_source"]), (False, "group"))

    def test_empty_flag_unsets(self) -> None:
        """setupbmc "" on a node goes back to inheriting the group's flag;
        on a group it goes back to the default."""
        self.api.post("/config/node/node001", env("node", "node001", {"setupbmc": False}))
        self.assertEqual(self.api.show("node", "node001")["_setupbmc_source"], "node")
        self.assertEqual(
            self.api.post("/config/node/node001", env("node", "node001", {"setupbmc": ""}))[0], 204
        )
        node = self.api.show("node", "node001")
        self.assertEqual((node["setupbmc"], node["_setupbmc_source"]), (True, "group"))
        self.assertEqual(
            self.api.post("/config/group/compute", env("group", "compute", {"setupbmc": ""}))[0],
            204,
        )
        self.assertIs(self.api.show("group", "compute")["bmcsetup"], False)

    def test_no_members_relation(self) -> None:
        """A kind whose entry declares no members relation answers 404."""
        self.assertIsNone(KINDS["user"].members)
        self.assertRaises(NotFound, self.api.store.members, "user", "someone")
        self.assertRaises(NotFound, self.api.store.members, "cluster", "cluster")

    def test_every_kind_declares_its_relations(self) -> None:
        """Members relations name kinds and fields that exist."""
        for kind in KINDS.values():
            relation = kind.members
            if relation is None or relation.how != "refers":
                continue
            member = KINDS[relation.kind or ""]
            f = member.field(relation.field or "")
            assert f is not None, (kind.name, relation)
            self.assertEqual(f.ref, kind.name)


class BooleanTests(unittest.TestCase):
    """One reading of a boolean."""

    def test_words(self) -> None:
        for text in ("true", "Yes", " y ", "ON", "1", True, 1):
            self.assertIs(parse_bool(text), True, text)
        for text in ("false", "No", "n", "off", "0", False, 0):
            self.assertIs(parse_bool(text), False, text)
        for text in ("maybe", 2, None, "", [], 0.5):
            self.assertIsNone(parse_bool(text), text)

    def test_ini_and_journal_use_it(self) -> None:
        """The ini file and the journal accept the same words as the API."""
        self.assertIs(config.parse_bool("On", "where"), True)
        self.assertRaises(ConfigError, config.parse_bool, "maybe", "where")
        row = _journal_row({"function": "f", "sendfor": "c", "masteronly": "yes"}, 0, 1)
        self.assertEqual(row[4], "1")
        self.assertRaises(
            Invalid, _journal_row, {"function": "f", "sendfor": "c", "masteronly": "maybe"}, 0, 1
        )

    def test_written_once(self) -> None:
        """No module but model/fields.py spells the boolean words as a set."""
        words = {"true", "false", "yes", "no"}
        root = Path(luna2d.__file__).parent
        offenders = []
        for path in sorted(root.rglob("*.py")):
            if path.name == "fields.py" and path.parent.name == "model":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                    values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                    if len(values & words) >= 2:
                        offenders.append(f"{path}:{node.lineno}")
        self.assertEqual(offenders, [])


class NoKindNamesTests(unittest.TestCase):
    """The store and the model never test a kind's name: ``kind ==
    "node"``, ``obj.kind in ("node", "group")`` and the like are gone;
    what differs between kinds is read from the table or from hooks."""

    def test_no_kind_name_comparisons(self) -> None:
        names = set(KINDS) | {"osimagetag"}
        root = Path(luna2d.__file__).parent
        offenders = []
        for folder in ("store", "model"):
            for path in sorted((root / folder).rglob("*.py")):
                offenders += kind_name_tests(path.read_text(), names, str(path.relative_to(root)))
        self.assertEqual(offenders, [])

    def test_check_finds_them(self) -> None:
        """The check sees the forms that were removed."""
        source = (
            "if obj.kind == 'node': pass\n"
            "if kind_name in ('node', 'group'): pass\n"
            "x = 'rack' != kind.name\n"
            "if obj.kind == other.kind: pass\n"
            "if key == 'node': pass\n"
        )
        self.assertEqual(len(kind_name_tests(source, set(KINDS), "x.py")), 3)


def kind_name_tests(source: str, names: set[str], where: str) -> list[str]:
    """Comparisons of something named like a kind with a kind's name."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literal = any(
            (isinstance(s, ast.Constant) and s.value in names)
            or (
                isinstance(s, (ast.Tuple, ast.List, ast.Set))
                and any(isinstance(e, ast.Constant) and e.value in names for e in s.elts)
            )
            for s in sides
        )
        about_kind = any("kind" in ast.unparse(s) for s in sides if not isinstance(s, ast.Constant))
        if literal and about_kind:
            out.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return out
