"""The generic /config endpoints of every object kind through the whole HTTP
stack (StubTreq): list, show, create, update, rename, clone, delete, the
member lists, and the error answers for bad paths, methods and bodies;
plus the field aliases and script encoding of the contract."""

from __future__ import annotations

import base64
import copy
from typing import Any

from twisted.trial import unittest

from tests.support import API, env

NODE_SOURCES = {
    "_setupbmc_source": "group",
    "_bmcsetup_source": "group",
    "_osimage_source": "group",
    "_osimagetag_source": "default",
    "_prescript_source": "default",
    "_partscript_source": "default",
    "_postscript_source": "default",
    "_kerneloptions_source": "default",
    "_netboot_source": "group",
    "_bootmenu_source": "group",
    "_localinstall_source": "group",
    "_provision_interface_source": "default",
    "_provision_method_source": "group",
    "_provision_fallback_source": "group",
    "_domain_source": "group",
    "_unmanaged_bmc_users_source": "default",
    "_override": False,
}


def node_view(name: str, host: int, **changes: Any) -> dict:
    """The full view of a node of the seeded compute group whose three
    addresses end in ``host``."""
    view = {
        "name": name,
        "group": "compute",
        "interfaces": [
            {
                "interface": "BOOTIF",
                "network": "cluster",
                "ipaddress": f"10.141.0.{host}",
                "macaddress": None,
                "options": None,
            },
            {
                "interface": "BMC",
                "network": "ipmi",
                "ipaddress": f"10.148.0.{host}",
                "macaddress": None,
                "options": None,
            },
            {
                "interface": "ib0",
                "network": "ib",
                "ipaddress": f"10.149.0.{host}",
                "macaddress": None,
                "options": None,
            },
        ],
        "macaddr": None,
        "switch": None,
        "switchport": None,
        "service": False,
        "setupbmc": True,
        "bmcsetup": "compute",
        "status": None,
        "comment": None,
        "osimage": "compute",
        "osimagetag": None,
        "prescript": "",
        "partscript": "",
        "postscript": "",
        "kerneloptions": None,
        "netboot": True,
        "bootmenu": False,
        "localinstall": False,
        "provision_interface": "BOOTIF",
        "provision_method": "torrent",
        "provision_fallback": "http",
        "domain": "cluster",
        "unmanaged_bmc_users": None,
        "tpm_uuid": None,
        "tpm_pubkey": None,
        "tpm_sha256": None,
        "vendor": None,
        "assettag": None,
        **NODE_SOURCES,
    }
    view.update(changes)
    return view


def values(view: dict) -> dict:
    """A view without its _<field>_source and _override bookkeeping."""
    return {k: v for k, v in view.items() if not k.startswith("_")}


