"""The wire format of ``luna network dns`` (clustervision/luna2-cli),
through the whole HTTP stack (StubTreq), and the durability of the records:

- ``luna network dns <net>`` reads ``config.dns.<net>``, a list of
  ``{"host", "ipaddress"}`` objects;
- ``add`` and ``change`` POST ``{"config": {"dns": {<net>: [{"host",
  "ipaddress"}]}}}`` to ``/config/dns/<net>`` and expect 201;
- ``remove`` GETs ``/config/dns/<net>/<host>/_delete`` and expects 204."""

from __future__ import annotations

import shutil
from typing import Any

from twisted.trial import unittest

from tests.support import API, load_store, result_of


def record(net: str, host: Any, ip: Any) -> dict:
    return {"config": {"dns": {net: [{"host": host, "ipaddress": ip}]}}}


class DNSRecordTests(unittest.TestCase):
    def setUp(self) -> None:
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(self.api.store.pool.close)

    def listed(self, net: str = "cluster") -> list:
        code, body = self.api.get(f"/config/dns/{net}")
        self.assertEqual(code, 200, body)
        return body["config"]["dns"][net]

    def test_empty_network(self) -> None:
        """A network without records lists none (200, an empty list)."""
        self.assertEqual(self.listed(), [])

    def test_add_change_remove(self) -> None:
        """add is 201, listed; change of the same host replaces the address
        (201); remove is 204, and a second remove 404."""
        code, body = self.api.post(
            "/config/dns/cluster", record("cluster", "storage01", "10.141.0.250")
        )
        self.assertEqual((code, body), (201, {"message": "DNS entries added or changed"}))
        self.assertEqual(self.listed(), [{"host": "storage01", "ipaddress": "10.141.0.250"}])
        self.assertEqual(
            self.api.post("/config/dns/cluster", record("cluster", "Storage01", "10.141.0.251"))[0],
            201,
        )
        self.assertEqual(self.listed(), [{"host": "storage01", "ipaddress": "10.141.0.251"}])
        self.assertEqual(
            self.api.post("/config/dns/cluster", record("cluster", "license", "2001:db8::5"))[0],
            201,
        )
        self.assertEqual([r["host"] for r in self.listed()], ["license", "storage01"])
        self.assertEqual(self.api.get("/config/dns/cluster/storage01/_delete"), (204, None))
        self.assertEqual(self.listed(), [{"host": "license", "ipaddress": "2001:db8::5"}])
        code, body = self.api.get("/config/dns/cluster/storage01/_delete")
        self.assertEqual(code, 404)
        self.assertIn("storage01", body["message"])

    def test_records_are_per_network(self) -> None:
        self.api.post("/config/dns/cluster", record("cluster", "storage01", "10.141.0.250"))
        self.assertEqual(self.listed("ib"), [])

    def test_survive_a_restart(self) -> None:
        """Records are committed to the database: a store opened afresh on
        the same file (a restart) has them."""
        self.api.post("/config/dns/cluster", record("cluster", "storage01", "10.141.0.250"))
        again = load_store(self.api.cfg)
        self.addCleanup(again.pool.close)
        self.assertEqual(
            again.dns_records("cluster"),
            [{"host": "storage01", "ipaddress": "10.141.0.250"}],
        )

    def test_follow_a_rename_and_hidden_from_the_network(self) -> None:
        """Records follow a renamed network, and are not a field of the
        network's own view (nor accepted there)."""
        self.api.post("/config/dns/cluster", record("cluster", "storage01", "10.141.0.250"))
        self.assertNotIn("dns_records", self.api.show("network", "cluster"))
        code, _ = self.api.post(
            "/config/network/cluster",
            {"config": {"network": {"cluster": {"newnetname": "cluster2"}}}},
        )
        self.assertIn(code, (200, 201, 204))
        self.assertEqual(self.listed("cluster2")[0]["host"], "storage01")
        code, body = self.api.post(
            "/config/network/cluster2",
            {"config": {"network": {"cluster2": {"dns_records": {"x": "10.141.0.1"}}}}},
        )
        self.assertEqual(code, 400, body)

    def test_bad_input(self) -> None:
        """Each bad record is 400 naming the field; nothing of the body is stored."""
        bad = [
            (record("cluster", "bad host", "10.141.0.1"), "host"),
            (record("cluster", "ok", "10.141.0.999"), "ipaddress"),
            (record("cluster", "ok", 5), "ipaddress"),
            ({"config": {"dns": {"cluster": [{"host": "ok"}]}}}, "required"),
            (
                {
                    "config": {
                        "dns": {"cluster": [{"host": "ok", "ipaddress": "10.141.0.1", "ttl": 5}]}
                    }
                },
                "ttl",
            ),
            ({"config": {"dns": {"cluster": []}}}, "expected a list"),
            (
                {"config": {"dns": {"ib": [{"host": "ok", "ipaddress": "10.141.0.1"}]}}},
                "'cluster'",
            ),
            (
                {
                    "config": {
                        "dns": {
                            "cluster": [
                                {"host": "good", "ipaddress": "10.141.0.1"},
                                {"host": "-bad", "ipaddress": "10.141.0.2"},
                            ]
                        }
                    }
                },
                "[1].host",
            ),
        ]
        for body, words in bad:
            code, answer = self.api.post("/config/dns/cluster", body)
            self.assertEqual(code, 400, (body, answer))
            self.assertIn(words, answer["message"])
        self.assertEqual(self.listed(), [])

    def test_unknown_network_and_roles(self) -> None:
        """An unknown network is 404 on every action; readonly reads but may
        not write; no token is 401."""
        self.assertEqual(self.api.get("/config/dns/nonet")[0], 404)
        self.assertEqual(
            self.api.post("/config/dns/nonet", record("nonet", "a", "10.0.0.1"))[0], 404
        )
        self.assertEqual(self.api.get("/config/dns/nonet/a/_delete")[0], 404)
        from luna2d.store import objects

        result_of(self.api.store.write(objects.upsert, "user", "viewer", {"role": "readonly"}))
        token = self.api.token("readonly", "viewer")
        self.assertEqual(self.api.get("/config/dns/cluster", token=token)[0], 200)
        self.assertEqual(
            self.api.post("/config/dns/cluster", record("cluster", "a", "10.0.0.1"), token=token)[
                0
            ],
            403,
        )
        self.assertEqual(self.api.get("/config/dns/cluster", token=None)[0], 401)
