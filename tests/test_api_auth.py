"""Authentication and authorisation through the whole HTTP stack (StubTreq):
POST /token, the open /version, 401 without or with a bad token on every
/config endpoint, readonly users (403 on every POST, secrets masked), node
provisioning tokens scoped to their own node, and tokens of deleted users.
Every login costs one scrypt derivation, the same work and about the same
time whether it names the ini admin, a store user or nobody."""

from __future__ import annotations

import time

import jwt
from twisted.trial import unittest

import luna2d
from luna2d.model.kinds import KINDS
from luna2d.store import crypto
from tests.support import ADMIN, API, PASSWORD, SECRET, env, hash_inline

MASK = "********"
NODE_SECRET, GROUP_SECRET = "node-secret-text", "group-secret-text"
NO_TOKEN = {"message": "a valid token is required (x-access-tokens header)"}
READONLY_POST = {"message": "readonly tokens may not change anything"}

# Every GET under /config (and /journal) that needs a token, on seeded objects.
CONFIG_GETS = [
    "/config/node",
    "/config/node/node001",
    "/config/node/nosuchnode",
    "/config/node/node001/_list",
    "/config/node/node001/_member",
    "/config/node/node001/_delete",
    "/config/node/node001/interfaces",
    "/config/node/node001/interfaces/BOOTIF",
    "/config/node/node001/interfaces/BOOTIF/_delete",
    "/config/group",
    "/config/group/compute",
    "/config/group/compute/_list",
    "/config/group/compute/_member",
    "/config/group/compute/_delete",
    "/config/group/compute/interfaces",
    "/config/group/compute/interfaces/BMC",
    "/config/group/compute/interfaces/BMC/_delete",
    "/config/network",
    "/config/network/cluster",
    "/config/network/cluster/_list",
    "/config/network/cluster/_member",
    "/config/network/cluster/_nextfreeip",
    "/config/network/cluster/10.141.0.1",
    "/config/network/cluster/_delete",
    "/config/osimage",
    "/config/osimage/compute",
    "/config/osimage/compute/_list",
    "/config/osimage/compute/_pack",
    "/config/osimage/compute/_delete",
    "/config/osimage/compute/osimagetag/v1/_delete",
    "/config/osimagetag",
    "/config/osimagetag/compute",
    "/config/osimagetag/compute/_member",
    "/config/bmcsetup",
    "/config/bmcsetup/compute",
    "/config/bmcsetup/compute/_list",
    "/config/bmcsetup/compute/_delete",
    "/config/switch",
    "/config/switch/sw01",
    "/config/otherdev",
    "/config/otherdev/pdu01",
    "/config/rack",
    "/config/rack/rack01",
    "/config/rack/rack01/_list",
    "/config/rack/inventory",
    "/config/rack/inventory/configured",
    "/config/rack/inventory/unconfigured",
    "/config/rack/inventory/node001/type/node/_delete",
    "/config/secrets",
    "/config/secrets/node/node001",
    "/config/secrets/node/node001/shared%20key",
    "/config/secrets/node/node001/shared%20key/_delete",
    "/config/secrets/group/compute",
    "/config/secrets/group/compute/shared%20key",
    "/config/cluster",
    "/config/user",
    "/config/user/someone",
    "/journal/controller",
]


def fixture_secrets(node: str, group: str, node_only: bool = False) -> dict:
    """The GET answer for the fixture's secrets of node001 (and, unless
    ``node_only``, of its group), with the contents shown as given."""
    view = {
        "node": {
            "node001": [
                {
                    "name": "shared key",
                    "secretname": "shared key",
                    "content": node,
                    "path": "/etc/shared.key",
                }
            ]
        }
    }
    if not node_only:
        view["group"] = {
            "compute": [
                {
                    "name": "shared key",
                    "secretname": "shared key",
                    "content": group,
                    "path": "/etc/group.key",
                }
            ]
        }
    return {"config": {"secrets": view}}