class KindContract:
    """Tests every kind passes; subclasses describe the kind as data.

    ``existing`` is an object present after ``fixture``; ``create_name``
    with ``create_body`` makes a new one whose full view is ``created_view``;
    ``update_body`` changes ``existing`` so that its view gains
    ``update_check``; ``bad_type`` is (fields, message) for a wrongly typed
    value; ``members`` the member list of ``existing``."""

    kind: str
    rename: tuple[str, ...]
    existing: str
    create_name: str
    create_body: dict
    created_view: dict
    update_body: dict
    update_check: dict
    bad_type: tuple[dict, str]
    members: list[str]
    # What a clone must carry besides update_body (a network its own CIDR).
    clone_extra: dict[str, Any] = {}
    clone_code = 201

    def setUp(self) -> None:
        self.api = API()
        self.fixture()

    def fixture(self) -> None:
        """Objects the kind's tests need besides the seeded sample."""

    # helpers -------------------------------------------------------------------
    def path(self, name: str, suffix: str = "") -> str:
        return f"/config/{self.kind}/{name}{suffix}"

    def body(self, name: str, fields: Any) -> dict:
        return env(self.kind, name, fields)

    def view(self, name: str) -> dict:
        code, body = self.api.get(self.path(name))
        self.assertEqual(code, 200, body)
        return body["config"][self.kind][name]

    def create(self) -> None:
        code, body = self.api.post(
            self.path(self.create_name), self.body(self.create_name, self.create_body)
        )
        self.assertEqual(
            (code, body), (201, {"message": f"{self.kind} {self.create_name} created"})
        )

    def assertMissing(self, name: str) -> None:
        code, body = self.api.get(self.path(name))
        self.assertEqual((code, body), (404, {"message": f"{self.kind} {name!r} does not exist"}))

    # list and show -------------------------------------------------------------------
    def test_list(self) -> None:
        """GET /config/<kind> answers 200 with every object keyed by name in
        the full envelope, each as its own GET shows it."""
        self.create()
        code, body = self.api.get(f"/config/{self.kind}")
        self.assertEqual(code, 200)
        self.assertEqual(list(body), ["config"])
        self.assertEqual(list(body["config"]), [self.kind])
        objects = body["config"][self.kind]
        self.assertIn(self.existing, objects)
        self.assertEqual(objects[self.create_name], self.created_view)
        for name, fields in objects.items():
            self.assertEqual(fields, self.view(name))

    def test_show(self) -> None:
        """GET /config/<kind>/<name> answers 200 with the full envelope and
        every field of the object."""
        self.create()
        code, body, headers = self.api.request("GET", self.path(self.create_name))
        self.assertEqual(code, 200)
        self.assertEqual(headers[b"Content-Type"], [b"application/json"])
        self.assertEqual(body, self.body(self.create_name, self.created_view))

    def test_show_unknown(self) -> None:
        """An unknown object answers 404 with a JSON message naming it."""
        self.assertMissing("nosuchobject")

    def test_show_invalid_name(self) -> None:
        """A name that could never exist answers 404, not 400 or 500."""
        code, body = self.api.get(self.path("Not_A_Valid%20Name"))
        self.assertEqual(code, 404)
        self.assertIn("does not exist", body["message"])

    # create and update ------------------------------------------------------------------
    def test_create(self) -> None:
        """POST to a new name answers 201 with a message and creates it."""
        self.assertMissing(self.create_name)
        self.create()
        self.assertEqual(self.view(self.create_name), self.created_view)

    def test_create_invalid_name(self) -> None:
        """Creating an object under an invalid name answers 400 naming name."""
        code, body = self.api.post(self.path("Bad.Name"), self.body("Bad.Name", self.create_body))
        self.assertEqual(code, 400)
        self.assertTrue(body["message"].startswith("name: 'Bad.Name' is not a valid"), body)
        self.assertMissing("Bad.Name")

    def test_update(self) -> None:
        """POST to an existing object answers 204 with no body and the
        change shows on GET."""
        code, body, _ = self.api.request(
            "POST", self.path(self.existing), self.body(self.existing, self.update_body)
        )
        self.assertEqual((code, body), (204, None))
        view = self.view(self.existing)
        for key, value in self.update_check.items():
            self.assertEqual(view[key], value, key)

    def test_second_post_updates(self) -> None:
        """POSTing the creation body again answers 204, not 201."""
        self.create()
        code, body = self.api.post(
            self.path(self.create_name), self.body(self.create_name, self.create_body)
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.view(self.create_name), self.created_view)

    def test_post_back_get_output(self) -> None:
        """What GET answered may be POSTed back unchanged: 204, and every
        value stays the same (name, members, tags, devices, _override and
        _<field>_source are accepted and ignored)."""
        self.create()
        before = self.view(self.create_name)
        code, body = self.api.post(
            self.path(self.create_name), self.body(self.create_name, copy.deepcopy(before))
        )
        self.assertEqual((code, body), (204, None))
        after = self.view(self.create_name)
        self.assertEqual(values(after), values(before))

    # rename ------------------------------------------------------------------------
    def test_rename(self) -> None:
        """POST with the kind's new... field renames: 204, the old name is
        gone and the new one shows the same fields."""
        before = self.view(self.existing)
        code, body = self.api.post(
            self.path(self.existing), self.body(self.existing, {self.rename[0]: "renamed"})
        )
        self.assertEqual((code, body), (204, None))
        self.assertMissing(self.existing)
        after = self.view("renamed")
        before["name"] = "renamed"
        self.assertEqual(after, before)

    def test_rename_every_spelling(self) -> None:
        """Every spelling of the rename field works: the object moves to the
        new name with its fields, and back."""
        before = self.view(self.existing)
        for spelling in self.rename:
            code, body = self.api.post(
                self.path(self.existing), self.body(self.existing, {spelling: "other-name"})
            )
            self.assertEqual((code, body), (204, None), spelling)
            self.assertMissing(self.existing)
            self.assertEqual(self.view("other-name"), dict(before, name="other-name"), spelling)
            code, body = self.api.post(
                self.path("other-name"), self.body("other-name", {spelling: self.existing})
            )
            self.assertEqual((code, body), (204, None), spelling)
            self.assertMissing("other-name")
        self.assertEqual(self.view(self.existing), before)

    def test_rename_with_update(self) -> None:
        """A rename and a field change in one body do both."""
        fields = dict(self.update_body)
        fields[self.rename[0]] = "renamed"
        code, _ = self.api.post(self.path(self.existing), self.body(self.existing, fields))
        self.assertEqual(code, 204)
        view = self.view("renamed")
        for key, value in self.update_check.items():
            self.assertEqual(view[key], value, key)

    def test_rename_onto_existing(self) -> None:
        """Renaming onto a name already taken answers 400 and changes nothing."""
        self.create()
        before = self.view(self.existing)
        code, body = self.api.post(
            self.path(self.existing), self.body(self.existing, {self.rename[0]: self.create_name})
        )
        self.assertEqual(
            (code, body), (400, {"message": f"{self.kind} {self.create_name!r} already exists"})
        )
        self.assertEqual(self.view(self.existing), before)
        self.assertEqual(self.view(self.create_name), self.created_view)

    def test_rename_invalid(self) -> None:
        """An invalid new name answers 400 naming the new... field."""
        code, body = self.api.post(
            self.path(self.existing), self.body(self.existing, {self.rename[0]: "Bad Name"})
        )
        self.assertEqual(code, 400)
        self.assertTrue(
            body["message"].startswith(f"{self.rename[0]}: 'Bad Name' is not a valid"), body
        )

    def test_name_field_must_match(self) -> None:
        """A name field other than the path's answers 400 pointing at new..."""
        code, body = self.api.post(
            self.path(self.existing), self.body(self.existing, {"name": "something"})
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": f"name: 'something' differs from {self.existing!r} in "
                    f"the path; use {self.rename[0]} to rename"
                },
            ),
        )

    # clone --------------------------------------------------------------------------
    def test_clone(self) -> None:
        """POST _clone with the new... field answers 201 with a message; the
        copy exists beside the original."""
        code, body = self.api.post(
            self.path(self.existing, "/_clone"), self.body(self.existing, {self.rename[0]: "copy"})
        )
        self.assertEqual(
            (code, body), (201, {"message": f"{self.kind} {self.existing} cloned as copy"})
        )
        self.view(self.existing)
        copied = self.view("copy")
        self.assertEqual(copied["name"], "copy")

    def test_clone_overrides(self) -> None:
        """Fields in the clone body override the copy, not the original."""
        original = self.view(self.existing)
        fields = {**self.update_body, **self.clone_extra}
        fields[self.rename[0]] = "copy"
        code, _ = self.api.post(
            self.path(self.existing, "/_clone"), self.body(self.existing, fields)
        )
        self.assertEqual(code, self.clone_code)
        copied = self.view("copy")
        for key, value in self.update_check.items():
            self.assertEqual(copied[key], value, key)
        self.assertEqual(self.view(self.existing), original)

    def test_clone_without_new_name(self) -> None:
        """_clone without the new... field answers 400 naming it."""
        code, body = self.api.post(
            self.path(self.existing, "/_clone"), self.body(self.existing, dict(self.clone_extra))
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {"message": f"{self.rename[0]}: required to clone {self.kind} {self.existing!r}"},
            ),
        )

    def test_clone_onto_existing(self) -> None:
        """Cloning onto a name already taken answers 400."""
        self.create()
        code, body = self.api.post(
            self.path(self.existing, "/_clone"),
            self.body(self.existing, {self.rename[0]: self.create_name, **self.clone_extra}),
        )
        self.assertEqual(
            (code, body), (400, {"message": f"{self.kind} {self.create_name!r} already exists"})
        )
        self.assertEqual(self.view(self.create_name), self.created_view)

    def test_clone_unknown(self) -> None:
        """Cloning an unknown object answers 404."""
        code, body = self.api.post(
            self.path("ghost", "/_clone"), self.body("ghost", {self.rename[0]: "copy"})
        )
        self.assertEqual((code, body), (404, {"message": f"{self.kind} 'ghost' does not exist"}))
        self.assertMissing("copy")

    # delete -----------------------------------------------------------------------------
    def test_delete(self) -> None:
        """GET _delete answers 204 with no body; the object is gone and a
        second delete answers 404."""
        self.create()
        code, body = self.api.get(self.path(self.create_name, "/_delete"))
        self.assertEqual((code, body), (204, None))
        self.assertMissing(self.create_name)
        code, body = self.api.get(self.path(self.create_name, "/_delete"))
        self.assertEqual(
            (code, body), (404, {"message": f"{self.kind} {self.create_name!r} does not exist"})
        )

    def test_delete_unknown(self) -> None:
        """Deleting an unknown object answers 404 JSON."""
        code, body = self.api.get(self.path("ghost", "/_delete"))
        self.assertEqual((code, body), (404, {"message": f"{self.kind} 'ghost' does not exist"}))

    def test_post_delete(self) -> None:
        """POST _delete is unsupported: 400, and the object stays."""
        code, body = self.api.post(self.path(self.existing, "/_delete"), {})
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": f"deleting is GET /config/{self.kind}/{self.existing}/"
                    "_delete; POST is not supported"
                },
            ),
        )
        self.view(self.existing)

    # members ---------------------------------------------------------------------------
    def test_members(self) -> None:
        """_list and _member both answer the members in the full envelope."""
        expected = env(self.kind, self.existing, {"members": self.members})
        for suffix in ("/_list", "/_member"):
            code, body = self.api.get(self.path(self.existing, suffix))
            self.assertEqual((suffix, code, body), (suffix, 200, expected))

    def test_members_unknown(self) -> None:
        """_member of an unknown object answers 404."""
        code, body = self.api.get(self.path("ghost", "/_member"))
        self.assertEqual((code, body), (404, {"message": f"{self.kind} 'ghost' does not exist"}))

    # bad bodies -----------------------------------------------------------------------------
    def test_unknown_field(self) -> None:
        """An unknown field answers 400 naming it; nothing changes."""
        before = self.view(self.existing)
        code, body = self.api.post(self.path(self.existing), self.body(self.existing, {"bogus": 1}))
        self.assertEqual((code, body), (400, {"message": f"bogus: unknown field for {self.kind}"}))
        self.assertEqual(self.view(self.existing), before)

    def test_wrong_type(self) -> None:
        """A value of the wrong type answers 400 naming the field."""
        before = self.view(self.existing)
        fields, text = self.bad_type
        code, body = self.api.post(self.path(self.existing), self.body(self.existing, fields))
        self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.view(self.existing), before)

    def test_wrong_type_on_create(self) -> None:
        """A wrongly typed value on create answers 400 and creates nothing."""
        fields = dict(self.create_body)
        fields.update(self.bad_type[0])
        code, body = self.api.post(self.path(self.create_name), self.body(self.create_name, fields))
        self.assertEqual((code, body), (400, {"message": self.bad_type[1]}))
        self.assertMissing(self.create_name)

    def test_body_names_another_object(self) -> None:
        """A body holding another name than the path's answers 400."""
        code, body = self.api.post(
            self.path(self.existing), self.body("different", self.update_body)
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": f"config.{self.kind}: the path names {self.existing!r} "
                    "but the body holds 'different'"
                },
            ),
        )

    def test_body_holds_two_objects(self) -> None:
        """A body with two objects answers 400."""
        body = {"config": {self.kind: {self.existing: {}, "second": {}}}}
        code, answer = self.api.post(self.path(self.existing), body)
        self.assertEqual(
            (code, answer),
            (
                400,
                {
                    "message": f"config.{self.kind}: holds more than the one object "
                    f"{self.existing!r}"
                },
            ),
        )

    def test_wrong_envelope(self) -> None:
        """Bodies without the config/<kind> envelope answer 400 saying what
        is missing."""
        cases = [
            ({self.kind: {self.existing: self.update_body}}, "the body: missing 'config'"),
            ({"config": {"other": {self.existing: {}}}}, f"config: missing {self.kind!r}"),
            (
                {"config": {self.kind: [self.existing]}},
                f"config.{self.kind}: expected a JSON object keyed by name",
            ),
            ({"config": []}, "config: expected a JSON object holding " + repr(self.kind)),
            ([1, 2], "the body: expected a JSON object holding 'config'"),
            (
                {"config": {self.kind: {self.existing: ["x"]}}},
                f"the {self.kind} {self.existing!r} must be a JSON object of fields",
            ),
        ]
        for payload, text in cases:
            code, body = self.api.post(self.path(self.existing), payload)
            self.assertEqual((code, body), (400, {"message": text}))

    def test_malformed_json(self) -> None:
        """A body that is not JSON answers 400 with a JSON message."""
        code, body, headers = self.api.request(
            "POST", self.path(self.existing), raw=b'{"config": {'
        )
        self.assertEqual(code, 400)
        self.assertEqual(headers[b"Content-Type"], [b"application/json"])
        self.assertTrue(body["message"].startswith("request body is not valid JSON"), body)

    def test_empty_body(self) -> None:
        """An empty POST body answers 400."""
        code, body, _ = self.api.request("POST", self.path(self.existing), raw=b"  ")
        self.assertEqual(
            (code, body), (400, {"message": "request body is empty; a JSON object is required"})
        )

    def test_other_methods(self) -> None:
        """PUT, DELETE and PATCH answer 405 JSON on list, object and actions;
        nothing is deleted."""
        for method in ("PUT", "DELETE", "PATCH"):
            for path in (
                f"/config/{self.kind}",
                self.path(self.existing),
                self.path(self.existing, "/_delete"),
            ):
                code, body, headers = self.api.request(method, path, self.body(self.existing, {}))
                self.assertEqual((method, path, code), (method, path, 405))
                self.assertEqual(headers[b"Content-Type"], [b"application/json"])
                self.assertEqual(body, {"message": f"method {method} is not supported on {path}"})
        self.view(self.existing)

    def test_post_on_list(self) -> None:
        """POST /config/<kind> is not a create: 400 with a message."""
        code, body = self.api.post(f"/config/{self.kind}", self.body(self.existing, {}))
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": f"POST /config/{self.kind} is not supported; "
                    f"POST to /config/{self.kind}/<name>"
                },
            ),
        )

    def test_comment_alias(self) -> None:
        """comments is accepted for comment and answered as comment."""
        code, _ = self.api.post(
            self.path(self.existing), self.body(self.existing, {"comments": "via alias"})
        )
        self.assertEqual(code, 204)
        view = self.view(self.existing)
        self.assertEqual(view["comment"], "via alias")
        self.assertNotIn("comments", view)

    def test_null_unsets(self) -> None:
        """A field set to null is unset again (comment back to null)."""
        code, _ = self.api.post(
            self.path(self.existing), self.body(self.existing, {"comment": "set"})
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.view(self.existing)["comment"], "set")
        code, _ = self.api.post(
            self.path(self.existing), self.body(self.existing, {"comment": None})
        )
        self.assertEqual(code, 204)
        self.assertIsNone(self.view(self.existing)["comment"])


