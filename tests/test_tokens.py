"""Tokens bound to the user's identity and credential generation, through
the whole HTTP stack (StubTreq) on a real SQLite file.

A password change, a role change, a rename and a delete each revoke the
user's tokens (401); a readonly ``bob`` renamed away and replaced by an
admin ``bob`` leaves the old token powerless; a comment does not revoke;
the ini admin's tokens end with its ini password; tokens without identity
(as issued before) are refused; and identity and generation are kept in
the database, so all of this holds across a restart."""

from __future__ import annotations

import shutil
from typing import Any

import jwt
from twisted.trial import unittest

from luna2d.config import APIConfig
from luna2d.errors import Unauthorized
from luna2d.resources.auth import Auth
from luna2d.store import objects
from luna2d.store.users import credentials
from tests.support import (
    ADMIN,
    API,
    PASSWORD,
    SECRET,
    env,
    hash_inline,
    load_store,
    result_of,
)

COMMENT = env("node", "node001", {"comment": "written"})


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, its signature checked (the test clock is not now)."""
    claims: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    return claims


def revoked(name: str) -> dict[str, str]:
    return {
        "message": f"the token of {name!r} was revoked (its password, role or name changed); "
        "log in again"
    }


def user_body(name: str, **fields: Any) -> dict[str, Any]:
    return {"config": {"user": {name: fields}}}


class TokenBindingCase(unittest.TestCase):
    def setUp(self) -> None:
        hash_inline(self)
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def create(self, name: str, role: str, password: str = "first-password") -> None:
        body = user_body(name, password=password, role=role)
        code, body = self.api.post(f"/config/user/{name}", body)
        self.assertEqual((code, body), (201, {"message": f"user {name} created"}))

    def login(self, name: str, password: str = "first-password") -> str:
        code, body = self.api.post("/token", {"username": name, "password": password}, token=False)
        self.assertEqual(code, 201, body)
        token: str = body["token"]
        return token

    def comment(self, token: str) -> tuple[int, Any]:
        """A write an admin may make, with ``token``."""
        return self.api.post("/config/node/node001", COMMENT, token=token)


class RevocationTests(TokenBindingCase):
    def test_token_carries_identity_and_generation(self) -> None:
        """A user's token names the user's uid and generation."""
        self.create("alice", "admin")
        claims = claims_of(self.login("alice"))
        user = credentials(self.api.store.user("alice"))
        self.assertEqual((claims["sub"], claims["uid"], claims["gen"]), ("alice", user.uid, 0))
        self.assertRegex(claims["uid"], "^[0-9a-f]{16}$")

    def test_password_change_revokes(self) -> None:
        """After a password change the old token is 401 on GET and POST and
        changes nothing; a login with the new password works."""
        self.create("alice", "admin")
        token = self.login("alice")
        self.assertEqual(self.comment(token)[0], 204)
        body = user_body("alice", password="second-password")
        code, _ = self.api.post("/config/user/alice", body)
        self.assertEqual(code, 204)
        self.assertEqual(self.api.get("/config/node", token=token), (401, revoked("alice")))
        late = env("node", "node001", {"comment": "late"})
        self.assertEqual(
            self.api.post("/config/node/node001", late, token=token), (401, revoked("alice"))
        )
        self.assertEqual(self.api.show("node", "node001")["comment"], "written")
        self.assertEqual(self.comment(self.login("alice", "second-password"))[0], 204)

    def test_same_password_again_still_revokes(self) -> None:
        """Setting a password, even the same one, is a credential change."""
        self.create("alice", "readonly")
        token = self.login("alice")
        self.api.post("/config/user/alice", user_body("alice", password="first-password"))
        self.assertEqual(self.api.get("/config/node", token=token), (401, revoked("alice")))

    def test_rename_then_recreate(self) -> None:
        """A readonly bob is renamed to robert and a new admin bob created:
        the old readonly token of bob cannot write (401), nor read; robert's
        token and new bob's token are their own."""
        self.create("bob", "readonly")
        old = self.login("bob")
        self.assertEqual(self.api.get("/config/node", token=old)[0], 200)
        code, _ = self.api.post("/config/user/bob", user_body("bob", newusername="robert"))
        self.assertEqual(code, 204)
        self.create("bob", "admin", password="other-password")
        before = self.api.show("node", "node001")
        self.assertEqual(self.comment(old), (401, revoked("bob")))
        self.assertEqual(self.api.get("/config/node", token=old), (401, revoked("bob")))
        self.assertEqual(self.api.show("node", "node001"), before)
        self.assertEqual(self.comment(self.login("bob", "other-password"))[0], 204)
        self.assertEqual(self.comment(self.login("robert"))[0], 403)  # still readonly

    def test_delete_then_recreate(self) -> None:
        """A deleted and re-created user is a new identity: the old token
        stays refused, even though the name, role and generation match."""
        self.create("carol", "admin")
        token = self.login("carol")
        uid = credentials(self.api.store.user("carol")).uid
        self.assertEqual(self.api.get("/config/user/carol/_delete")[0], 204)
        self.assertEqual(
            self.api.get("/config/node", token=token),
            (401, {"message": "user 'carol' no longer exists"}),
        )
        self.create("carol", "admin")
        fresh = credentials(self.api.store.user("carol"))
        self.assertEqual(fresh.generation, 0)
        self.assertNotEqual(fresh.uid, uid)
        self.assertEqual(self.comment(token), (401, revoked("carol")))

    def test_role_change_revokes_both_ways(self) -> None:
        """Promotion and demotion both revoke; a role set to what it was does not."""
        self.create("dave", "readonly")
        token = self.login("dave")
        self.api.post("/config/user/dave", user_body("dave", role="readonly"))
        self.assertEqual(self.api.get("/config/node", token=token)[0], 200)
        self.api.post("/config/user/dave", user_body("dave", role="admin"))
        self.assertEqual(self.comment(token), (401, revoked("dave")))
        token = self.login("dave")
        self.assertEqual(self.comment(token)[0], 204)
        self.api.post("/config/user/dave", user_body("dave", role="readonly"))
        self.assertEqual(self.comment(token), (401, revoked("dave")))

    def test_comment_does_not_revoke(self) -> None:
        """A change that is not a credential (the comment) leaves tokens valid."""
        self.create("erin", "admin")
        token = self.login("erin")
        code, _ = self.api.post("/config/user/erin", user_body("erin", comment="on call"))
        self.assertEqual(code, 204)
        self.assertEqual(self.comment(token)[0], 204)
        self.assertEqual(credentials(self.api.store.user("erin")).generation, 0)

    def test_identity_fields_are_internal(self) -> None:
        """uid and generation are neither shown nor accepted by the API."""
        self.create("frank", "readonly")
        code, body = self.api.get("/config/user/frank")
        self.assertEqual(code, 200)
        shown = set(body["config"]["user"]["frank"])
        self.assertEqual(shown & {"uid", "generation", "pwhash"}, set())
        for field, value in (("generation", 0), ("uid", "0011223344556677")):
            code, body = self.api.post("/config/user/frank", user_body("frank", **{field: value}))
            self.assertEqual(code, 400, body)
            self.assertIn(field, body["message"])

    def test_token_without_identity_refused(self) -> None:
        """A signed token that names a user but no uid or generation (as
        tokens were before) is refused, for store users and the ini admin."""
        self.create("gina", "admin")
        now = int(self.api.clock.seconds())
        for name in ("gina", ADMIN):
            bare = jwt.encode(
                {"sub": name, "role": "admin", "iat": now, "exp": now + 60},
                SECRET,
                algorithm="HS256",
            )
            self.assertEqual(self.comment(bare), (401, revoked(name)))

    def test_node_tokens_unchanged(self) -> None:
        """Node tokens are bound to their node, as before: no uid needed."""
        token = self.api.token("node", node="node001")
        body = env("node", "node001", {"vendor": "x"})
        code, _ = self.api.post("/config/node/node001", body, token=token)
        self.assertEqual(code, 204)