# Every POST that needs an admin token, with a body that an admin could send.
CONFIG_POSTS = [
    ("/config/node", {}),
    ("/config/node/node001", env("node", "node001", {"comment": "x"})),
    ("/config/node/node009", env("node", "node009", {"group": "compute"})),
    ("/config/node/node001/_clone", env("node", "node001", {"newhostname": "node010"})),
    ("/config/node/node001/_delete", {}),
    (
        "/config/node/node001/interfaces",
        env("node", "node001", {"interfaces": [{"interface": "eth9", "network": "ib"}]}),
    ),
    ("/config/group/compute", {"config": {"group": {"compute": {"comment": "x"}}}}),
    ("/config/group/compute/_clone", {"config": {"group": {"compute": {"newgroupname": "gpu"}}}}),
    (
        "/config/group/compute/interfaces",
        {
            "config": {
                "group": {"compute": {"interfaces": [{"interface": "eth9", "network": "ib"}]}}
            }
        },
    ),
    ("/config/network/cluster", {"config": {"network": {"cluster": {"comment": "x"}}}}),
    (
        "/config/network/cluster/_clone",
        {"config": {"network": {"cluster": {"newnetname": "c2", "network": "10.200.0.0/16"}}}},
    ),
    ("/config/osimage", {}),
    ("/config/osimage/compute", {"config": {"osimage": {"compute": {"comment": "x"}}}}),
    ("/config/osimage/compute/_clone", {"config": {"osimage": {"compute": {"newosimage": "c2"}}}}),
    (
        "/config/osimage/compute/kernel",
        {"config": {"osimage": {"compute": {"kernelversion": "6.1"}}}},
    ),
    ("/config/osimage/compute/tag", {"config": {"osimage": {"compute": {"tag": "v1"}}}}),
    ("/config/bmcsetup/compute", {"config": {"bmcsetup": {"compute": {"comment": "x"}}}}),
    (
        "/config/bmcsetup/compute/_clone",
        {"config": {"bmcsetup": {"compute": {"newbmcname": "b2"}}}},
    ),
    ("/config/switch/sw01", {"config": {"switch": {"sw01": {"comment": "x"}}}}),
    ("/config/otherdev/pdu01", {"config": {"otherdev": {"pdu01": {"comment": "x"}}}}),
    ("/config/rack/rack01", {"config": {"rack": {"rack01": {"size": 42}}}}),
    (
        "/config/rack/inventory",
        {"config": {"rack": {"inventory": [{"name": "node001", "type": "node"}]}}},
    ),
    ("/config/secrets", {}),
    (
        "/config/secrets/node/node001",
        {
            "config": {
                "secrets": {
                    "node": {"node001": [{"secretname": "k", "content": "c", "path": "/k"}]}
                }
            }
        },
    ),
    (
        "/config/secrets/group/compute",
        {
            "config": {
                "secrets": {
                    "group": {"compute": [{"secretname": "k", "content": "c", "path": "/k"}]}
                }
            }
        },
    ),
    (
        "/config/secrets/node/node001/shared%20key",
        {
            "config": {
                "secrets": {"node": {"node001": [{"secretname": "shared key", "content": "new"}]}}
            }
        },
    ),
    (
        "/config/secrets/node/node001/shared%20key/_clone",
        {
            "config": {
                "secrets": {
                    "node": {"node001": [{"secretname": "shared key", "newsecretname": "k2"}]}
                }
            }
        },
    ),
    ("/config/secrets/node/node001/shared%20key/_delete", {}),
    ("/config/cluster", {"config": {"cluster": {"debug": True}}}),
    (
        "/config/user/someone",
        {"config": {"user": {"someone": {"password": "longenough", "role": "readonly"}}}},
    ),
    (
        "/journal",
        {"journal": [{"function": "node_update", "object": "node001", "sendfor": "controller"}]},
    ),
]


