"""The endpoints beyond the generic object machinery, through the whole HTTP
stack (StubTreq): secrets of nodes and groups, osimage tags, packing and
kernel changes, the osimagetag views, racks and the inventory, the journal
and the users."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from tests.support import API, env, hash_inline, load_store


def secrets_body(owner_kind: str, owner: str, items: list) -> dict:
    return {"config": {"secrets": {owner_kind: {owner: items}}}}


# A secret is answered under both ``name`` (the CLI's key) and ``secretname``
# (the spec's); a client may send either or both.
LICENSE = {
    "name": "software license",
    "secretname": "software license",
    "content": "LICENSE-TEXT",
    "path": "/etc/app/license.lic",
}
SHARED = {
    "name": "shared secret",
    "secretname": "shared secret",
    "content": "s3cr3t",
    "path": "/etc/keys.crt",
}
GROUP_KEY = {
    "name": "Proprietary key",
    "secretname": "Proprietary key",
    "content": "KEY",
    "path": "/var/lib/key.pem",
}


class SecretsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()
        code, _ = self.api.post(
            "/config/secrets/node/node001", secrets_body("node", "node001", [LICENSE, SHARED])
        )
        self.assertEqual(code, 201)
        code, _ = self.api.post(
            "/config/secrets/group/compute", secrets_body("group", "compute", [GROUP_KEY])
        )
        self.assertEqual(code, 201)

    def node_secrets(self, node: str = "node001") -> list[dict]:
        code, body = self.api.get(f"/config/secrets/node/{node}")
        self.assertEqual(code, 200)
        return body["config"]["secrets"]["node"][node]

    def test_list_all(self) -> None:
        """GET /config/secrets lists every node's and group's secrets."""
        code, body = self.api.get("/config/secrets")
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "config": {
                        "secrets": {
                            "node": {"node001": [LICENSE, SHARED]},
                            "group": {"compute": [GROUP_KEY]},
                        }
                    }
                },
            ),
        )

    def test_list_all_empty(self) -> None:
        """Without secrets the list holds empty node and group maps."""
        api = API()
        self.assertEqual(
            api.get("/config/secrets"), (200, {"config": {"secrets": {"node": {}, "group": {}}}})
        )

    def test_node_view_includes_group(self) -> None:
        """GET .../node/<n> answers the node's secrets and its group's."""
        self.assertEqual(
            self.api.get("/config/secrets/node/node001"),
            (
                200,
                {
                    "config": {
                        "secrets": {
                            "node": {"node001": [LICENSE, SHARED]},
                            "group": {"compute": [GROUP_KEY]},
                        }
                    }
                },
            ),
        )
        self.assertEqual(
            self.api.get("/config/secrets/node/node002"),
            (
                200,
                {
                    "config": {
                        "secrets": {"node": {"node002": []}, "group": {"compute": [GROUP_KEY]}}
                    }
                },
            ),
        )

    def test_group_view(self) -> None:
        """GET .../group/<g> answers the group's secrets only."""
        self.assertEqual(
            self.api.get("/config/secrets/group/compute"),
            (200, {"config": {"secrets": {"group": {"compute": [GROUP_KEY]}}}}),
        )

    def test_unknown_owner(self) -> None:
        """Unknown nodes, groups and owner kinds answer 404 JSON."""
        self.assertEqual(
            self.api.get("/config/secrets/node/ghost"),
            (404, {"message": "node 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/secrets/group/ghost"),
            (404, {"message": "group 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/secrets/switch/sw01"),
            (404, {"message": "secrets belong to a node or a group, not to 'switch'"}),
        )
        self.assertEqual(
            self.api.post("/config/secrets/node/ghost", secrets_body("node", "ghost", [SHARED])),
            (404, {"message": "node 'ghost' does not exist"}),
        )

    def test_post_created(self) -> None:
        """POSTing a new secret answers 201 with a message."""
        item = {"name": "new one", "secretname": "new one", "content": "N", "path": "/etc/new"}
        code, body = self.api.post(
            "/config/secrets/node/node001", secrets_body("node", "node001", [item])
        )
        self.assertEqual((code, body), (201, {"message": "secrets created for node node001"}))
        self.assertEqual(self.node_secrets(), [LICENSE, SHARED, item])

    def test_post_updated(self) -> None:
        """POSTing a changed secret answers 204; unlisted secrets stay."""
        code, body = self.api.post(
            "/config/secrets/node/node001",
            secrets_body(
                "node", "node001", [{"secretname": "software license", "content": "NEW-LICENSE"}]
            ),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.node_secrets(), [dict(LICENSE, content="NEW-LICENSE"), SHARED])

    def test_post_unchanged(self) -> None:
        """POSTing secrets exactly as they are answers 204, as every update
        (``luna secrets change`` reads only 204 as success)."""
        code, body = self.api.post(
            "/config/secrets/node/node001", secrets_body("node", "node001", [LICENSE])
        )
        self.assertEqual((code, body), (204, None))
        code, body = self.api.post(
            "/config/secrets/group/compute", secrets_body("group", "compute", [GROUP_KEY])
        )
        self.assertEqual((code, body), (204, None))

    def test_post_created_wins(self) -> None:
        """A body that creates one secret and updates another answers 201."""
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            secrets_body(
                "node",
                "node001",
                [
                    {"secretname": "software license", "content": "CHANGED"},
                    {"secretname": "x", "content": "y"},
                ],
            ),
        )
        self.assertEqual(code, 201)

    def test_name_alias(self) -> None:
        """name is accepted for secretname and answered as both."""
        code, _ = self.api.post(
            "/config/secrets/group/compute",
            secrets_body(
                "group",
                "compute",
                [{"name": "Infiniband", "content": "IB", "path": "/etc/rdma/license.lic"}],
            ),
        )
        self.assertEqual(code, 201)
        self.assertEqual(
            self.api.get("/config/secrets/group/compute/Infiniband")[1],
            {
                "config": {
                    "secrets": {
                        "group": {
                            "compute": [
                                {
                                    "name": "Infiniband",
                                    "secretname": "Infiniband",
                                    "content": "IB",
                                    "path": "/etc/rdma/license.lic",
                                }
                            ]
                        }
                    }
                }
            },
        )

    def test_rename_by_newsecretname(self) -> None:
        """newsecretname renames a secret (204)."""
        code, _ = self.api.post(
            "/config/secrets/node/node001",
            secrets_body(
                "node", "node001", [{"secretname": "shared secret", "newsecretname": "shared key"}]
            ),
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.node_secrets(), [LICENSE, dict(SHARED, secretname="shared key", name="shared key")]
        )

    def test_bad_items(self) -> None:
        """Malformed secrets answer 400 naming the field; nothing changes."""
        for items, text in (
            ([], "secrets: expected a non-empty list of secrets for node node001"),
            (
                [{"secretname": "a", "path": "/x"}],
                "node001[0].content: required to create secret 'a'",
            ),
            (
                [{"secretname": "a", "content": "b", "path": "relative"}],
                "node001[0].path: 'relative' must be an absolute path",
            ),
            (
                [{"secretname": "a", "content": "b", "bogus": 1}],
                "node001[0].bogus: unknown secret field",
            ),
            ([{"content": "b"}], "node001[0].secretname: None is not a valid secret name"),
            (
                [{"secretname": "a", "content": ["b"]}],
                "node001[0].content: expected a string, got ['b']",
            ),
            (["a"], "node001[0]: expected a secret object"),
            (
                [{"secretname": "shared secret", "newsecretname": "software license"}],
                "node001[0].newsecretname: secret 'software license' already exists",
            ),
        ):
            code, body = self.api.post(
                "/config/secrets/node/node001", secrets_body("node", "node001", items)
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.node_secrets(), [LICENSE, SHARED])

    def test_wrong_envelope(self) -> None:
        """Bodies naming another owner or lacking the envelope answer 400."""
        code, body = self.api.post(
            "/config/secrets/node/node001", secrets_body("node", "node002", [SHARED])
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {"message": "config.node: the path names 'node001' but the body holds 'node002'"},
            ),
        )
        code, body = self.api.post(
            "/config/secrets/node/node001", {"config": {"node": {"node001": [SHARED]}}}
        )
        self.assertEqual((code, body), (400, {"message": "config: missing 'secrets'"}))
        code, body, _ = self.api.request("POST", "/config/secrets/node/node001", raw=b"[[")
        self.assertEqual(code, 400)
        self.assertTrue(body["message"].startswith("request body is not valid JSON"), body)
        self.assertEqual(self.node_secrets(), [LICENSE, SHARED])

    def test_single_get(self) -> None:
        """GET .../<secret> with a URL-encoded name answers that secret."""
        code, body = self.api.get("/config/secrets/node/node001/software%20license")
        self.assertEqual(
            (code, body), (200, {"config": {"secrets": {"node": {"node001": [LICENSE]}}}})
        )
        code, body = self.api.get("/config/secrets/group/compute/Proprietary%20key")
        self.assertEqual(
            (code, body), (200, {"config": {"secrets": {"group": {"compute": [GROUP_KEY]}}}})
        )

    def test_single_get_unknown(self) -> None:
        """An unknown secret answers 404."""
        self.assertEqual(
            self.api.get("/config/secrets/node/node001/nothing%20here"),
            (404, {"message": "node node001 has no secret 'nothing here'"}),
        )

    def test_single_post(self) -> None:
        """POST .../<secret> updates that secret (204); the spec's body
        without the config envelope is accepted too."""
        code, body = self.api.post(
            "/config/secrets/node/node001/software%20license",
            secrets_body("node", "node001", [{"secretname": "software license", "content": "V2"}]),
        )
        self.assertEqual((code, body), (204, None))
        code, body = self.api.post(
            "/config/secrets/group/compute/Proprietary%20key",
            {"secrets": {"group": {"compute": [dict(GROUP_KEY, content="V3")]}}},
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(self.node_secrets()[0]["content"], "V2")
        self.assertEqual(
            self.api.get("/config/secrets/group/compute")[1]["config"]["secrets"]["group"][
                "compute"
            ][0]["content"],
            "V3",
        )

    def test_single_post_other_name(self) -> None:
        """A single-secret POST naming another secret answers 400."""
        code, body = self.api.post(
            "/config/secrets/node/node001/software%20license",
            secrets_body("node", "node001", [{"secretname": "shared secret", "content": "V2"}]),
        )
        self.assertEqual(
            (code, body),
            (
                400,
                {
                    "message": "node001[0].secretname: 'shared secret' differs from "
                    "'software license' in the path"
                },
            ),
        )

    def test_clone(self) -> None:
        """POST .../<secret>/_clone with newsecretname answers 201 and copies
        content and path."""
        code, body = self.api.post(
            "/config/secrets/node/node001/software%20license/_clone",
            secrets_body(
                "node",
                "node001",
                [{"secretname": "software license", "newsecretname": "software license2"}],
            ),
        )
        self.assertEqual(
            (code, body), (201, {"message": "secret software license of node node001 cloned"})
        )
        self.assertEqual(
            self.api.get("/config/secrets/node/node001/software%20license2")[1],
            {
                "config": {
                    "secrets": {
                        "node": {
                            "node001": [
                                dict(
                                    LICENSE,
                                    secretname="software license2",
                                    name="software license2",
                                )
                            ]
                        }
                    }
                }
            },
        )

    def test_clone_group_secret(self) -> None:
        """A group secret clones too, with body fields overriding the copy."""
        code, _ = self.api.post(
            "/config/secrets/group/compute/Proprietary%20key/_clone",
            secrets_body(
                "group",
                "compute",
                [{"secretname": "Proprietary key", "newsecretname": "Key2", "content": "OTHER"}],
            ),
        )
        self.assertEqual(code, 201)
        self.assertEqual(
            self.api.get("/config/secrets/group/compute")[1]["config"]["secrets"]["group"][
                "compute"
            ],
            [GROUP_KEY, dict(GROUP_KEY, secretname="Key2", name="Key2", content="OTHER")],
        )

    def test_clone_errors(self) -> None:
        """_clone without newsecretname or onto an existing name answers 400;
        of an unknown secret 404."""
        path = "/config/secrets/node/node001/software%20license/_clone"
        self.assertEqual(
            self.api.post(
                path, secrets_body("node", "node001", [{"secretname": "software license"}])
            ),
            (400, {"message": "newsecretname: required to clone a secret"}),
        )
        self.assertEqual(
            self.api.post(
                path,
                secrets_body(
                    "node",
                    "node001",
                    [{"secretname": "software license", "newsecretname": "shared secret"}],
                ),
            ),
            (400, {"message": "newsecretname: secret 'shared secret' already exists"}),
        )
        self.assertEqual(
            self.api.post(
                "/config/secrets/node/node001/ghost/_clone",
                secrets_body("node", "node001", [{"secretname": "ghost", "newsecretname": "x"}]),
            ),
            (404, {"message": "node node001 has no secret 'ghost'"}),
        )
        self.assertEqual(self.node_secrets(), [LICENSE, SHARED])

    def test_delete(self) -> None:
        """GET .../<secret>/_delete answers 204; again 404."""
        path = "/config/secrets/node/node001/software%20license/_delete"
        self.assertEqual(self.api.get(path), (204, None))
        self.assertEqual(self.node_secrets(), [SHARED])
        self.assertEqual(
            self.api.get(path), (404, {"message": "node node001 has no secret 'software license'"})
        )
        self.assertEqual(
            self.api.get("/config/secrets/group/compute/Proprietary%20key/_delete"), (204, None)
        )
        self.assertEqual(
            self.api.get("/config/secrets/group/compute")[1],
            {"config": {"secrets": {"group": {"compute": []}}}},
        )

    def test_post_delete(self) -> None:
        """POST .../<secret>/_delete is unsupported: 400; the secret stays."""
        code, body = self.api.post("/config/secrets/node/node001/software%20license/_delete", {})
        self.assertEqual(
            (code, body),
            (400, {"message": "deleting a secret is GET .../_delete; POST is not supported"}),
        )
        code, body = self.api.post("/config/secrets/group/compute/Proprietary%20key/_delete", {})
        self.assertEqual(
            (code, body),
            (400, {"message": "deleting a secret is GET .../_delete; POST is not supported"}),
        )
        self.assertEqual(self.node_secrets(), [LICENSE, SHARED])
        self.assertEqual(
            self.api.get("/config/secrets/group/compute")[1],
            {"config": {"secrets": {"group": {"compute": [GROUP_KEY]}}}},
        )

    def test_post_list(self) -> None:
        """POST /config/secrets is list-only: 400."""
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

    def test_secrets_follow_node(self) -> None:
        """Secrets follow a renamed node, are copied to a clone and go away
        with a deleted node."""
        self.api.post(
            "/config/node/node001/_clone", env("node", "node001", {"newhostname": "node010"})
        )
        self.assertEqual(self.node_secrets("node010"), [LICENSE, SHARED])
        self.api.post("/config/node/node001", env("node", "node001", {"newhostname": "node011"}))
        self.assertEqual(self.node_secrets("node011"), [LICENSE, SHARED])
        self.api.get("/config/node/node010/_delete")
        self.assertEqual(
            sorted(self.api.get("/config/secrets")[1]["config"]["secrets"]["node"]), ["node011"]
        )

    def test_secrets_survive_restart(self) -> None:
        """Secrets are stored encrypted (the database file and its WAL hold
        a secret's path but not its content) and read back by a fresh store."""
        database = self.api.cfg.database.database
        raw = b"".join(
            path.read_bytes()
            for path in (database, database.with_name(database.name + "-wal"))
            if path.exists()
        )
        self.assertTrue(LICENSE["path"].encode() in raw, "the secret rows are not on disk")
        self.assertFalse(
            LICENSE["content"].encode() in raw, "a secret's content is on disk in clear"
        )
        store = load_store(self.api.cfg)
        self.addCleanup(store.pool.close)
        again = API(store)
        self.assertEqual(
            again.get("/config/secrets"),
            (
                200,
                {
                    "config": {
                        "secrets": {
                            "node": {"node001": [LICENSE, SHARED]},
                            "group": {"compute": [GROUP_KEY]},
                        }
                    }
                },
            ),
        )


class OsimageExtrasTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def image(self) -> dict:
        return self.api.show("osimage", "compute")

    def test_pack_unavailable(self) -> None:
        """GET _pack answers 503 with a JSON message; unknown image 404."""
        code, body, headers = self.api.request("GET", "/config/osimage/compute/_pack")
        self.assertEqual(
            (code, body),
            (
                503,
                {
                    "message": "osimage 'compute': packing is not available in this "
                    "luna2d release yet"
                },
            ),
        )
        self.assertEqual(headers[b"Content-Type"], [b"application/json"])
        self.assertEqual(
            self.api.get("/config/osimage/ghost/_pack"),
            (404, {"message": "osimage 'ghost' does not exist"}),
        )

    def test_kernel(self) -> None:
        """POST .../kernel sets kernelversion (kernver too), kernelfile and
        initrdfile: 204 and nothing else changes."""
        before = self.image()
        code, body = self.api.post(
            "/config/osimage/compute/kernel",
            env(
                "osimage",
                "compute",
                {
                    "kernver": "5.14.0-70",
                    "kernelfile": "compute-vmlinuz-5.14.0-70",
                    "initrdfile": "compute-initramfs",
                },
            ),
        )
        self.assertEqual((code, body), (204, None))
        before.update(
            {
                "kernelversion": "5.14.0-70",
                "kernelfile": "compute-vmlinuz-5.14.0-70",
                "initrdfile": "compute-initramfs",
            }
        )
        self.assertEqual(self.image(), before)

    def test_kernel_other_fields(self) -> None:
        """The kernel endpoint refuses other fields and empty bodies (400)."""
        for fields in ({"comment": "x"}, {}, {"kernelversion": "1", "path": "/x"}):
            code, body = self.api.post(
                "/config/osimage/compute/kernel", env("osimage", "compute", fields)
            )
            self.assertEqual(
                (code, body),
                (
                    400,
                    {
                        "message": "config.osimage: the kernel endpoint takes "
                        "kernelversion, kernelfile and initrdfile only"
                    },
                ),
            )

    def test_kernel_unknown(self) -> None:
        """The kernel of an unknown image answers 404 and creates nothing."""
        code, body = self.api.post(
            "/config/osimage/ghost/kernel", env("osimage", "ghost", {"kernelversion": "1"})
        )
        self.assertEqual((code, body), (404, {"message": "osimage 'ghost' does not exist"}))
        self.assertEqual(self.api.get("/config/osimage/ghost")[0], 404)

    def test_tag(self) -> None:
        """POST .../tag records the current files under the tag: 204, new or
        replaced (the spec and the CLI, issue 10); GET /config/osimagetag[/<o>]
        list it; the image shows its tags comma-separated."""
        self.api.post(
            "/config/osimage/compute",
            env(
                "osimage", "compute", {"kernelfile": "k1", "initrdfile": "i1", "imagefile": "img1"}
            ),
        )
        code, body = self.api.post(
            "/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"})
        )
        self.assertEqual((code, body), (204, None))
        expected = {
            "config": {
                "osimagetag": {
                    "v1": {
                        "name": "v1",
                        "osimage": "compute",
                        "kernelfile": "k1",
                        "initrdfile": "i1",
                        "imagefile": "img1",
                    }
                }
            }
        }
        self.assertEqual(self.api.get("/config/osimagetag"), (200, expected))
        self.assertEqual(self.api.get("/config/osimagetag/compute"), (200, expected))
        self.assertEqual(self.image()["tags"], "v1")
        self.api.post("/config/osimage/compute", env("osimage", "compute", {"kernelfile": "k2"}))
        code, body = self.api.post(
            "/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"})
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.api.get("/config/osimagetag/compute")[1]["config"]["osimagetag"]["v1"][
                "kernelfile"
            ],
            "k2",
        )

    def test_tags_of_several_images(self) -> None:
        """Tags of every image are listed; per image only its own."""
        self.api.post("/config/osimage/other", env("osimage", "other", {"kernelfile": "ko"}))
        self.api.post("/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"}))
        self.api.post("/config/osimage/other/tag", env("osimage", "other", {"tag": "v2"}))
        self.assertEqual(
            sorted(self.api.get("/config/osimagetag")[1]["config"]["osimagetag"]), ["v1", "v2"]
        )
        self.assertEqual(
            self.api.get("/config/osimagetag/other")[1],
            {
                "config": {
                    "osimagetag": {
                        "v2": {
                            "name": "v2",
                            "osimage": "other",
                            "kernelfile": "ko",
                            "initrdfile": None,
                            "imagefile": None,
                        }
                    }
                }
            },
        )

    def test_tag_errors(self) -> None:
        """Bad tags answer 400; unknown images 404."""
        for fields, text in (
            ({"tag": "Bad Tag"}, "tag: 'Bad Tag' is not a valid tag name"),
            ({}, "tag: None is not a valid tag name"),
            ({"tag": "v2", "bogus": 1}, "tag: expected an object with the field tag"),
        ):
            code, body = self.api.post(
                "/config/osimage/compute/tag", env("osimage", "compute", fields)
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(
            self.api.post("/config/osimage/ghost/tag", env("osimage", "ghost", {"tag": "v1"})),
            (404, {"message": "osimage 'ghost' does not exist"}),
        )
        self.assertEqual(
            self.api.get("/config/osimagetag/ghost"),
            (404, {"message": "osimage 'ghost' does not exist"}),
        )
        self.assertEqual(self.api.get("/config/osimagetag"), (200, {"config": {"osimagetag": {}}}))

    def test_tag_members(self) -> None:
        """/config/osimagetag/<o>/_member (and _list) answer the image's nodes
        that boot a tag: none until a tag is set, then those inheriting it or
        setting it themselves."""
        empty = (200, env("osimage", "compute", {"members": []}))
        self.assertEqual(self.api.get("/config/osimagetag/compute/_member"), empty)
        self.api.post("/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"}))
        self.assertEqual(
            self.api.post("/config/node/node002", env("node", "node002", {"osimagetag": "v1"}))[0],
            204,
        )
        only = (200, env("osimage", "compute", {"members": ["node002"]}))
        self.assertEqual(self.api.get("/config/osimagetag/compute/_member"), only)
        self.assertEqual(
            self.api.post("/config/group/compute", env("group", "compute", {"osimagetag": "v1"}))[
                0
            ],
            204,
        )
        every = (
            200,
            env("osimage", "compute", {"members": ["node001", "node002", "node003", "node004"]}),
        )
        self.assertEqual(self.api.get("/config/osimagetag/compute/_member"), every)
        self.assertEqual(self.api.get("/config/osimagetag/compute/_list"), every)
        self.assertEqual(
            self.api.get("/config/osimagetag/ghost/_member"),
            (404, {"message": "osimage 'ghost' does not exist"}),
        )

    def test_tag_delete(self) -> None:
        """GET .../osimagetag/<tag>/_delete answers 204, then 404; refused
        with 400 while a group uses the tag."""
        self.api.post("/config/osimage/compute/tag", env("osimage", "compute", {"tag": "v1"}))
        self.api.post("/config/group/compute", env("group", "compute", {"osimagetag": "v1"}))
        path = "/config/osimage/compute/osimagetag/v1/_delete"
        self.assertEqual(
            self.api.get(path), (400, {"message": "tag 'v1' is still used by group compute"})
        )
        self.api.post("/config/group/compute", env("group", "compute", {"osimagetag": None}))
        self.assertEqual(self.api.get(path), (204, None))
        self.assertEqual(
            self.api.get(path), (404, {"message": "osimage 'compute' has no tag 'v1'"})
        )
        self.assertEqual(
            self.api.get("/config/osimage/ghost/osimagetag/v1/_delete"),
            (404, {"message": "osimage 'ghost' does not exist"}),
        )
        self.assertEqual(self.image()["tags"], "")


