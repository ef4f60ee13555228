"""The API answers version and a seeded node through the whole HTTP stack."""

from twisted.trial import unittest

from tests.support import API


class SmokeTests(unittest.TestCase):
    def test_version_and_seeded_node(self) -> None:
        """/version is open; the seeded node001 has its three addresses."""
        api = API()
        code, body = api.get("/version", token=False)
        self.assertEqual(code, 200)
        self.assertEqual(body["version"]["api"], 1)
        code, body = api.get("/config/node/node001")
        self.assertEqual(code, 200)
        node = body["config"]["node"]["node001"]
        self.assertEqual(
            [i["ipaddress"] for i in node["interfaces"]], ["10.141.0.1", "10.148.0.1", "10.149.0.1"]
        )