class AuthCase(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.secret_fixture()

    def secret_fixture(self) -> None:
        """A node secret, a group secret, a switch and an other device to
        point the endpoint lists at."""
        api = self.api
        code, _ = api.post(
            "/config/secrets/node/node001",
            {
                "config": {
                    "secrets": {
                        "node": {
                            "node001": [
                                {
                                    "secretname": "shared key",
                                    "content": NODE_SECRET,
                                    "path": "/etc/shared.key",
                                }
                            ]
                        }
                    }
                }
            },
        )
        self.assertEqual(code, 201)
        code, _ = api.post(
            "/config/secrets/group/compute",
            {
                "config": {
                    "secrets": {
                        "group": {
                            "compute": [
                                {
                                    "secretname": "shared key",
                                    "content": GROUP_SECRET,
                                    "path": "/etc/group.key",
                                }
                            ]
                        }
                    }
                }
            },
        )
        self.assertEqual(code, 201)
        code, _ = api.post(
            "/config/switch/sw01",
            {
                "config": {
                    "switch": {
                        "sw01": {
                            "network": "cluster",
                            "ipaddress": "10.141.250.1",
                            "rw": "write-community",
                        }
                    }
                }
            },
        )
        self.assertEqual(code, 201)
        code, _ = api.post(
            "/config/otherdev/pdu01",
            {"config": {"otherdev": {"pdu01": {"network": "ipmi", "ipaddress": "10.148.250.1"}}}},
        )
        self.assertEqual(code, 201)
        code, _ = api.post("/config/rack/rack01", {"config": {"rack": {"rack01": {"size": 42}}}})
        self.assertEqual(code, 201)

    def everything(self) -> dict:
        """What an admin's GETs show of every kind, the secrets, the
        cluster, the inventory, the tags and the journal."""
        paths = [f"/config/{kind}" for kind in KINDS if kind != "cluster"] + [
            "/config/secrets",
            "/config/cluster",
            "/config/rack/inventory",
            "/config/osimagetag",
            "/journal/controller",
        ]
        return {path: self.api.get(path) for path in paths}

    def make_user(self, name: str, role: str, password: str = "correct-horse") -> str:
        """Create a store user through the API and log in as them."""
        code, body = self.api.post(
            f"/config/user/{name}",
            {"config": {"user": {name: {"password": password, "role": role}}}},
        )
        self.assertEqual((code, body), (201, {"message": f"user {name} created"}))
        code, body = self.api.post("/token", {"username": name, "password": password}, token=False)
        self.assertEqual(code, 201)
        return body["token"]


class TokenEndpointTests(AuthCase):
    def test_admin_login(self) -> None:
        """POST /token with the ini admin's credentials answers 201 with an
        HS256 JWT signed with SECRET_KEY that carries an expiry and works."""
        code, body = self.api.post("/token", {"username": ADMIN, "password": PASSWORD}, token=False)
        self.assertEqual(code, 201)
        self.assertEqual(list(body), ["token"])
        claims = jwt.decode(
            body["token"],
            SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
        self.assertEqual(claims["sub"], ADMIN)
        self.assertEqual(claims["exp"], int(self.api.clock.seconds()) + 3600)
        code, _ = self.api.get("/config/node", token=body["token"])
        self.assertEqual(code, 200)

    def test_bad_password(self) -> None:
        """A wrong password answers 401 with a JSON message, no token."""
        code, body = self.api.post("/token", {"username": ADMIN, "password": "wrong"}, token=False)
        self.assertEqual((code, body), (401, {"message": "invalid username or password"}))

    def test_unknown_user(self) -> None:
        """An unknown user answers the same 401 as a wrong password."""
        code, body = self.api.post(
            "/token", {"username": "nobody", "password": "whatever1"}, token=False
        )
        self.assertEqual((code, body), (401, {"message": "invalid username or password"}))

    def test_store_user_wrong_password(self) -> None:
        """A store user with a wrong password gets 401."""
        self.make_user("alice", "readonly")
        code, body = self.api.post(
            "/token", {"username": "alice", "password": "not-her-password"}, token=False
        )
        self.assertEqual((code, body), (401, {"message": "invalid username or password"}))

    def test_malformed_json(self) -> None:
        """A body that is not JSON answers 400 with a JSON message."""
        code, body, _ = self.api.request("POST", "/token", raw=b"{username: luna", token=False)
        self.assertEqual(code, 400)
        self.assertTrue(body["message"].startswith("request body is not valid JSON"), body)

    def test_empty_body(self) -> None:
        """An empty body answers 400."""
        code, body, _ = self.api.request("POST", "/token", raw=b"", token=False)
        self.assertEqual(
            (code, body), (400, {"message": "request body is empty; a JSON object is required"})
        )

    def test_not_an_object(self) -> None:
        """A JSON list instead of an object answers 400."""
        code, body = self.api.post("/token", ["luna", "luna"], token=False)
        self.assertEqual(
            (code, body),
            (400, {"message": "the body must be a JSON object with username and password"}),
        )

    def test_missing_username(self) -> None:
        """A body without username answers 400 naming the field."""
        code, body = self.api.post("/token", {"password": PASSWORD}, token=False)
        self.assertEqual((code, body), (400, {"message": "username: required"}))

    def test_missing_password(self) -> None:
        """A body without password answers 400 naming the field."""
        code, body = self.api.post("/token", {"username": ADMIN}, token=False)
        self.assertEqual((code, body), (400, {"message": "password: required"}))

    def test_wrong_type(self) -> None:
        """A password that is not a string answers 400 naming the field."""
        code, body = self.api.post("/token", {"username": ADMIN, "password": 1234}, token=False)
        self.assertEqual((code, body), (400, {"message": "password: required"}))

    def test_unknown_field(self) -> None:
        """An unknown field in the login body answers 400 naming it."""
        code, body = self.api.post(
            "/token", {"username": ADMIN, "password": PASSWORD, "role": "admin"}, token=False
        )
        self.assertEqual((code, body), (400, {"message": "role: unknown field"}))

    def test_get_token_not_allowed(self) -> None:
        """GET /token is not a login: 405 with a JSON message."""
        code, body = self.api.get("/token", token=False)
        self.assertEqual(code, 405)
        self.assertIn("GET", body["message"])


class LoginCostTests(unittest.TestCase):
    """What a login costs, counted in scrypt derivations and measured."""

    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        code, _ = self.api.post(
            "/config/user/alice",
            {"config": {"user": {"alice": {"password": "alice-password", "role": "admin"}}}},
        )
        self.assertEqual(code, 201)
        self.derivations = 0
        derive = crypto._derive

        def counted(password: str, salt: bytes, length: int) -> bytes:
            self.derivations += 1
            return derive(password, salt, length)

        self.patch(crypto, "_derive", counted)

    def cost(self, username: str, password: str) -> tuple[int, int]:
        """(status, scrypt derivations) of one login; the clock then moves
        on past any throttling, so that every login is checked."""
        before = self.derivations
        code, _ = self.api.post("/token", {"username": username, "password": password}, token=False)
        self.api.clock.advance(1000)
        return code, self.derivations - before

    def test_one_derivation_whoever_is_named(self) -> None:
        """The first login costs two derivations (the ini admin's hash, made
        once, whoever the login names); every later login costs exactly one,
        right or wrong, for the ini admin, a store user or an unknown name."""
        self.assertEqual(self.cost("nobody", "whatever"), (401, 2))
        for username, password, code in (
            ("nobody", "whatever", 401),
            (ADMIN, "wrong-password", 401),
            ("alice", "wrong-password", 401),
            (ADMIN, PASSWORD, 201),
            ("alice", "alice-password", 201),
            ("x" * 2000, "whatever", 401),
        ):
            self.assertEqual(self.cost(username, password), (code, 1), username[:10])

    def test_first_login_costs_the_same_for_every_name(self) -> None:
        """Which name comes first makes no difference to the first login's cost."""
        for username, password in ((ADMIN, PASSWORD), ("alice", "alice-password"), ("nobody", "x")):
            self.api = API(store=self.api.store)
            self.assertEqual(self.cost(username, password)[1], 2)

    def test_failures_take_the_same_time(self) -> None:
        """Failed logins for an unknown name, the ini admin and a store user
        take the same time within a factor of two (best of five each; a
        scrypt check is about 50 ms, a plain comparison well under 1 ms).
        Measured in the process's CPU time, which other load on the machine
        does not stretch."""
        self.cost("nobody", "warm-up")
        best: dict[str, float] = {}
        for _ in range(5):
            for username in ("nobody", ADMIN, "alice"):
                start = time.process_time()
                code, derivations = self.cost(username, "wrong-password")
                took = time.process_time() - start
                self.assertEqual((code, derivations), (401, 1))
                best[username] = min(best.get(username, took), took)
        slowest, fastest = max(best.values()), min(best.values())
        self.assertLess(slowest / fastest, 2.0, best)


class VersionTests(AuthCase):
    def test_version_open(self) -> None:
        """GET /version needs no token and answers luna version, API version
        and commit under the "version" key."""
        code, body, headers = self.api.request("GET", "/version", token=False)
        self.assertEqual(code, 200)
        self.assertEqual(headers[b"Content-Type"], [b"application/json"])
        self.assertEqual(set(body), {"version"})
        self.assertEqual(body["version"]["luna"], luna2d.__version__)
        self.assertEqual(body["version"]["api"], 1)
        self.assertIsInstance(body["version"]["commit"], str)
        self.assertTrue(body["version"]["commit"])

    def test_version_post_not_allowed(self) -> None:
        """POST /version is refused with 405 JSON (no modifications)."""
        code, body = self.api.post("/version", {}, token=True)
        self.assertEqual(code, 405)
        self.assertIn("POST", body["message"])


class MissingTokenTests(AuthCase):
    def test_every_get_needs_a_token(self) -> None:
        """Every GET under /config and /journal without a token answers 401
        with the JSON message (even for objects that do not exist)."""
        for path in CONFIG_GETS:
            code, body = self.api.get(path, token=False)
            self.assertEqual((path, code, body), (path, 401, NO_TOKEN))

    def test_every_post_needs_a_token(self) -> None:
        """Every POST except /token without a token answers 401 JSON and
        changes nothing."""
        before = self.everything()
        for path, body in CONFIG_POSTS:
            code, answer = self.api.post(path, body, token=False)
            self.assertEqual((path, code, answer), (path, 401, NO_TOKEN))
        self.assertEqual(self.everything(), before)

    def test_empty_token_header(self) -> None:
        """An empty x-access-tokens header is an invalid token: 401."""
        code, body = self.api.get("/config/node", token=False, headers={"x-access-tokens": ""})
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))