RACK_DEVICES = [
    {
        "name": "controller",
        "type": "controller",
        "vendor": "Supermicro",
        "orientation": "front",
        "height": 1,
        "position": 5,
    },
    {
        "name": "node001",
        "type": "node",
        "vendor": "Dell",
        "orientation": "front",
        "height": 2,
        "position": 8,
    },
    {
        "name": "sw01",
        "type": "switch",
        "vendor": None,
        "orientation": "back",
        "height": 1,
        "position": 42,
    },
]


def unplaced(name: str, dtype: str = "node", **changes: Any) -> dict:
    entry = {
        "name": name,
        "type": dtype,
        "vendor": None,
        "orientation": "front",
        "height": 1,
        "position": None,
        "rack": None,
    }
    entry.update(changes)
    return entry


class RackTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()
        self.api.post("/config/switch/sw01", env("switch", "sw01", {"network": "cluster"}))
        code, body = self.api.post(
            "/config/rack/rack01",
            env(
                "rack",
                "rack01",
                {
                    "size": 42,
                    "order": "ascending",
                    "room": "Basement",
                    "site": "AMS",
                    "devices": [
                        {
                            "name": "controller",
                            "type": "controller",
                            "vendor": "Supermicro",
                            "orientation": "front",
                            "height": 1,
                            "position": 5,
                        },
                        {
                            "name": "node001",
                            "type": "node",
                            "vendor": "Dell",
                            "height": 2,
                            "position": 8,
                        },
                        {"name": "sw01", "type": "switch", "orientation": "back", "position": 42},
                    ],
                },
            ),
        )
        self.assertEqual((code, body), (201, {"message": "rack rack01 created"}))

    def inventory(self, subset: str = "") -> list[dict]:
        code, body = self.api.get("/config/rack/inventory" + subset)
        self.assertEqual(code, 200)
        return body["config"]["rack"]["inventory"]

    def test_rack_view(self) -> None:
        """GET /config/rack/<r> shows the rack with its devices by position."""
        self.assertEqual(
            self.api.get("/config/rack/rack01"),
            (
                200,
                env(
                    "rack",
                    "rack01",
                    {
                        "name": "rack01",
                        "size": 42,
                        "order": "ascending",
                        "room": "Basement",
                        "site": "AMS",
                        "comment": None,
                        "devices": RACK_DEVICES,
                    },
                ),
            ),
        )
        self.assertEqual(
            self.api.get("/config/rack/rack01/_member"),
            (200, env("rack", "rack01", {"members": ["controller", "node001", "sw01"]})),
        )

    def test_devices_add_to_content(self) -> None:
        """POSTing devices places them (204); the devices already in the
        rack stay (as lrack place expects)."""
        code, body = self.api.post(
            "/config/rack/rack01",
            env(
                "rack", "rack01", {"devices": [{"name": "node002", "type": "node", "position": 10}]}
            ),
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            sorted(
                d["name"]
                for d in self.api.get("/config/rack/rack01")[1]["config"]["rack"]["rack01"][
                    "devices"
                ]
            ),
            ["controller", "node001", "node002", "sw01"],
        )

    def test_device_errors(self) -> None:
        """Devices that overlap, do not fit, lack a position or do not exist
        answer 400; the rack keeps its content."""
        overlap = [
            {"name": "node001", "type": "node", "position": 8},
            {"name": "node002", "type": "node", "position": 9},
        ]
        code, body = self.api.post(
            "/config/rack/rack01", env("rack", "rack01", {"devices": overlap})
        )
        self.assertEqual(code, 400)
        self.assertIn(
            body["message"],
            (
                "devices: node002 and node001 both take unit 9 of rack rack01",
                "devices: node001 and node002 both take unit 9 of rack rack01",
            ),
        )
        for devices, text in (
            (
                [{"name": "node001", "type": "node", "position": 41, "height": 3}],
                "devices: node001 at 41 (height 3) does not fit rack of size 42",
            ),
            (
                [{"name": "node001", "type": "node"}],
                "devices[0].position: required to place node001 in a rack",
            ),
            (
                [{"name": "ghost", "type": "node", "position": 1}],
                "devices[0].name: node 'ghost' does not exist",
            ),
            (
                [{"name": "node001", "type": "toaster", "position": 1}],
                "devices[0].type: must be one of node, switch, otherdev, controller",
            ),
            (
                [{"name": "node001", "type": "node", "position": 1, "colour": "red"}],
                "devices[0].colour: unknown device field",
            ),
            ("node001", "devices: expected a list of device objects"),
        ):
            code, body = self.api.post(
                "/config/rack/rack01", env("rack", "rack01", {"devices": devices})
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(
            self.api.get("/config/rack/rack01")[1]["config"]["rack"]["rack01"]["devices"],
            RACK_DEVICES,
        )

    def test_shrink_refused(self) -> None:
        """A size too small for the devices answers 400."""
        code, body = self.api.post("/config/rack/rack01", env("rack", "rack01", {"size": 10}))
        self.assertEqual(
            (code, body),
            (400, {"message": "devices: sw01 at 42 (height 1) does not fit rack of size 10"}),
        )

    def test_inventory(self) -> None:
        """GET /config/rack/inventory lists every device with its place."""
        self.assertEqual(
            self.inventory(),
            [
                dict(RACK_DEVICES[1], rack="rack01"),
                unplaced("node002"),
                unplaced("node003"),
                unplaced("node004"),
                dict(RACK_DEVICES[2], rack="rack01"),
                dict(RACK_DEVICES[0], rack="rack01"),
            ],
        )

    def test_inventory_subsets(self) -> None:
        """/configured and /unconfigured filter; other subsets answer 404."""
        self.assertEqual(
            [d["name"] for d in self.inventory("/configured")], ["node001", "sw01", "controller"]
        )
        self.assertEqual(
            [d["name"] for d in self.inventory("/unconfigured")], ["node002", "node003", "node004"]
        )
        self.assertEqual(
            self.api.get("/config/rack/inventory/bogus"),
            (404, {"message": "there is no inventory subset 'bogus' (configured, unconfigured)"}),
        )

    def test_inventory_update(self) -> None:
        """POST /config/rack/inventory updates vendor, height, orientation (204)."""
        code, body = self.api.post(
            "/config/rack/inventory",
            {
                "config": {
                    "rack": {
                        "inventory": [
                            {
                                "name": "node002",
                                "type": "node",
                                "vendor": "HP",
                                "height": 2,
                                "orientation": "back",
                            }
                        ]
                    }
                }
            },
        )
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.inventory("/unconfigured")[0],
            unplaced("node002", vendor="HP", height=2, orientation="back"),
        )

    def test_inventory_update_errors(self) -> None:
        """Inventory updates that break a rack or name unknown devices: 400."""
        for items, text in (
            (
                [{"name": "node001", "type": "node", "height": 40}],
                "devices: node001 at 8 (height 40) does not fit rack of size 42",
            ),
            ([{"name": "ghost", "type": "node"}], "inventory[0].name: node 'ghost' does not exist"),
            (
                [{"name": "node001", "type": "node", "orientation": "sideways"}],
                "inventory[0].orientation: must be one of front, back, got 'sideways'",
            ),
            ({"name": "node001"}, "inventory: expected a list of device objects"),
        ):
            code, body = self.api.post(
                "/config/rack/inventory", {"config": {"rack": {"inventory": items}}}
            )
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.inventory()[0], dict(RACK_DEVICES[1], rack="rack01"))

    def test_inventory_clear(self) -> None:
        """GET /inventory/<device>/type/<type>/_delete takes the device out of
        its rack (204); unknown devices or types answer 404."""
        self.assertEqual(
            self.api.get("/config/rack/inventory/node001/type/node/_delete"), (204, None)
        )
        self.assertEqual(
            self.api.get("/config/rack/rack01/_list"),
            (200, env("rack", "rack01", {"members": ["controller", "sw01"]})),
        )
        self.assertEqual(
            self.api.get("/config/rack/inventory/node001/type/toaster/_delete"),
            (404, {"message": "there is no device type 'toaster'"}),
        )
        self.assertEqual(
            self.api.get("/config/rack/inventory/ghost/type/node/_delete"),
            (404, {"message": "node 'ghost' does not exist"}),
        )

    def test_rack_fields_not_on_kind(self) -> None:
        """Rack placement is set through /config/rack, not the device's POST."""
        code, body = self.api.post(
            "/config/node/node002", env("node", "node002", {"rackposition": 3})
        )
        self.assertEqual((code, body), (400, {"message": "rackposition: unknown field for node"}))

    def test_deleted_device_leaves_rack(self) -> None:
        """A deleted node is no longer in its rack."""
        self.api.get("/config/node/node001/_delete")
        self.assertEqual(
            self.api.get("/config/rack/rack01/_member")[1]["config"]["rack"]["rack01"]["members"],
            ["controller", "sw01"],
        )