class IniAdminTests(TokenBindingCase):
    def test_ini_password_change_revokes(self) -> None:
        """The ini admin's tokens hold while USERNAME and PASSWORD stay, and
        are refused once the daemon runs with another ini password."""
        token = self.login(ADMIN, PASSWORD)
        self.assertEqual(self.comment(token)[0], 204)
        api = APIConfig(ADMIN, PASSWORD, SECRET, 3600, "127.0.0.1", 0)
        same = Auth(api, self.api.store, self.api.clock)
        self.assertIsNotNone(same.principal(FakeRequest(token)))
        api = APIConfig(ADMIN, "a-new-ini-password", SECRET, 3600, "127.0.0.1", 0)
        other = Auth(api, self.api.store, self.api.clock)
        error = self.assertRaises(Unauthorized, other.principal, FakeRequest(token))
        self.assertEqual(error.message, revoked(ADMIN)["message"])

    def test_ini_identity_is_not_a_store_user(self) -> None:
        """A token with the ini identity but another name is refused."""
        token = self.login(ADMIN, PASSWORD)
        claims = claims_of(token)
        self.assertEqual(claims["uid"], "ini")
        self.create("henry", "admin")
        claims["sub"] = "henry"
        forged = jwt.encode(claims, SECRET, algorithm="HS256")
        self.assertEqual(self.comment(forged), (401, revoked("henry")))