class BadTokenTests(AuthCase):
    def test_garbage_token(self) -> None:
        """A token that is not a JWT answers 401 on GET and POST."""
        code, body = self.api.get("/config/node", token="not-a-token")
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))
        code, body = self.api.post(
            "/config/node/node001", env("node", "node001", {"comment": "x"}), token="not-a-token"
        )
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))

    def test_token_signed_with_another_key(self) -> None:
        """A JWT signed with a key other than SECRET_KEY answers 401."""
        forged = jwt.encode(
            {"sub": ADMIN, "role": "admin", "exp": int(self.api.clock.seconds()) + 60},
            "some-other-key-of-sufficient-length",
            algorithm="HS256",
        )
        code, body = self.api.get("/config/node", token=forged)
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))

    def test_unsigned_token(self) -> None:
        """An alg=none JWT is refused with 401."""
        forged = jwt.encode(
            {"sub": ADMIN, "role": "admin", "exp": int(self.api.clock.seconds()) + 60},
            None,
            algorithm="none",
        )
        code, body = self.api.get("/config/node", token=forged)
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))

    def test_unknown_role(self) -> None:
        """A correctly signed token with an unknown role answers 401."""
        forged = jwt.encode(
            {"sub": ADMIN, "role": "root", "exp": int(self.api.clock.seconds()) + 60},
            SECRET,
            algorithm="HS256",
        )
        code, body = self.api.get("/config/node", token=forged)
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))

    def test_expired_token(self) -> None:
        """A token past its exp answers 401 on GET and POST; a fresh one
        issued afterwards works."""
        token = self.api.token("admin")
        self.assertEqual(self.api.get("/config/node", token=token)[0], 200)
        self.api.clock.advance(3601)
        code, body = self.api.get("/config/node", token=token)
        self.assertEqual((code, body), (401, {"message": "the token has expired"}))
        code, body = self.api.post(
            "/config/node/node001", env("node", "node001", {"comment": "x"}), token=token
        )
        self.assertEqual((code, body), (401, {"message": "the token has expired"}))
        code, body = self.api.post("/token", {"username": ADMIN, "password": PASSWORD}, token=False)
        self.assertEqual(code, 201)
        self.assertEqual(self.api.get("/config/node", token=body["token"])[0], 200)

    def test_token_valid_until_expiry(self) -> None:
        """A token still works one second before its expiry."""
        token = self.api.token("admin")
        self.api.clock.advance(3599)
        self.assertEqual(self.api.get("/config/cluster", token=token)[0], 200)

    def test_expired_node_token(self) -> None:
        """An expired node token may not read its secrets any more."""
        token = self.api.token("node", node="node001")
        self.api.clock.advance(7200)
        code, body = self.api.get("/config/secrets/node/node001", token=token)
        self.assertEqual((code, body), (401, {"message": "the token has expired"}))

    def test_bearer_header(self) -> None:
        """Authorization: Bearer <token> is accepted like x-access-tokens."""
        code, body = self.api.get(
            "/config/node/node001",
            token=False,
            headers={"Authorization": "Bearer " + self.api.admin_token},
        )
        self.assertEqual(code, 200)
        self.assertIn("node001", body["config"]["node"])
        code, _ = self.api.post(
            "/config/node/node001",
            env("node", "node001", {"comment": "via bearer"}),
            token=False,
            headers={"Authorization": "Bearer " + self.api.admin_token},
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/node/node001")[1]["config"]["node"]["node001"]["comment"],
            "via bearer",
        )

    def test_bearer_with_bad_token(self) -> None:
        """A bad token in Authorization: Bearer answers 401."""
        code, body = self.api.get(
            "/config/node", token=False, headers={"Authorization": "Bearer nonsense"}
        )
        self.assertEqual((code, body), (401, {"message": "the token is invalid"}))

    def test_other_authorization_scheme(self) -> None:
        """Authorization: Basic is not a token: 401 as without a token."""
        code, body = self.api.get(
            "/config/node", token=False, headers={"Authorization": "Basic bHVuYTpsdW5h"}
        )
        self.assertEqual((code, body), (401, NO_TOKEN))

    def test_quoted_token(self) -> None:
        """The token may be quoted, as the spec's header examples show."""
        code, _ = self.api.get("/config/node", token='"' + self.api.admin_token + '"')
        self.assertEqual(code, 200)