JOURNAL = [
    {
        "function": "node_update",
        "object": "node001",
        "param": None,
        "payload": "IyBUaGlz",
        "masteronly": "0",
        "misc": None,
        "sendfor": "controller",
        "sendby": "controller2",
        "created": "1713520340",
    },
    {
        "function": "osimage_pack",
        "object": "compute",
        "param": None,
        "payload": None,
        "masteronly": "1",
        "misc": "1703678426.72",
        "sendfor": "controller",
        "sendby": "controller2",
        "created": "1713520344",
    },
]


class JournalTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def test_empty(self) -> None:
        """A controller without entries answers an empty journal."""
        self.assertEqual(self.api.get("/journal/controller"), (200, {"journal": []}))

    def test_post_and_get(self) -> None:
        """POST /journal stores entries (201); GET lists those for the
        controller, in order, with defaults filled in."""
        code, body = self.api.post(
            "/journal",
            {
                "journal": JOURNAL
                + [
                    {"function": "x", "sendfor": "elsewhere"},
                    {"function": "y", "sendfor": "controller", "masteronly": True},
                ]
            },
        )
        self.assertEqual((code, body), (201, {"message": "4 journal entries added"}))
        code, body = self.api.get("/journal/controller")
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "journal": JOURNAL
                    + [
                        {
                            "function": "y",
                            "object": None,
                            "param": None,
                            "payload": None,
                            "masteronly": "1",
                            "misc": None,
                            "sendfor": "controller",
                            "sendby": None,
                            "created": str(int(self.api.clock.seconds())),
                        }
                    ]
                },
            ),
        )

    def test_unknown_controller(self) -> None:
        """GET /journal/<unknown controller> answers 404."""
        self.assertEqual(
            self.api.get("/journal/ghost"), (404, {"message": "controller 'ghost' does not exist"})
        )

    def test_bad_entries(self) -> None:
        """Malformed journal bodies answer 400 naming the field."""
        for payload, text in (
            ({"journal": []}, "journal: expected a non-empty list of entries"),
            ({"journal": [{"function": "x"}]}, "journal[0].sendfor: required"),
            (
                {"journal": [{"function": "x", "sendfor": "c", "bogus": 1}]},
                "journal[0].bogus: unknown journal field",
            ),
            (
                {"journal": [{"function": "x", "sendfor": "c", "masteronly": "maybe"}]},
                "journal[0].masteronly: expected 0 or 1",
            ),
            (
                {"journal": [{"function": "x", "sendfor": "c", "created": "yesterday"}]},
                "journal[0].created: expected a UNIX timestamp",
            ),
            ({"journal": ["x"]}, "journal[0]: expected a journal entry object"),
            ({"nope": []}, "the body: missing 'journal'"),
        ):
            code, body = self.api.post("/journal", payload)
            self.assertEqual((code, body), (400, {"message": text}))
        self.assertEqual(self.api.get("/journal/controller"), (200, {"journal": []}))

    def test_readonly_may_read_not_write(self) -> None:
        """A readonly token reads the journal but may not add to it."""
        token = self.api.token("readonly")
        self.assertEqual(self.api.get("/journal/controller", token=token), (200, {"journal": []}))
        self.assertEqual(
            self.api.post("/journal", {"journal": JOURNAL}, token=token),
            (403, {"message": "readonly tokens may not change anything"}),
        )