class NodeTests(KindContract, unittest.TestCase):
    kind = "node"
    rename = ("newhostname", "newnodename")
    existing = "node001"
    create_name = "node009"
    create_body = {"group": "compute"}
    created_view = node_view("node009", 5)
    update_body = {"comment": "rack 3", "service": True, "switchport": "12"}
    update_check = {"comment": "rack 3", "service": True, "switchport": 12}
    bad_type = ({"netboot": "maybe"}, "netboot: expected true or false, got 'maybe'")
    members: list[str] = []

    def test_create_needs_group(self) -> None:
        """A node needs a group to be created: 400 naming group."""
        code, body = self.api.post(self.path("node009"), self.body("node009", {"comment": "x"}))
        self.assertEqual(
            (code, body), (400, {"message": "group: required to create node 'node009'"})
        )

    def test_unknown_reference(self) -> None:
        """A reference to an unknown group answers 400 naming the field."""
        code, body = self.api.post(self.path("node001"), self.body("node001", {"group": "nosuch"}))
        self.assertEqual((code, body), (400, {"message": "group: group 'nosuch' does not exist"}))

    def test_show_seeded(self) -> None:
        """The seeded node001 shows exactly its full inherited view."""
        self.assertEqual(self.view("node001"), node_view("node001", 1))

    def test_override_and_source(self) -> None:
        """A field set on the node answers _<field>_source node and _override
        true; null makes it inherit from the group again."""
        self.api.post(self.path("node001"), self.body("node001", {"netboot": False}))
        view = self.view("node001")
        self.assertEqual(
            (view["netboot"], view["_netboot_source"], view["_override"]), (False, "node", True)
        )
        self.api.post(self.path("node001"), self.body("node001", {"netboot": None}))
        view = self.view("node001")
        self.assertEqual(
            (view["netboot"], view["_netboot_source"], view["_override"]), (True, "group", False)
        )

    def test_clone_gets_fresh_addresses(self) -> None:
        """A cloned node gets fresh addresses on the same networks, no MAC,
        no status, vendor or asset tag."""
        self.api.post(
            self.path("node001"),
            self.body(
                "node001",
                {
                    "macaddr": "aa:bb:cc:dd:ee:01",
                    "status": "installer.ok",
                    "vendor": "Dell",
                    "assettag": "A1",
                },
            ),
        )
        code, _ = self.api.post(
            self.path("node001", "/_clone"), self.body("node001", {"newhostname": "node010"})
        )
        self.assertEqual(code, 201)
        self.assertEqual(self.view("node010"), node_view("node010", 5))

    def test_booleans_coerced(self) -> None:
        """Booleans accept 0/1 and yes/no strings."""
        self.api.post(self.path("node001"), self.body("node001", {"service": "yes", "bootmenu": 1}))
        view = self.view("node001")
        self.assertEqual((view["service"], view["bootmenu"]), (True, True))

    def test_macaddr_both_spellings(self) -> None:
        """macaddr (and macaddress) sets the BOOTIF interface's MAC, normalized."""
        code, _ = self.api.post(
            self.path("node001"), self.body("node001", {"macaddr": "AA-BB-CC-DD-EE-FF"})
        )
        self.assertEqual(code, 204)
        view = self.view("node001")
        self.assertEqual(view["macaddr"], "aa:bb:cc:dd:ee:ff")
        self.assertEqual(view["interfaces"][0]["macaddress"], "aa:bb:cc:dd:ee:ff")
        code, _ = self.api.post(
            self.path("node002"), self.body("node002", {"macaddress": "aa:bb:cc:dd:ee:02"})
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.view("node002")["macaddr"], "aa:bb:cc:dd:ee:02")

    def test_mac_unique(self) -> None:
        """A MAC already on another node answers 400 naming the holder."""
        self.api.post(self.path("node001"), self.body("node001", {"macaddr": "aa:bb:cc:dd:ee:ff"}))
        code, body = self.api.post(
            self.path("node002"), self.body("node002", {"macaddr": "aa:bb:cc:dd:ee:ff"})
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "macaddr.macaddress: aa:bb:cc:dd:ee:ff already belongs to "
                    "node node001 (interface BOOTIF)"
                },
            ),
        )

    def test_delete_frees_addresses(self) -> None:
        """Deleting a node frees its addresses for the next node."""
        self.assertEqual(self.api.get(self.path("node004", "/_delete")), (204, None))
        self.create()
        self.assertEqual(self.view("node009"), node_view("node009", 4))