class ReadonlyTests(AuthCase):
    def setUp(self) -> None:
        super().setUp()
        self.reader = self.make_user("viewer", "readonly")

    def test_user_is_listed_without_hash(self) -> None:
        """The new user shows with its role; no password or hash is shown."""
        code, body = self.api.get("/config/user/viewer")
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "config": {
                        "user": {"viewer": {"name": "viewer", "role": "readonly", "comment": None}}
                    }
                },
            ),
        )

    def test_readonly_gets(self) -> None:
        """A readonly token gets 200 on every GET that only reads."""
        for path in CONFIG_GETS:
            if path.endswith(("_delete", "_pack")) or "nosuchnode" in path:
                continue
            if path.endswith("/config/user/someone"):
                continue
            code, body = self.api.get(path, token=self.reader)
            self.assertEqual((path, code), (path, 200), body)

    def test_readonly_posts_forbidden(self) -> None:
        """A readonly token gets 403 on every POST and nothing changes."""
        before = self.everything()
        for path, body in CONFIG_POSTS:
            code, answer = self.api.post(path, body, token=self.reader)
            self.assertEqual((path, code, answer), (path, 403, READONLY_POST))
        self.assertEqual(self.everything(), before)

    def test_readonly_post_malformed_body_forbidden(self) -> None:
        """A readonly token gets 403, not 400, even for a malformed body: the
        role is checked before the body is read."""
        code, body, _ = self.api.request(
            "POST", "/config/node/node001", raw=b"{oops", token=self.reader
        )
        self.assertEqual((code, body), (403, READONLY_POST))

    def test_readonly_get_actions_forbidden(self) -> None:
        """GET _delete and _pack change things: readonly gets 403 there and the
        object survives."""
        before = self.everything()
        for path in (
            "/config/node/node001/_delete",
            "/config/group/compute/interfaces/BMC/_delete",
            "/config/secrets/node/node001/shared%20key/_delete",
            "/config/osimage/compute/_pack",
            "/config/rack/inventory/node001/type/node/_delete",
            "/config/switch/sw01/_delete",
            "/config/network/cluster/_delete",
            "/config/osimage/compute/osimagetag/v1/_delete",
        ):
            code, body = self.api.get(path, token=self.reader)
            self.assertEqual((path, code, body), (path, 403, READONLY_POST))
        self.assertEqual(self.everything(), before)

    def test_readonly_sees_secrets_masked(self) -> None:
        """Node and group secrets are "********" to readonly and clear to admin."""
        self.assertEqual(
            self.api.get("/config/secrets", token=self.reader), (200, fixture_secrets(MASK, MASK))
        )
        self.assertEqual(
            self.api.get("/config/secrets"), (200, fixture_secrets(NODE_SECRET, GROUP_SECRET))
        )

    def test_readonly_sees_node_and_single_secret_masked(self) -> None:
        """The per-node view and a single secret are masked for readonly too."""
        self.assertEqual(
            self.api.get("/config/secrets/node/node001", token=self.reader),
            (200, fixture_secrets(MASK, MASK)),
        )
        self.assertEqual(
            self.api.get("/config/secrets/node/node001/shared%20key", token=self.reader),
            (200, fixture_secrets(MASK, MASK, node_only=True)),
        )
        self.assertEqual(
            self.api.get("/config/secrets/node/node001/shared%20key"),
            (200, fixture_secrets(NODE_SECRET, GROUP_SECRET, node_only=True)),
        )

    def test_readonly_sees_bmc_password_masked(self) -> None:
        """The BMC password is "********" to readonly (list and show) and
        clear to admin."""
        code, _ = self.api.post(
            "/config/bmcsetup/compute",
            {"config": {"bmcsetup": {"compute": {"password": "calvin-the-bmc"}}}},
        )
        self.assertEqual(code, 204)
        code, body = self.api.get("/config/bmcsetup/compute", token=self.reader)
        self.assertEqual(code, 200)
        self.assertEqual(body["config"]["bmcsetup"]["compute"]["password"], MASK)
        code, body = self.api.get("/config/bmcsetup", token=self.reader)
        self.assertEqual(body["config"]["bmcsetup"]["compute"]["password"], MASK)
        code, body = self.api.get("/config/bmcsetup/compute")
        self.assertEqual(body["config"]["bmcsetup"]["compute"]["password"], "calvin-the-bmc")
        code, body = self.api.get("/config/bmcsetup")
        self.assertEqual(body["config"]["bmcsetup"]["compute"]["password"], "calvin-the-bmc")

    def test_readonly_sees_switch_write_community_masked(self) -> None:
        """A switch's rw community is a secret: masked to readonly only."""
        body = self.api.get("/config/switch/sw01", token=self.reader)[1]
        self.assertEqual(body["config"]["switch"]["sw01"]["rw"], MASK)
        self.assertEqual(body["config"]["switch"]["sw01"]["read"], "public")
        body = self.api.get("/config/switch/sw01")[1]
        self.assertEqual(body["config"]["switch"]["sw01"]["rw"], "write-community")

    def test_admin_role_user(self) -> None:
        """A store user with role admin may change things."""
        token = self.make_user("boss", "admin")
        code, _ = self.api.post(
            "/config/node/node001", env("node", "node001", {"comment": "by boss"}), token=token
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.get("/config/secrets", token=token)[1]["config"]["secrets"]["node"]["node001"][
                0
            ]["content"],
            NODE_SECRET,
        )

    def test_role_change_takes_effect(self) -> None:
        """Demoting a user to readonly takes effect at once: the token it
        had as an admin is revoked (401), and the token of a new login is a
        readonly one (403 on a POST)."""
        token = self.make_user("boss", "admin")
        code, _ = self.api.post(
            "/config/user/boss", {"config": {"user": {"boss": {"role": "readonly"}}}}
        )
        self.assertEqual(code, 204)
        code, body = self.api.post(
            "/config/node/node001", env("node", "node001", {"comment": "x"}), token=token
        )
        self.assertEqual(
            (code, body),
            (
                401,
                {
                    "message": "the token of 'boss' was revoked (its password, "
                    "role or name changed); log in again"
                },
            ),
        )
        code, body = self.api.post(
            "/token", {"username": "boss", "password": "correct-horse"}, token=False
        )
        self.assertEqual(code, 201)
        code, body = self.api.post(
            "/config/node/node001", env("node", "node001", {"comment": "x"}), token=body["token"]
        )
        self.assertEqual((code, body), (403, READONLY_POST))

    def test_user_needs_password(self) -> None:
        """Creating a user without password answers 400 naming password."""
        code, body = self.api.post(
            "/config/user/bob", {"config": {"user": {"bob": {"role": "readonly"}}}}
        )
        self.assertEqual(
            (code, body), (400, {"message": "password: required to create user 'bob'"})
        )

    def test_user_short_password(self) -> None:
        """A password under 8 characters answers 400."""
        code, body = self.api.post(
            "/config/user/bob", {"config": {"user": {"bob": {"password": "short"}}}}
        )
        self.assertEqual(
            (code, body), (400, {"message": "password: must be at least 8 characters"})
        )

    def test_user_bad_role(self) -> None:
        """A role other than admin or readonly answers 400 naming role."""
        code, body = self.api.post(
            "/config/user/bob",
            {"config": {"user": {"bob": {"password": "longenough", "role": "root"}}}},
        )
        self.assertEqual(
            (code, body), (400, {"message": "role: must be one of admin, readonly, got 'root'"})
        )

    def test_ini_admin_not_managed(self) -> None:
        """The ini admin cannot be created or overwritten through the API."""
        code, body = self.api.post(
            f"/config/user/{ADMIN}", {"config": {"user": {ADMIN: {"password": "longenough"}}}}
        )
        self.assertEqual(code, 400)
        self.assertIn("ini", body["message"])


