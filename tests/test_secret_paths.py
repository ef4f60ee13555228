"""Secret paths cannot leave the node's system root (issue 8, low): a path
is absolute, normalised (``//`` and ``.`` parts dropped), and refused with
a 400 naming it when it holds ``..``, is relative, names a directory or
holds control characters or backslashes. Through the whole HTTP stack,
for create, update and clone."""

from __future__ import annotations

from twisted.trial import unittest

from tests.support import API


def body(owner: str, items: list) -> dict:
    return {"config": {"secrets": {"node": {owner: items}}}}


def item(path: str, name: str = "key") -> dict:
    return {"secretname": name, "content": "K", "path": path}


class SecretPathTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()

    def stored_paths(self) -> list:
        code, answer = self.api.get("/config/secrets/node/node001")
        self.assertEqual(code, 200)
        return [s["path"] for s in answer["config"]["secrets"]["node"].get("node001", [])]

    def test_escape_refused(self) -> None:
        """The path of the attack, and its relatives, answer 400 and store nothing."""
        cases = {
            "/etc/../../root/.ssh/authorized_keys": "must not hold '..' parts",
            "/..": "must not hold '..' parts",
            "/etc/ssh/..": "must not hold '..' parts",
            "etc/munge/munge.key": "must be an absolute path",
            "../root/x": "must be an absolute path",
            "/etc/ssh/": "must name a file, not a directory",
            "/": "must name a file, not a directory",
            "/etc/.": "must name a file, not a directory",
            "/etc/a\nrm -rf /": "holds control characters or backslashes",
            "/etc/a\\b": "holds control characters or backslashes",
        }
        for path, why in cases.items():
            code, answer = self.api.post(
                "/config/secrets/node/node001", body("node001", [item(path)])
            )
            self.assertEqual(
                (code, answer), (400, {"message": f"node001[0].path: {path!r} {why}"}), path
            )
        self.assertEqual(self.stored_paths(), [])

    def test_normalised(self) -> None:
        """Doubled slashes and '.' parts are dropped; the path is kept so."""
        code, _ = self.api.post(
            "/config/secrets/node/node001", body("node001", [item("//etc/./munge//munge.key")])
        )
        self.assertEqual(code, 201)
        self.assertEqual(self.stored_paths(), ["/etc/munge/munge.key"])

    def test_update_and_clone_checked(self) -> None:
        """An update or a clone of a secret cannot bring a bad path in."""
        self.assertEqual(
            self.api.post("/config/secrets/node/node001", body("node001", [item("/etc/k")]))[0], 201
        )
        code, _ = self.api.post(
            "/config/secrets/node/node001/key", body("node001", [item("/etc/../x")])
        )
        self.assertEqual(code, 400)
        clone = {"secretname": "key", "newsecretname": "copy", "path": "/../etc/shadow"}
        code, _ = self.api.post("/config/secrets/node/node001/key/_clone", body("node001", [clone]))
        self.assertEqual(code, 400)
        self.assertEqual(self.stored_paths(), ["/etc/k"])