class GroupTests(KindContract, unittest.TestCase):
    kind = "group"
    rename = ("newgroupname",)
    existing = "compute"
    create_name = "gpu"
    create_body = {
        "osimage": "compute",
        "interfaces": [{"interface": "BOOTIF", "network": "cluster"}],
    }
    created_view = {
        "name": "gpu",
        "bmcsetup": False,
        "bmcsetupname": None,
        "domain": "cluster",
        "osimage": "compute",
        "osimagetag": None,
        "partscript": "",
        "postscript": "",
        "prescript": "",
        "kerneloptions": None,
        "provision_interface": "BOOTIF",
        "netboot": True,
        "localinstall": False,
        "bootmenu": False,
        "comment": None,
        "provision_method": "torrent",
        "provision_fallback": "http",
        "unmanaged_bmc_users": None,
        "mac_reassign": False,
        "interfaces": [{"interface": "BOOTIF", "network": "cluster", "options": None}],
        "setupbmc": False,
        "_domain_source": "cluster",
        "_kerneloptions_source": "default",
        "_provision_method_source": "cluster",
        "_provision_fallback_source": "cluster",
        "_override": False,
    }
    update_body = {"comment": "GPU nodes", "bootmenu": True, "provision_method": "http"}
    update_check = {
        "comment": "GPU nodes",
        "bootmenu": True,
        "provision_method": "http",
        "_provision_method_source": "group",
    }
    bad_type = ({"bmcsetup": "sometimes"}, "bmcsetup: expected true or false, got 'sometimes'")
    members = ["node001", "node002", "node003", "node004"]

    def test_delete_in_use(self) -> None:
        """A group with members cannot be deleted: 400 naming the nodes."""
        code, body = self.api.get(self.path("compute", "/_delete"))
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "group 'compute' is still used by node node001, "
                    "node node002, node node003, node node004"
                },
            ),
        )
        self.view("compute")

    def test_rename_moves_members(self) -> None:
        """Renaming a group keeps its nodes in it under the new name."""
        code, _ = self.api.post(self.path("compute"), self.body("compute", {"newgroupname": "cpu"}))
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/node/node003")[1]["config"]["node"]["node003"]["group"], "cpu"
        )
        self.assertEqual(
            self.api.get(self.path("cpu", "/_list")),
            (200, env("group", "cpu", {"members": self.members})),
        )

    def test_bmcsetupname_and_bmcsetup_differ(self) -> None:
        """bmcsetup is the group's boolean, bmcsetupname the BMC setup's name;
        nodes see them as setupbmc and bmcsetup."""
        code, body = self.api.post(self.path("compute"), self.body("compute", {"bmcsetup": False}))
        self.assertEqual(code, 204, body)
        code, body = self.api.post(
            self.path("compute"), self.body("compute", {"bmcsetupname": "nosuch"})
        )
        self.assertEqual(
            (code, body), (400, {"message": "bmcsetupname: bmcsetup 'nosuch' does not exist"})
        )
        node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
        self.assertEqual((node["setupbmc"], node["bmcsetup"]), (False, "compute"))

    def test_clone_has_no_members(self) -> None:
        """A cloned group copies the interfaces, not the members."""
        self.api.post(
            self.path("compute", "/_clone"), self.body("compute", {"newgroupname": "copy"})
        )
        self.assertEqual(
            self.api.get(self.path("copy", "/_member")),
            (200, env("group", "copy", {"members": []})),
        )
        self.assertEqual(self.view("copy")["interfaces"], self.view("compute")["interfaces"])