class DeletedUserTests(AuthCase):
    def test_deleted_user_token_stops_working(self) -> None:
        """Once a user is deleted its token answers 401 at once."""
        token = self.make_user("temp", "readonly")
        self.assertEqual(self.api.get("/config/node", token=token)[0], 200)
        code, body = self.api.get("/config/user/temp/_delete")
        self.assertEqual((code, body), (204, None))
        code, body = self.api.get("/config/node", token=token)
        self.assertEqual((code, body), (401, {"message": "user 'temp' no longer exists"}))
        code, body = self.api.post(
            "/token", {"username": "temp", "password": "correct-horse"}, token=False
        )
        self.assertEqual((code, body), (401, {"message": "invalid username or password"}))

    def test_renamed_user_token_stops_working(self) -> None:
        """A token names its user; after a rename it no longer works, and the
        user logs in under the new name with the same password."""
        token = self.make_user("temp", "readonly")
        code, _ = self.api.post(
            "/config/user/temp", {"config": {"user": {"temp": {"newusername": "temp2"}}}}
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.api.get("/config/node", token=token)[0], 401)
        code, _ = self.api.post(
            "/token", {"username": "temp2", "password": "correct-horse"}, token=False
        )
        self.assertEqual(code, 201)

    def test_password_change(self) -> None:
        """Changing a user's password makes the old one fail at login."""
        self.make_user("temp", "readonly")
        code, _ = self.api.post(
            "/config/user/temp", {"config": {"user": {"temp": {"password": "brand-new-pass"}}}}
        )
        self.assertEqual(code, 204)
        self.assertEqual(
            self.api.post("/token", {"username": "temp", "password": "correct-horse"}, token=False)[
                0
            ],
            401,
        )
        self.assertEqual(
            self.api.post(
                "/token", {"username": "temp", "password": "brand-new-pass"}, token=False
            )[0],
            201,
        )