class FakeRequest:
    """The headers principal() reads."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()

    def getHeader(self, name: bytes) -> bytes | None:
        return self.token if name == b"x-access-tokens" else None


class RestartTests(TokenBindingCase):
    def restart(self) -> API:
        """The same database and key opened again, as a restart does."""
        self.api.store.pool.close()
        store = load_store(self.api.cfg)
        self.addCleanup(store.pool.close)
        api = API(store=store)
        api.cfg = self.api.cfg
        return api

    def test_generation_survives_restart(self) -> None:
        """uid and generation are in the database: after a restart, a token
        revoked before it stays revoked, one issued after the last change
        still works, and a rename keeps the uid."""
        self.create("ivan", "admin")
        first = self.login("ivan")
        uid = credentials(self.api.store.user("ivan")).uid
        self.api.post("/config/user/ivan", user_body("ivan", password="second-password"))
        self.api.post("/config/user/ivan", user_body("ivan", newusername="ivan2"))
        current = self.login("ivan2", "second-password")
        api = self.restart()
        after = credentials(api.store.user("ivan2"))
        self.assertEqual((after.uid, after.generation), (uid, 2))
        self.assertEqual(api.post("/config/node/node001", COMMENT, token=current)[0], 204)
        self.assertEqual(
            api.get("/config/node", token=first), (401, {"message": "user 'ivan' no longer exists"})
        )
        api.post("/config/user/ivan", user_body("ivan", password="first-password", role="admin"))
        self.assertEqual(
            api.post("/config/node/node001", COMMENT, token=first), (401, revoked("ivan"))
        )

    def test_user_without_identity(self) -> None:
        """A user stored before uid and generation existed logs in and its
        token works; its first credential change gives it a uid and revokes."""
        self.create("model", "admin")
        pwhash = credentials(self.api.store.user("model")).pwhash

        def old_user(tx: Any) -> None:
            objects.upsert(tx, "user", "old", {"role": "admin"})
            tx.edit(tx.get("user", "old")).data["pwhash"] = pwhash

        result_of(self.api.store.write(old_user))
        self.assertEqual(self.api.store.user("old").data.keys() & {"uid", "generation"}, set())
        token = self.login("old")
        self.assertEqual(self.comment(token)[0], 204)
        self.api.post("/config/user/old", user_body("old", role="readonly"))
        self.assertRegex(credentials(self.api.store.user("old")).uid or "", "^[0-9a-f]{16}$")
        self.assertEqual(self.comment(token), (401, revoked("old")))