class NetworkTests(KindContract, unittest.TestCase):
    kind = "network"
    rename = ("newnetname", "newnetworkname")
    existing = "cluster"
    # Two networks may not share a CIDR (issue 10).
    clone_extra = {"network": "10.142.0.0/16"}
    create_name = "storage"
    create_body = {"network": "10.160.0.0/16", "gateway": "10.160.255.254"}
    created_view = {
        "name": "storage",
        "network": "10.160.0.0/16",
        "gateway": "10.160.255.254",
        "ns_hostname": None,
        "nameserver_ip": None,
        "ntp_server": "10.141.255.254",
        "comment": None,
        "dhcp": False,
        "dhcp_range_begin": None,
        "dhcp_range_end": None,
        "gateway_metric": None,
        "zone": None,
        "type": None,
        "shared": None,
        "non_authoritative": None,
        "_ntp_server_source": "cluster",
        "_override": False,
    }
    update_body = {"ntp_server": "10.141.255.250", "ns_hostname": "ns.cluster"}
    update_check = {
        "ntp_server": "10.141.255.250",
        "_ntp_server_source": "network",
        "_override": True,
        "ns_hostname": "ns.cluster",
    }
    bad_type = ({"network": "banana"}, "network: 'banana' is not a network such as 10.141.0.0/16")
    members = ["controller", "node001", "node002", "node003", "node004"]

    def test_members(self) -> None:
        """_member answers the devices with an address on the network (not
        the group templates); _list is the spec's list of taken addresses
        (tests.test_api_network)."""
        code, body = self.api.get(self.path("cluster", "/_member"))
        self.assertEqual(code, 200)
        self.assertEqual(body["config"]["network"]["cluster"]["members"], self.members)
        code, body = self.api.get(self.path("cluster", "/_list"))
        self.assertEqual(code, 200)
        self.assertEqual(
            [t["device"] for t in body["config"]["network"]["cluster"]["taken"]],
            ["node001", "node002", "node003", "node004", "controller"],
        )

    def test_clone(self) -> None:
        """POST _clone with newnetname and its own CIDR answers 201."""
        code, body = self.api.post(
            self.path("cluster", "/_clone"),
            self.body(
                "cluster",
                {
                    "newnetname": "copy",
                    "network": "10.142.0.0/16",
                    "gateway": None,
                    "nameserver_ip": None,
                    "dhcp_range_begin": None,
                    "dhcp_range_end": None,
                },
            ),
        )
        self.assertEqual((code, body), (201, {"message": "network cluster cloned as copy"}))
        view = self.view("copy")
        self.assertEqual((view["network"], view["dhcp"]), ("10.142.0.0/16", True))

    def test_clone_has_no_members(self) -> None:
        """A cloned network holds no devices."""
        code, _ = self.api.post(
            self.path("ipmi", "/_clone"),
            self.body("ipmi", {"newnetname": "copy", "network": "10.150.0.0/16"}),
        )
        self.assertEqual(code, 201)
        self.assertEqual(
            self.api.get(self.path("copy", "/_member")),
            (200, env("network", "copy", {"members": [], "taken": []})),
        )

    def test_create_needs_network(self) -> None:
        """A network needs its CIDR to be created."""
        code, body = self.api.post(self.path("empty"), self.body("empty", {"comment": "x"}))
        self.assertEqual(
            (code, body), (400, {"message": "network: required to create network 'empty'"})
        )

    def test_gateway_outside(self) -> None:
        """A gateway outside the network answers 400 naming gateway."""
        code, body = self.api.post(
            self.path("storage"),
            self.body("storage", {"network": "10.160.0.0/16", "gateway": "10.1.0.1"}),
        )
        self.assertEqual(
            (code, body), (400, {"message": "gateway: 10.1.0.1 is not inside 10.160.0.0/16"})
        )
        self.assertMissing("storage")

    def test_delete_in_use(self) -> None:
        """A network with interfaces on it cannot be deleted: 400 naming
        the users."""
        code, body = self.api.get(self.path("ib", "/_delete"))
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "network 'ib' is still used by node node001 (interface "
                    "ib0), node node002 (interface ib0), node node003 "
                    "(interface ib0), node node004 (interface ib0), group "
                    "compute (interface ib0)"
                },
            ),
        )
        self.view("ib")

    def test_delete_in_use_by_device(self) -> None:
        """An other device's address keeps its network from being deleted."""
        self.create()
        self.api.post("/config/otherdev/pdu01", env("otherdev", "pdu01", {"network": "storage"}))
        code, body = self.api.get(self.path("storage", "/_delete"))
        self.assertEqual(
            (code, body), (400, {"message": "network 'storage' is still used by otherdev pdu01"})
        )

    def test_rename_keeps_interfaces(self) -> None:
        """Renaming a network keeps every interface on it, under the new name."""
        code, _ = self.api.post(
            self.path("cluster"), self.body("cluster", {"newnetname": "clusternet"})
        )
        self.assertEqual(code, 204)
        node = self.api.get("/config/node/node002")[1]["config"]["node"]["node002"]
        self.assertEqual(
            node["interfaces"][0],
            {
                "interface": "BOOTIF",
                "network": "clusternet",
                "ipaddress": "10.141.0.2",
                "macaddress": None,
                "options": None,
            },
        )
        group = self.api.get("/config/group/compute")[1]["config"]["group"]["compute"]
        self.assertEqual(group["interfaces"][0]["network"], "clusternet")

    def test_aliases(self) -> None:
        """dhcp_enable, dhcp_begin, dhcp_end and ns_ip are accepted and
        answered as dhcp, dhcp_range_begin, dhcp_range_end, nameserver_ip."""
        code, _ = self.api.post(
            self.path("storage"),
            self.body(
                "storage",
                {
                    "network": "10.160.0.0/16",
                    "dhcp_enable": True,
                    "dhcp_begin": "10.160.0.100",
                    "dhcp_end": "10.160.0.199",
                    "ns_ip": "10.160.255.253",
                },
            ),
        )
        self.assertEqual(code, 201)
        view = self.view("storage")
        self.assertEqual(
            (view["dhcp"], view["dhcp_range_begin"], view["dhcp_range_end"], view["nameserver_ip"]),
            (True, "10.160.0.100", "10.160.0.199", "10.160.255.253"),
        )
        for alias in ("dhcp_enable", "dhcp_begin", "dhcp_end", "ns_ip"):
            self.assertNotIn(alias, view)

    def test_canonical_spelling_wins(self) -> None:
        """When both spellings are given the first (canonical) one wins,
        whatever their order in the body."""
        raw = (
            b'{"config": {"network": {"cluster": {"ns_hostname": "a", "ns_ip": "10.141.255.250", '
            b'"nameserver_ip": "10.141.255.251"}}}}'
        )
        code, _, _ = self.api.request("POST", self.path("cluster"), raw=raw)
        self.assertEqual(code, 204)
        self.assertEqual(self.view("cluster")["nameserver_ip"], "10.141.255.251")
        raw = (
            b'{"config": {"network": {"cluster": {"nameserver_ip": "10.141.255.249", '
            b'"ns_ip": "10.141.255.248"}}}}'
        )
        code, _, _ = self.api.request("POST", self.path("cluster"), raw=raw)
        self.assertEqual(code, 204)
        self.assertEqual(self.view("cluster")["nameserver_ip"], "10.141.255.249")