class UserTests(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        code, body = self.api.post(
            "/config/user/alice",
            env("user", "alice", {"password": "alice-password", "role": "admin", "comment": "ops"}),
        )
        self.assertEqual((code, body), (201, {"message": "user alice created"}))

    def test_list_and_show(self) -> None:
        """Users list and show with role and comment, never a password or hash."""
        alice = {"name": "alice", "role": "admin", "comment": "ops"}
        self.assertEqual(
            self.api.get("/config/user"), (200, {"config": {"user": {"alice": alice}}})
        )
        self.assertEqual(self.api.get("/config/user/alice"), (200, env("user", "alice", alice)))
        self.assertEqual(
            self.api.get("/config/user/ghost"), (404, {"message": "user 'ghost' does not exist"})
        )

    def test_default_role(self) -> None:
        """A user created without role is readonly."""
        self.api.post("/config/user/bob", env("user", "bob", {"password": "bob-password"}))
        self.assertEqual(
            self.api.get("/config/user/bob")[1]["config"]["user"]["bob"]["role"], "readonly"
        )

    def test_update(self) -> None:
        """Updating a user answers 204."""
        code, body = self.api.post("/config/user/alice", env("user", "alice", {"role": "readonly"}))
        self.assertEqual((code, body), (204, None))
        self.assertEqual(
            self.api.get("/config/user/alice")[1]["config"]["user"]["alice"]["role"], "readonly"
        )

    def test_rename(self) -> None:
        """newusername renames (204); onto an existing user answers 400."""
        self.api.post("/config/user/bob", env("user", "bob", {"password": "bob-password"}))
        self.assertEqual(
            self.api.post("/config/user/alice", env("user", "alice", {"newusername": "bob"})),
            (400, {"message": "user 'bob' already exists"}),
        )
        self.assertEqual(
            self.api.post("/config/user/alice", env("user", "alice", {"newusername": "carol"})),
            (204, None),
        )
        self.assertEqual(
            sorted(self.api.get("/config/user")[1]["config"]["user"]), ["bob", "carol"]
        )

    def test_delete(self) -> None:
        """GET _delete answers 204, then 404."""
        self.assertEqual(self.api.get("/config/user/alice/_delete"), (204, None))
        self.assertEqual(
            self.api.get("/config/user/alice/_delete"),
            (404, {"message": "user 'alice' does not exist"}),
        )
        self.assertEqual(self.api.get("/config/user"), (200, {"config": {"user": {}}}))

    def test_errors(self) -> None:
        """Clones, hashes, unknown fields, bad names and other names: 400."""
        for path, body, text in (
            (
                "/config/user/alice/_clone",
                env("user", "alice", {"newusername": "bob"}),
                "users cannot be cloned",
            ),
            (
                "/config/user/alice",
                env("user", "alice", {"pwhash": "x"}),
                "pwhash: unknown field for user",
            ),
            (
                "/config/user/alice",
                env("user", "alice", {"bogus": 1}),
                "bogus: unknown field for user",
            ),
            (
                "/config/user/alice",
                env("user", "bob", {"password": "12345678"}),
                "config.user: the path names 'alice' but the body holds 'bob'",
            ),
            (
                "/config/user/Alice",
                env("user", "Alice", {"password": "12345678"}),
                (
                    "name: 'Alice' is not a valid user name (lowercase letters, digits, '.', '_' "
                    "and '-', at most 63 characters)"
                ),
            ),
            (
                "/config/user/alice",
                env("user", "alice", {"newusername": "luna"}),
                "name: 'luna' is the ini file's admin and cannot be managed here",
            ),
        ):
            code, answer = self.api.post(path, body)
            self.assertEqual((path, code, answer), (path, 400, {"message": text}))

    def test_login_as_user(self) -> None:
        """A created user logs in through POST /token (201)."""
        code, body = self.api.post(
            "/token", {"username": "alice", "password": "alice-password"}, token=False
        )
        self.assertEqual(code, 201)
        self.assertEqual(self.api.get("/config/user", token=body["token"])[0], 200)
