"""Contract tests for the last gaps of issue 10 between luna2d and the
unmodified clients (docs/notes/h4-cli2.md):

- ``luna control sel list <node>`` and ``lnode list <node>`` read
  ``control.sel`` of ``GET /control/action/sel/<node>/_list`` as one text,
  entries separated by ``;;`` (lnode turns each ``;;`` into a new line; the
  CLI wraps the text at 50 columns). luna2d answered a JSON list, on which
  both fell back to printing the raw answer;
- ``luna group changeinterface <group> <interface>`` POSTs
  ``/config/group/<group>/interfaces`` and reads only 204 as success, also
  when the interface is new; ``luna node changeinterface`` and the switch
  and other-device interface commands take 201 or 204. A POST there now
  answers 204 whether it adds or changes (a new one answered 201, and the
  CLI exited 1 with the interface in place)."""

from __future__ import annotations

import json
import shutil
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest

from luna2d.ipmi.session import Success
from tests.clients.test_control import HeldIPMI
from tests.support import API, env, hash_inline


class SelListTests(unittest.TestCase):
    """One node's SEL as the clients read it (StubTreq, BMC answered by the test)."""

    def setUp(self) -> None:
        hash_inline(self)
        self.ipmi = HeldIPMI()
        self.api = API(ipmi=self.ipmi)
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def sel_list(self, lines: list[str]) -> tuple[int, Any]:
        d: defer.Deferred[Any] = self.api.treq.request(
            "GET", "http://luna/control/action/sel/node001/_list",
            headers={"x-access-tokens": self.api.admin_token})
        self.api.treq.flush()
        self.ipmi.pending["node001"].callback(Success(lines))
        self.api.treq.flush()
        response = self.successResultOf(d)
        content = response.content()
        self.api.treq.flush()
        return response.code, json.loads(self.successResultOf(content))

    def test_entries_joined_by_double_semicolon(self) -> None:
        """Two entries come back as one string; splitting it on ``;;`` as
        lnode does gives the two lines back, in order."""
        lines = ["1 | 12/01/2026 | 10:00:00 | Temperature #0x01 | Asserted",
                 "2 | 12/01/2026 | 10:05:00 | Processor #0x10 | Thermal Trip | Asserted"]
        code, body = self.sel_list(lines)
        self.assertEqual(code, 200, body)
        self.assertIsInstance(body["control"]["sel"], str)
        self.assertEqual(body["control"]["sel"], ";;".join(lines))
        self.assertEqual(body["control"]["sel"].replace(";;", "\n").splitlines(), lines)

    def test_empty_sel_is_empty_text(self) -> None:
        """An empty SEL is an empty string, not a list (the CLI takes its length)."""
        self.assertEqual(self.sel_list([]), (200, {"control": {"sel": ""}}))


class InterfacePostTests(unittest.TestCase):
    """POST .../interfaces as ``changeinterface`` sends it (in process)."""

    def setUp(self) -> None:
        self.api = API()
        self.addCleanup(shutil.rmtree, str(self.api.cfg.database.database.parent), True)
        self.addCleanup(lambda: self.api.store.pool.close())

    def change(self, kind: str, name: str, interface: dict[str, str]) -> tuple[int, Any]:
        path = f"/config/{kind}/{name}/interfaces"
        return self.api.post(path, env(kind, name, {"interfaces": [interface]}))

    def test_group_new_and_changed_interface_are_204(self) -> None:
        """A group interface the group lacks, then a change to it: both 204
        with no body (what the CLI takes as success), and it is stored."""
        self.assertEqual(self.change("group", "compute", {"interface": "eth5", "network": "ib"}),
                         (204, None))
        self.assertEqual(self.change("group", "compute", {"interface": "eth5", "mtu": "9000"}),
                         (204, None))
        code, body = self.api.get("/config/group/compute/interfaces/eth5")
        self.assertEqual(code, 200, body)
        [shown] = body["config"]["group"]["compute"]["interfaces"]
        self.assertEqual((shown["network"], str(shown["mtu"])), ("ib", "9000"))

    def test_node_new_interface_is_204(self) -> None:
        """``luna node changeinterface`` on a new interface: 204 (it reads 201 or 204)."""
        self.assertEqual(self.change("node", "node001", {"interface": "eth7", "network": "ib"}),
                         (204, None))
        self.assertEqual(self.api.get("/config/node/node001/interfaces/eth7")[0], 200)