class OsimageTests(KindContract, unittest.TestCase):
    kind = "osimage"
    rename = ("newosimage", "newosimagename")
    existing = "compute"
    create_name = "gpuimage"
    create_body = {
        "path": "/trinity/images/gpu",
        "kernelversion": "5.14.0",
        "grab_filesystems": ["/", "/boot"],
    }
    created_view = {
        "name": "gpuimage",
        "kernelversion": "5.14.0",
        "kernelmodules": None,
        "kerneloptions": None,
        "dracutmodules": None,
        "grab_exclude": None,
        "grab_filesystems": "/,/boot",
        "kernelfile": None,
        "initrdfile": None,
        "imagefile": None,
        "torrent": None,
        "path": "/trinity/images/gpu",
        "distribution": "redhat",
        "osrelease": None,
        "comment": None,
        "tags": "",
    }
    update_body = {"kerneloptions": "mitigations=off", "distribution": "ubuntu"}
    update_check = {"kerneloptions": "mitigations=off", "distribution": "ubuntu"}
    bad_type = ({"grab_filesystems": 5}, "grab_filesystems: expected a list of strings, got 5")
    members = ["node001", "node002", "node003", "node004"]
    # Cloning copies the files with issue 11; until then the record only,
    # as a /config request the CLI polls (tests/clients/test_cli_gaps.py).
    clone_extra = {"nocopy": True}
    clone_code = 200

    def test_clone(self) -> None:
        """An osimage clone with nocopy answers 200 with a message and a
        request_id; the copy exists beside the original."""
        code, body = self.api.post(
            self.path("compute", "/_clone"),
            self.body("compute", {"newosimage": "copy", "nocopy": True}),
        )
        self.assertEqual((code, body["message"]), (200, "osimage compute cloned as copy"))
        self.assertIsInstance(body["request_id"], str)
        self.view("compute")
        self.assertEqual(self.view("copy")["name"], "copy")

    def test_delete_in_use(self) -> None:
        """An osimage a group uses cannot be deleted: 400 naming the group."""
        code, body = self.api.get(self.path("compute", "/_delete"))
        self.assertEqual(
            (code, body), (400, {"message": "osimage 'compute' is still used by group compute"})
        )

    def test_members_follow_node_override(self) -> None:
        """A node setting another osimage leaves compute's members."""
        self.create()
        self.api.post("/config/node/node002", env("node", "node002", {"osimage": "gpuimage"}))
        self.assertEqual(
            self.api.get(self.path("gpuimage", "/_list")),
            (200, env("osimage", "gpuimage", {"members": ["node002"]})),
        )
        self.assertEqual(
            self.api.get(self.path("compute", "/_list")),
            (200, env("osimage", "compute", {"members": ["node001", "node003", "node004"]})),
        )

    def test_rename_keeps_users(self) -> None:
        """Renaming an osimage keeps the group (and so its nodes) on it."""
        code, _ = self.api.post(
            self.path("compute"), self.body("compute", {"newosimage": "rocky9"})
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/group/compute")[1]["config"]["group"]["compute"]["osimage"],
            "rocky9",
        )
        self.assertEqual(
            self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]["osimage"],
            "rocky9",
        )

    def test_aliases(self) -> None:
        """kernver, kernmodules, kernopts, grab_exclude_list and tarball are
        accepted and answered with the first spelling."""
        code, _ = self.api.post(
            self.path("compute"),
            self.body(
                "compute",
                {
                    "kernver": "4.18.0",
                    "kernmodules": "ipmi_si",
                    "kernopts": "quiet",
                    "grab_exclude_list": ["/proc"],
                    "tarball": "abc-uuid",
                },
            ),
        )
        self.assertEqual(code, 204)
        view = self.view("compute")
        self.assertEqual(
            (
                view["kernelversion"],
                view["kernelmodules"],
                view["kerneloptions"],
                view["grab_exclude"],
                view["imagefile"],
            ),
            ("4.18.0", "ipmi_si", "quiet", "/proc", "abc-uuid"),
        )
        for alias in ("kernver", "kernmodules", "kernopts", "grab_exclude_list", "tarball"):
            self.assertNotIn(alias, view)

    def test_list_accepts_comma_string(self) -> None:
        """A list field accepts a comma-separated string."""
        self.api.post(
            self.path("compute"), self.body("compute", {"grab_filesystems": "/, /boot,/var"})
        )
        self.assertEqual(self.view("compute")["grab_filesystems"], "/,/boot,/var")