class NodeTokenTests(AuthCase):
    def setUp(self) -> None:
        super().setUp()
        self.node_token = self.api.token("node", node="node001")

    def node001(self) -> dict:
        return self.api.show("node", "node001")

    def test_reads_own_secrets(self) -> None:
        """A node token reads its own node's secrets in clear, group's included."""
        self.assertEqual(
            self.api.get("/config/secrets/node/node001", token=self.node_token),
            (200, fixture_secrets(NODE_SECRET, GROUP_SECRET)),
        )

    def test_reads_own_single_secret(self) -> None:
        """A node token may read a single secret of its own node, in clear."""
        self.assertEqual(
            self.api.get("/config/secrets/node/node001/shared%20key", token=self.node_token),
            (200, fixture_secrets(NODE_SECRET, GROUP_SECRET, node_only=True)),
        )

    def test_reports_system_info(self) -> None:
        """The install script's vendor/assettag update answers 204 and sticks."""
        code, body = self.api.post(
            "/config/node/node001",
            env("node", "node001", {"vendor": "Dell Inc.", "assettag": "ABC123"}),
            token=self.node_token,
        )
        self.assertEqual((code, body), (204, None))
        node = self.node001()
        self.assertEqual((node["vendor"], node["assettag"]), ("Dell Inc.", "ABC123"))

    def test_reports_status(self) -> None:
        """A node token may set its own status."""
        code, _ = self.api.post(
            "/config/node/node001",
            env("node", "node001", {"status": "installer.ok"}),
            token=self.node_token,
        )
        self.assertEqual(code, 204)
        self.assertEqual(self.node001()["status"], "installer.ok")

    def test_reports_dhcp_address(self) -> None:
        """The install script's update_node_ip body (name, BOOTIF, force, an
        address inside the DHCP range) is taken only from that address
        (tests.boot.test_policy.NodeTokenTests): sent from 127.0.0.1 it is 403
        and moves nothing."""
        before = self.node001()
        code, body = self.api.post(
            "/config/node/node001",
            env(
                "node",
                "node001",
                {
                    "name": "node001",
                    "interfaces": [
                        {"interface": "BOOTIF", "force": True, "ipaddress": "10.141.0.210"}
                    ],
                },
            ),
            token=self.node_token,
        )
        self.assertEqual(code, 403, body)
        self.assertIn("the address it calls from", body["message"])
        self.assertEqual(self.node001(), before)

    def test_reports_tpm(self) -> None:
        """TPM data may be reported by the node itself."""
        code, _ = self.api.post(
            "/config/node/node001",
            env("node", "node001", {"tpm_uuid": "u-1", "tpm_sha256": "ab"}),
            token=self.node_token,
        )
        self.assertEqual(code, 204)
        node = self.node001()
        self.assertEqual((node["tpm_uuid"], node["tpm_sha256"]), ("u-1", "ab"))

    def test_other_node_forbidden(self) -> None:
        """A node token may not update, or read the secrets of, another node."""
        code, body = self.api.post(
            "/config/node/node002", env("node", "node002", {"vendor": "x"}), token=self.node_token
        )
        self.assertEqual(
            (code, body), (403, {"message": "this token belongs to node node001, not node002"})
        )
        code, body = self.api.get("/config/secrets/node/node002", token=self.node_token)
        self.assertEqual((code, body), (403, {"message": "this token belongs to node node001"}))
        code, body = self.api.get("/config/secrets/group/compute", token=self.node_token)
        self.assertEqual((code, body), (403, {"message": "this token belongs to node node001"}))
        self.assertEqual(
            self.api.get("/config/node/node002")[1]["config"]["node"]["node002"]["vendor"], None
        )

    def test_other_fields_forbidden(self) -> None:
        """Fields other than vendor, assettag, status, TPM and interface
        addresses answer 403 naming the field; nothing changes."""
        for fields, text in (
            ({"group": "compute"}, "group: a node token may not change this field"),
            ({"osimage": "compute"}, "osimage: a node token may not change this field"),
            ({"newhostname": "evil"}, "newhostname: a node token may not change this field"),
            ({"macaddr": "aa:bb:cc:dd:ee:ff"}, "macaddr: a node token may not change this field"),
            ({"vendor": "ok", "service": True}, "service: a node token may not change this field"),
            (
                {
                    "interfaces": [
                        {"interface": "BOOTIF", "network": "ib", "ipaddress": "10.149.0.100"}
                    ]
                },
                "interfaces: a node token may only report its address",
            ),
            (
                {"interfaces": [{"interface": "BOOTIF", "macaddress": "aa:bb:cc:dd:ee:ff"}]},
                "interfaces: a node token may only report its address",
            ),
        ):
            before = self.node001()
            code, body = self.api.post(
                "/config/node/node001", env("node", "node001", fields), token=self.node_token
            )
            self.assertEqual((code, body), (403, {"message": text}))
            self.assertEqual(self.node001(), before)

    def test_other_endpoints_forbidden(self) -> None:
        """Every other endpoint answers 403 to a node token; nothing changes."""
        before = self.everything()
        for path in (
            "/config/node",
            "/config/node/node001",
            "/config/node/node001/interfaces",
            "/config/group/compute",
            "/config/network",
            "/config/network/cluster/_nextfreeip",
            "/config/secrets",
            "/config/cluster",
            "/config/user",
            "/config/osimage",
            "/config/rack/inventory",
            "/config/bmcsetup/compute",
            "/config/node/node001/_delete",
            "/journal/controller",
        ):
            code, body = self.api.get(path, token=self.node_token)
            self.assertEqual(code, 403, path)
            self.assertIsInstance(body["message"], str)
        for path, body in CONFIG_POSTS:
            if path == "/config/node/node001":
                continue
            code, answer = self.api.post(path, body, token=self.node_token)
            self.assertEqual(code, 403, path)
            self.assertIsInstance(answer["message"], str)
        self.assertEqual(self.everything(), before)

    def test_unknown_own_node(self) -> None:
        """A node token for a node that no longer exists gets 404 on update."""
        token = self.api.token("node", node="node099")
        code, body = self.api.post(
            "/config/node/node099", env("node", "node099", {"vendor": "x"}), token=token
        )
        self.assertEqual((code, body), (404, {"message": "node 'node099' does not exist"}))
