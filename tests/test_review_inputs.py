"""Hostile input that used to reach a 500 or be stored as nonsense, through the
whole HTTP stack (StubTreq): a rack device type that is not a string, JSON
constants Python's parser takes but JSON does not have, a /files name too
long for the file system, and provision_interface values that are not
interface names (the install script puts that name into a shell line).
Also: a schema step that fails half-way leaves no table behind."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from treq.testing import StubTreq
from twisted.trial import unittest

from luna2d.resources.root import build
from luna2d.store import db
from tests.support import ADMIN, API, PASSWORD, hash_inline, result_of


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(self.api.store.pool.close)

    def assertBad(self, code_body: tuple, *words: str) -> None:
        code, body = code_body
        self.assertEqual(code, 400, body)
        for word in words:
            self.assertIn(word, body["message"])


class RackTypeTests(Base):
    def test_device_type_of_the_wrong_json_type(self) -> None:
        """A device ``type`` that is a list, an object or a number is 400
        naming the field, in a rack's devices and in the inventory; nothing
        is placed."""
        self.assertEqual(self.api.post("/config/rack/r1", {"config": {"rack": {"r1": {}}}})[0], 201)
        for dtype in (["node"], {"node": 1}, 1, None):
            body = {
                "config": {
                    "rack": {"r1": {"devices": [{"name": "node001", "type": dtype, "position": 1}]}}
                }
            }
            self.assertBad(self.api.post("/config/rack/r1", body), "devices[0].type")
            inventory = {
                "config": {
                    "rack": {"inventory": [{"name": "node001", "type": dtype, "vendor": "x"}]}
                }
            }
            self.assertBad(self.api.post("/config/rack/inventory", inventory), "inventory[0].type")
        self.assertEqual(self.api.get("/config/rack/r1")[1]["config"]["rack"]["r1"]["devices"], [])
        entry = next(
            d
            for d in self.api.get("/config/rack/inventory")[1]["config"]["rack"]["inventory"]
            if d["name"] == "node001"
        )
        self.assertEqual((entry["rack"], entry["vendor"]), (None, None))

    def test_device_type_string_still_works(self) -> None:
        """The string types keep working (the default is node)."""
        body = {
            "config": {
                "rack": {"r1": {"devices": [{"name": "node001", "type": "node", "position": 3}]}}
            }
        }
        self.assertEqual(self.api.post("/config/rack/r1", body)[0], 201)
        devices = self.api.get("/config/rack/r1")[1]["config"]["rack"]["r1"]["devices"]
        self.assertEqual([(d["name"], d["position"]) for d in devices], [("node001", 3)])


class LoginBodyTests(Base):
    def setUp(self) -> None:
        hash_inline(self)  # every login, the ini admin's too, is checked by scrypt in a thread
        super().setUp()

    def test_login_body_capped_before_any_token(self) -> None:
        """POST /token, the one body read without a token, takes at most 64
        KiB (a login is a few hundred bytes): a larger one is 400 before it
        is parsed; a normal login still gets its token."""
        big = b'{"username": "luna", "password": "' + b"x" * (64 * 1024) + b'"}'
        code, body, _ = self.api.request("POST", "/token", raw=big, token=None)
        self.assertEqual((code, body), (400, {"message": "request body is larger than 64 KiB"}))
        code, body, _ = self.api.request(
            "POST", "/token", {"username": ADMIN, "password": PASSWORD}, token=None
        )
        self.assertEqual(code, 201, body)
        self.assertIn("token", body)


class StrictJSONTests(Base):
    def test_non_json_constants_are_400(self) -> None:
        """NaN, Infinity, -Infinity and a number beyond a float's range are
        not JSON values: 400, and nothing is stored (they used to become the
        text "nan" or "inf")."""
        before = self.api.get("/config/cluster")[1]
        for raw in (
            b'{"config": {"cluster": {"ntp_server": NaN}}}',
            b'{"config": {"cluster": {"ntp_server": Infinity}}}',
            b'{"config": {"cluster": {"ntp_server": -Infinity}}}',
            b'{"config": {"cluster": {"ntp_server": 1e999}}}',
            b'{"config": {"node": {"node001": {"comment": -1E400}}}}',
        ):
            path = "/config/node/node001" if b"node001" in raw else "/config/cluster"
            code, body, _ = self.api.request("POST", path, raw=raw)
            self.assertEqual(code, 400, (raw, body))
            self.assertIn("not valid JSON", body["message"])
        self.assertEqual(self.api.get("/config/cluster")[1], before)

    def test_finite_numbers_still_parse(self) -> None:
        """Ordinary floats are still JSON: a whole-number float is an integer."""
        code, _ = self.api.post(
            "/config/bmcsetup/compute", {"config": {"bmcsetup": {"compute": {"userid": 4.0}}}}
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/bmcsetup/compute")[1]["config"]["bmcsetup"]["compute"]["userid"],
            4,
        )
        code, _, _ = self.api.request(
            "POST", "/config/cluster", raw=b'{"config": {"cluster": {"ntp_server": 1.5e2}}}'
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/cluster")[1]["config"]["cluster"]["ntp_server"], "150.0"
        )


class LongFileNameTests(Base):
    def test_name_too_long_for_the_file_system(self) -> None:
        """An open iPXE binary name longer than the file system allows is
        404 JSON, not 500; so is any other long name."""
        root = Path(tempfile.mkdtemp(prefix="luna2d-files-"))
        self.addCleanup(shutil.rmtree, str(root), True)
        files, ipxe = root / "files", root / "ipxe"
        files.mkdir()
        ipxe.mkdir()
        self.api.resource = build(self.api.store, self.api.auth, ADMIN, files, ipxe=ipxe)
        self.api.treq = StubTreq(self.api.resource)
        for name in ("a" * 300 + ".efi", "b" * 300 + ".kpxe", "c" * 300, "d" * 300 + ".tar"):
            for token in (None, True):
                code, body = self.api.get(f"/files/{name}", token=token)
                if token is None and not name.endswith((".efi", ".kpxe")):
                    self.assertEqual(code, 401, name)
                    continue
                self.assertEqual(code, 404, (name, body))
                self.assertIn("does not exist", body["message"])


class ProvisionInterfaceTests(Base):
    def test_not_an_interface_name_is_400(self) -> None:
        """A provision_interface that is no interface name (spaces, quotes,
        a newline) is 400 on nodes and groups and is not stored."""
        for bad in ("a b", "eth0'; reboot #", 'x"y', "eth0\nexit", "-x", "x" * 40):
            self.assertBad(
                self.api.post(
                    "/config/node/node001",
                    {"config": {"node": {"node001": {"provision_interface": bad}}}},
                ),
                "provision_interface",
            )
            self.assertBad(
                self.api.post(
                    "/config/group/compute",
                    {"config": {"group": {"compute": {"provision_interface": bad}}}},
                ),
                "provision_interface",
            )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(node["provision_interface"], "BOOTIF")

    def test_names_set_and_empty_unsets(self) -> None:
        """An interface name is kept; "" unsets it, so the node inherits
        from its group again."""
        self.assertEqual(
            self.api.post(
                "/config/group/compute",
                {"config": {"group": {"compute": {"provision_interface": "eth1"}}}},
            )[0],
            204,
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001",
                {"config": {"node": {"node001": {"provision_interface": "ib0:1"}}}},
            )[0],
            204,
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(
            (node["provision_interface"], node["_provision_interface_source"]), ("ib0:1", "node")
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001",
                {"config": {"node": {"node001": {"provision_interface": ""}}}},
            )[0],
            204,
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(
            (node["provision_interface"], node["_provision_interface_source"]), ("eth1", "group")
        )


class DomainTests(Base):
    def test_not_a_domain_is_400(self) -> None:
        """A domain with a space (it would split the boot line's
        luna.hostname argument), a quote, an empty label, a label starting
        with '-' or over 63 characters, or a line break is 400 on nodes,
        groups and the cluster, in words, and nothing is stored."""
        before = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]["domain"]
        for bad in ("a b", "hpc'x", "a..b", "-a.b", "x" * 64, "hpc\n", ".a"):
            self.assertBad(
                self.api.post(
                    "/config/node/node001", {"config": {"node": {"node001": {"domain": bad}}}}
                ),
                "domain",
                "is not a DNS domain",
            )
            self.assertBad(
                self.api.post(
                    "/config/group/compute", {"config": {"group": {"compute": {"domain": bad}}}}
                ),
                "domain",
            )
            self.assertBad(
                self.api.post("/config/cluster", {"config": {"cluster": {"domain": bad}}}), "domain"
            )
        self.assertEqual(
            self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]["domain"], before
        )

    def test_domains_kept_and_empty_unsets(self) -> None:
        """A DNS domain (dots, digits, '-', '_', a final dot) is kept; ""
        unsets a node's, which inherits its group's again."""
        self.assertEqual(
            self.api.post(
                "/config/group/compute",
                {"config": {"group": {"compute": {"domain": "hpc.example.org"}}}},
            )[0],
            204,
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001",
                {"config": {"node": {"node001": {"domain": "rack-1.lab_a.example."}}}},
            )[0],
            204,
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual(
            (node["domain"], node["_domain_source"]), ("rack-1.lab_a.example.", "node")
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001", {"config": {"node": {"node001": {"domain": ""}}}}
            )[0],
            204,
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual((node["domain"], node["_domain_source"]), ("hpc.example.org", "group"))


class ScopedAddressTests(Base):
    def test_zone_is_refused(self) -> None:
        """An IPv6 address with a zone (fe80::1%eth0) parses in Python but is
        no cluster address: 400 for an interface and a network's gateway;
        the plain address is still taken where an IPv6 network holds it."""
        self.assertEqual(
            self.api.post(
                "/config/network/v6", {"config": {"network": {"v6": {"network": "fd00:1::/64"}}}}
            )[0],
            201,
        )
        self.assertBad(
            self.api.post(
                "/config/node/node001/interfaces",
                {
                    "config": {
                        "node": {
                            "node001": {
                                "interfaces": [
                                    {
                                        "interface": "eth6",
                                        "network": "v6",
                                        "ipaddress": "fd00:1::5%eth0",
                                    }
                                ]
                            }
                        }
                    }
                },
            ),
            "ipaddress",
            "zone",
        )
        self.assertBad(
            self.api.post(
                "/config/network/v6", {"config": {"network": {"v6": {"gateway": "fd00:1::1%eth0"}}}}
            ),
            "gateway",
            "zone",
        )
        self.assertEqual(
            self.api.post(
                "/config/node/node001/interfaces",
                {
                    "config": {
                        "node": {
                            "node001": {
                                "interfaces": [
                                    {"interface": "eth6", "network": "v6", "ipaddress": "fd00:1::5"}
                                ]
                            }
                        }
                    }
                },
            )[0],
            204,
        )


class TrailingLineBreakTests(Base):
    def test_names_with_a_trailing_line_break_are_400(self) -> None:
        """Every name rule must match the whole value: an interface name, a
        secret name, an osimage tag and a provision_interface ending in a
        line break are 400 (a regular expression's '$' alone would let
        them through), and nothing is created."""
        self.assertBad(
            self.api.post(
                "/config/node/node001/interfaces",
                {"config": {"node": {"node001": {"interfaces": [{"interface": "eth9\n"}]}}}},
            ),
            "interface",
        )
        self.assertBad(
            self.api.post(
                "/config/secrets/node/node001",
                {
                    "config": {
                        "secrets": {"node": {"node001": [{"secretname": "k\n", "content": "x"}]}}
                    }
                },
            ),
            "secretname",
        )
        self.assertBad(
            self.api.post(
                "/config/osimage/compute/tag", {"config": {"osimage": {"compute": {"tag": "t1\n"}}}}
            ),
            "tag",
        )
        self.assertBad(
            self.api.post(
                "/config/node/node001",
                {"config": {"node": {"node001": {"provision_interface": "eth0\n"}}}},
            ),
            "provision_interface",
        )
        names = [
            i["interface"]
            for i in self.api.get("/config/node/node001/interfaces")[1]["config"]["node"][
                "node001"
            ]["interfaces"]
        ]
        self.assertNotIn("eth9\n", names)
        self.assertEqual(self.api.get("/config/secrets/node/node001/k%0A")[0], 404)


class MigrationTests(unittest.TestCase):
    def test_failed_step_leaves_nothing(self) -> None:
        """A schema step whose second statement fails leaves neither the
        table its first statement made nor its version; the steps before it
        stay, and the step runs whole once it is fixed."""
        folder = Path(tempfile.mkdtemp(prefix="luna2d-migrate-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        path = folder / "luna.db"
        shipped = db.schema_files()
        latest = shipped[-1][0]
        broken = (
            latest + 1,
            "CREATE TABLE review_a (x INTEGER);\nCREATE TABLE object (y INTEGER);",
        )
        self.patch(db, "schema_files", lambda: [*shipped, broken])
        pool = db.SyncPool(path)
        self.addCleanup(pool.close)
        failure = []
        db.migrate(pool).addErrback(failure.append)
        self.assertEqual(len(failure), 1)
        failure[0].trap(sqlite3.OperationalError)

        def look(cursor: object) -> tuple:
            tables = {
                row[0]
                for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            return tables, cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

        tables, version = result_of(pool.runInteraction(look))
        self.assertNotIn("review_a", tables)
        self.assertIn("object", tables)
        self.assertEqual(version, latest)
        self.patch(
            db,
            "schema_files",
            lambda: [*shipped, (latest + 1, "CREATE TABLE review_a (x INTEGER);")],
        )
        self.assertEqual(result_of(db.migrate(pool)), latest + 1)
        tables, version = result_of(pool.runInteraction(look))
        self.assertIn("review_a", tables)
        self.assertEqual(version, latest + 1)