class BmcsetupTests(KindContract, unittest.TestCase):
    kind = "bmcsetup"
    rename = ("newbmcname", "newbmcsetupname")
    existing = "compute"
    create_name = "dell"
    create_body = {"username": "root", "password": "calvin", "userid": 2, "comment": "Default DELL"}
    created_view = {
        "name": "dell",
        "mgmtchannel": 1,
        "netchannel": 1,
        "password": "calvin",
        "username": "root",
        "userid": 2,
        "comment": "Default DELL",
        "unmanaged_bmc_users": "skip",
    }
    update_body = {"userid": "4", "unmanaged_bmc_users": "disable"}
    update_check = {"userid": 4, "unmanaged_bmc_users": "disable"}
    bad_type = ({"userid": "abc"}, "userid: expected an integer, got 'abc'")
    members = ["node001", "node002", "node003", "node004"]

    def test_delete_in_use(self) -> None:
        """A BMC setup a group names cannot be deleted: 400 naming the group."""
        code, body = self.api.get(self.path("compute", "/_delete"))
        self.assertEqual(
            (code, body), (400, {"message": "bmcsetup 'compute' is still used by group compute"})
        )

    def test_out_of_range(self) -> None:
        """An integer out of range answers 400 naming the field."""
        code, body = self.api.post(self.path("compute"), self.body("compute", {"userid": 99}))
        self.assertEqual((code, body), (400, {"message": "userid: must be at most 63"}))

    def test_choice(self) -> None:
        """unmanaged_bmc_users takes skip, disable or delete only."""
        code, body = self.api.post(
            self.path("compute"), self.body("compute", {"unmanaged_bmc_users": "keep"})
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "unmanaged_bmc_users: must be one of skip, disable, "
                    "delete, got 'keep'"
                },
            ),
        )

    def test_clone_copies_password(self) -> None:
        """A cloned BMC setup keeps the password."""
        self.create()
        self.api.post(self.path("dell", "/_clone"), self.body("dell", {"newbmcname": "dell2"}))
        self.assertEqual(self.view("dell2"), dict(self.created_view, name="dell2"))


class SwitchTests(KindContract, unittest.TestCase):
    kind = "switch"
    rename = ("newswitchname",)
    existing = "sw01"
    create_name = "sw02"
    create_body = {
        "network": "ipmi",
        "ipaddress": "10.148.253.1",
        "read": "public",
        "rw": "private",
        "comment": "Bootswitch",
    }
    created_view = {
        "name": "sw02",
        "network": "ipmi",
        "ipaddress": "10.148.253.1",
        "oid": ".1.3.6.1.2.1.17.7.1.2.2.1.2",
        "read": "public",
        "rw": "private",
        "vendor": None,
        "macaddress": None,
        "comment": "Bootswitch",
        "uplinkports": None,
    }
    update_body = {"oid": ".1.3.6.1.2.1.17.7.1.2.2.1.3", "vendor": "Arista"}
    update_check = {"oid": ".1.3.6.1.2.1.17.7.1.2.2.1.3", "vendor": "Arista"}
    bad_type = ({"oid": []}, "oid: expected a string, got []")
    members = ["node001"]

    def fixture(self) -> None:
        code, _ = self.api.post(
            "/config/switch/sw01",
            env("switch", "sw01", {"network": "cluster", "ipaddress": "10.141.253.1"}),
        )
        self.assertEqual(code, 201)
        code, _ = self.api.post(
            "/config/node/node001", env("node", "node001", {"switch": "sw01", "switchport": "7"})
        )
        self.assertEqual(code, 204)

    def test_delete_in_use(self) -> None:
        """A switch nodes are on cannot be deleted: 400 naming the node."""
        code, body = self.api.get(self.path("sw01", "/_delete"))
        self.assertEqual(
            (code, body), (400, {"message": "switch 'sw01' is still used by node node001"})
        )

    def test_aliases(self) -> None:
        """readcommunity and rwcommunity are accepted, answered as read, rw."""
        code, _ = self.api.post(
            self.path("sw01"), self.body("sw01", {"readcommunity": "r0", "rwcommunity": "w0"})
        )
        self.assertEqual(code, 204)
        view = self.view("sw01")
        self.assertEqual((view["read"], view["rw"]), ("r0", "w0"))
        self.assertNotIn("readcommunity", view)
        self.assertNotIn("rwcommunity", view)

    def test_clone_gets_fresh_address(self) -> None:
        """A cloned switch gets a fresh address on the same network."""
        self.api.post(self.path("sw01", "/_clone"), self.body("sw01", {"newswitchname": "sw03"}))
        view = self.view("sw03")
        self.assertEqual((view["network"], view["ipaddress"]), ("cluster", "10.141.0.5"))

    def test_address_taken(self) -> None:
        """An address held by a node answers 400 naming the holder."""
        code, body = self.api.post(
            self.path("sw02"), self.body("sw02", {"ipaddress": "10.141.0.2"})
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "ipaddress: 10.141.0.2 is already taken by node node002 "
                    "(interface BOOTIF)"
                },
            ),
        )


class OtherdevTests(KindContract, unittest.TestCase):
    kind = "otherdev"
    rename = ("newotherdevname", "newotherdevicename")
    existing = "pdu01"
    create_name = "ups01"
    create_body = {
        "network": "ipmi",
        "ipaddress": "10.148.250.1",
        "comments": "UPS for the head node",
    }
    created_view = {
        "name": "ups01",
        "network": "ipmi",
        "ipaddress": "10.148.250.1",
        "vendor": None,
        "macaddress": None,
        "comment": "UPS for the head node",
    }
    update_body = {"vendor": "APC", "ipaddress": "10.141.250.2"}
    update_check = {"vendor": "APC", "ipaddress": "10.141.250.2", "network": "cluster"}
    bad_type = ({"ipaddress": "nonsense"}, "ipaddress: 'nonsense' is not an IP address")
    members: list[str] = []

    def fixture(self) -> None:
        code, _ = self.api.post(
            "/config/otherdev/pdu01",
            env("otherdev", "pdu01", {"network": "cluster", "ipaddress": "10.141.250.1"}),
        )
        self.assertEqual(code, 201)

    def test_clone_overrides(self) -> None:
        """A clone given its own address takes it; the original keeps its own."""
        code, _ = self.api.post(
            self.path("pdu01", "/_clone"),
            self.body(
                "pdu01", {"newotherdevname": "pdu02", "ipaddress": "10.141.250.2", "vendor": "APC"}
            ),
        )
        self.assertEqual(code, 201)
        self.assertEqual(
            self.view("pdu02"),
            {
                "name": "pdu02",
                "network": "cluster",
                "ipaddress": "10.141.250.2",
                "vendor": "APC",
                "macaddress": None,
                "comment": None,
            },
        )
        self.assertEqual(self.view("pdu01")["ipaddress"], "10.141.250.1")

    def test_address_outside_network(self) -> None:
        """An address outside the named network answers 400."""
        code, body = self.api.post(
            self.path("pdu01"), self.body("pdu01", {"network": "ib", "ipaddress": "10.141.250.9"})
        )
        self.assertEqual(
            (code, body),
            (400, {"message": "ipaddress: 10.141.250.9 is not inside network ib (10.149.0.0/16)"}),
        )


class RackTests(KindContract, unittest.TestCase):
    kind = "rack"
    rename = ("newrackname",)
    existing = "rack01"
    create_name = "rack02"
    create_body = {"size": 52, "order": "descending", "room": "Basement", "site": "Amsterdam"}
    created_view = {
        "name": "rack02",
        "size": 52,
        "order": "descending",
        "room": "Basement",
        "site": "Amsterdam",
        "comment": None,
        "devices": [],
    }
    update_body = {"room": "1st floor", "size": 48}
    update_check = {"room": "1st floor", "size": 48}
    bad_type = ({"size": "big"}, "size: expected an integer, got 'big'")
    members = ["node001"]

    def fixture(self) -> None:
        code, _ = self.api.post(
            "/config/rack/rack01",
            env(
                "rack",
                "rack01",
                {"size": 42, "devices": [{"name": "node001", "type": "node", "position": 3}]},
            ),
        )
        self.assertEqual(code, 201)

    def test_inventory_name_reserved(self) -> None:
        """A rack can neither be renamed nor cloned to inventory (400)."""
        for suffix in ("", "/_clone"):
            code, body = self.api.post(
                self.path("rack01", suffix), self.body("rack01", {"newrackname": "inventory"})
            )
            self.assertEqual(
                (code, body), (400, {"message": "newrackname: 'inventory' is reserved"})
            )
        self.view("rack01")
        code, body = self.api.get("/config/rack")
        self.assertEqual(sorted(body["config"]["rack"]), ["rack01"])

    def test_delete_unplaces_devices(self) -> None:
        """Deleting a rack is allowed and takes its devices out of it."""
        code, body = self.api.get(self.path("rack01", "/_delete"))
        self.assertEqual((code, body), (204, None))
        inventory = self.api.get("/config/rack/inventory")[1]["config"]["rack"]["inventory"]
        node = next(d for d in inventory if d["name"] == "node001")
        self.assertEqual((node["rack"], node["position"]), (None, None))

    def test_rename_keeps_devices(self) -> None:
        """A renamed rack keeps its devices."""
        self.api.post(self.path("rack01"), self.body("rack01", {"newrackname": "r-a"}))
        self.assertEqual([d["name"] for d in self.view("r-a")["devices"]], ["node001"])


class UnknownPathTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def test_unknown_kind(self) -> None:
        """An unknown kind answers 404 JSON on list, show, POST and actions."""
        expected = {"message": "there is no object kind 'bogus' under /config"}
        for method, path in (
            ("GET", "/config/bogus"),
            ("GET", "/config/bogus/x"),
            ("POST", "/config/bogus/x"),
            ("GET", "/config/bogus/x/_delete"),
            ("GET", "/config/bogus/x/_list"),
            ("POST", "/config/bogus/x/_clone"),
        ):
            code, body, headers = self.api.request(method, path, env("bogus", "x", {}))
            self.assertEqual((method, path, code, body), (method, path, 404, expected))
            self.assertEqual(headers[b"Content-Type"], [b"application/json"])

    def test_unknown_paths(self) -> None:
        """Paths no endpoint serves answer 404 JSON naming the path."""
        for path in (
            "/config/node/node001/bogus",
            "/config/node/node001/interfaces/BOOTIF/x/y",
            "/nothing",
            "/config/group/compute/_list/extra",
        ):
            code, body = self.api.get(path)
            self.assertEqual(
                (path, code, body), (path, 404, {"message": f"no such endpoint: {path}"})
            )

    def test_config_root(self) -> None:
        """/config itself is no endpoint: 404 JSON."""
        code, body = self.api.get("/config")
        self.assertEqual(code, 404)
        self.assertIsInstance(body["message"], str)

    def test_unknown_path_other_method(self) -> None:
        """A method other than GET/POST on an unknown path answers 405 JSON."""
        code, body = self.api.request("DELETE", "/config/x/y/z/w/v")[:2]
        self.assertEqual((code, body), (405, {"message": "method DELETE is not supported"}))

    def test_list_only_posts(self) -> None:
        """POST /config/osimage and POST /config/secrets are list-only: 400."""
        code, body = self.api.post("/config/osimage", {"config": {"osimage": {}}})
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "POST /config/osimage is not supported; "
                    "POST to /config/osimage/<name>"
                },
            ),
        )
        code, body = self.api.post("/config/secrets", {"config": {"secrets": {}}})
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "POST /config/secrets is not supported; POST to "
                    "/config/secrets/{node,group}/<name>"
                },
            ),
        )

    def test_non_utf8_path(self) -> None:
        """A path that is not UTF-8 answers 400 JSON, not 500."""
        code, body = self.api.get("/config/node/%ff%fe")
        self.assertEqual((code, body), (400, {"message": "the request path is not valid UTF-8"}))


class ScriptTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def group(self) -> dict:
        return self.api.show("group", "compute")

    def test_plain_text_answered_base64(self) -> None:
        """A script POSTed as plain text is answered base64-encoded."""
        script = "#!/bin/bash\nexit 0\n"
        code, _ = self.api.post(
            "/config/group/compute", env("group", "compute", {"prescript": script})
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.group()["prescript"], base64.b64encode(script.encode()).decode())

    def test_base64_kept(self) -> None:
        """A script POSTed base64-encoded (the spec's examples) comes back
        the same, and nodes inherit it."""
        encoded = "IyEvYmluL2Jhc2gKZXhpdCAw"
        for field in ("prescript", "partscript", "postscript"):
            code, _ = self.api.post(
                "/config/group/compute", env("group", "compute", {field: encoded})
            )
            self.assertEqual(code, 204)
            self.assertEqual(self.group()[field], encoded)
            node = self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]
            self.assertEqual((node[field], node[f"_{field}_source"]), (encoded, "group"))

    def test_node_script(self) -> None:
        """A node's own script overrides the group's and is base64 too."""
        self.api.post(
            "/config/group/compute", env("group", "compute", {"postscript": "echo group"})
        )
        code, _ = self.api.post(
            "/config/node/node002", env("node", "node002", {"postscript": "echo node"})
        )
        self.assertEqual(code, 204)
        node = self.api.get("/config/node/node002")[1]["config"]["node"]["node002"]
        self.assertEqual(
            (node["postscript"], node["_postscript_source"], node["_override"]),
            (base64.b64encode(b"echo node").decode(), "node", True),
        )

    def test_post_back_is_stable(self) -> None:
        """POSTing back the base64 a GET answered leaves the script unchanged."""
        self.api.post(
            "/config/group/compute", env("group", "compute", {"partscript": "parted /dev/sda\n"})
        )
        answered = self.group()["partscript"]
        self.api.post("/config/group/compute", env("group", "compute", {"partscript": answered}))
        self.assertEqual(self.group()["partscript"], answered)
        self.assertEqual(base64.b64decode(answered), b"parted /dev/sda\n")

    def test_script_wrong_type(self) -> None:
        """A script that is not a string answers 400 naming the field."""
        code, body = self.api.post(
            "/config/group/compute", env("group", "compute", {"prescript": ["x"]})
        )
        self.assertEqual(
            (code, body), (400, {"message": "prescript: expected a string, got ['x']"})
        )
